"""S3 faults injected for real: the handler in-process, its S3 clients behind a fault proxy.

``FaultProxy`` stands between the supervisor and the moto server (``AWS_ENDPOINT_URL``
points at it); the test's own client talks to moto directly, to set up and to check.
Each test counts the faults that fired and checks what a user would: the invocation
succeeded with byte-equal outputs, or it raised an ``InvocationError`` (an API caller:
a one-line 500) naming the bucket and key, within a bounded time, leaving no object that
looks complete and listing the outputs that were stored.

| test (``test_...``)                 | fault injected (times it fired)            | outcome     |
|-------------------------------------|--------------------------------------------|-------------|
| slowdown_on_get_is_retried          | 503 SlowDown on GetObject (2)              | survived    |
| persistent_500_on_get               | 500 on GetObject (5, every attempt)        | clear error |
| reset_in_a_multipart_upload         | reset in UploadPart 2 (1)                  | survived    |
|                                     | 503 on CompleteMultipartUpload (1)         | survived    |
| persistent_resets_abort_the_upload  | reset on every UploadPart (5 to 15)        | clear error |
| access_denied_on_get                | 403 AccessDenied on GetObject (1)          | clear error |
| missing_object                      | none: the object is not there              | clear error |
| one_failing_output_lists_the_others | 500 on one output's PutObject (5), 2 modes | clear error |

Survived: the invocation succeeded as if nothing happened.  Clear error: it failed as it
must, within the bounds, with a message naming ``s3://bucket/key``.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handlers import lambda_handler
from supervisor.errors import InvocationError
from supervisor.staging.retries import MAX_ATTEMPTS
from tests.faults import Fault, FaultProxy
from tests.functional.lambda_support import LambdaFunction, install_function

MIB = 1024 * 1024
MakeBucket = Callable[[str], str]
LoadEvent = Callable[[str], Any]
Install = Callable[..., LambdaFunction]

COPY_SCRIPT = """\
set -eu
touch "$MARK_DIR/ran"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
"""

# Bounds generous enough for a loaded machine; without a bound on retries these never end.
FAIL_WITHIN_S = 30.0
INTERNAL_ERROR: dict[str, Any] = {
    "status": 500,
    "code": "InternalError",
    "message": "We encountered an internal error. Please try again.",
}


@pytest.fixture
def proxy(moto_server: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_server) as running:
        yield running


@pytest.fixture
def install(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    aws_env: dict[str, str],
    proxy: FaultProxy,
) -> Install:
    """Install a function whose S3 clients reach moto through ``proxy``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)

    def make(script: str, definition: Mapping[str, Any] | None = None) -> LambdaFunction:
        return install_function(monkeypatch, tmp_path, script, definition)

    return make


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record the faults a test injected, as the property ``faults_injected`` of its report
    (``pytest --junitxml=faults.xml -o junit_family=legacy`` writes the figures)."""

    def record(*faults: Fault) -> None:
        injected = sum(fault.fired for fault in faults)
        request.node.user_properties.append(("faults_injected", injected))

    return record


def definition(out: str, mark_dir: Path) -> dict[str, Any]:
    return {
        "output": [{"path": f"{out}/results"}],
        "container": {"environment": {"Variables": {"MARK_DIR": str(mark_dir)}}},
    }


def s3_put(load_event: LoadEvent, bucket: str, key: str, size: int | None = None) -> Any:
    event = json.loads(json.dumps(load_event("s3_put.json")).replace("input-bucket", bucket))
    event["Records"][0]["s3"]["object"]["key"] = key
    event["Records"][0]["s3"]["object"]["size"] = size
    return event


def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed
    }


def assert_clear(message: str, aws_env: Mapping[str, str]) -> None:
    """One line: no traceback, no botocore dump, no request URL (with its query), no key."""
    assert "\n" not in message
    assert "Traceback" not in message
    assert "botocore" not in message
    assert "An error occurred (" not in message
    assert "?" not in message
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert aws_env[name] not in message


@dataclass(frozen=True)
class Deployed:
    """A function copying its input from ``source`` to ``out``/results, S3 behind the proxy."""

    source: str
    out: str
    function: LambdaFunction
    load_event: LoadEvent

    def event(self, key: str, size: int | None = None) -> Any:
        return s3_put(self.load_event, self.source, key, size)

    def invoke(self, key: str, size: int | None = None) -> Any:
        return lambda_handler.handler(self.event(key, size), self.function.context())

    def fail(self, key: str, size: int | None = None) -> tuple[str, float]:
        """Invoke for ``key``, which must raise ``InvocationError``: its message, the seconds."""
        started = time.monotonic()
        with pytest.raises(InvocationError) as raised:
            self.invoke(key, size)
        return str(raised.value), time.monotonic() - started


@pytest.fixture
def deployed(
    install: Install, make_bucket: MakeBucket, load_event: LoadEvent, mark_dir: Path
) -> Deployed:
    source, out = make_bucket("in"), make_bucket("out")
    function = install(COPY_SCRIPT, definition(out, mark_dir))
    return Deployed(source, out, function, load_event)


# --- stage-in ---------------------------------------------------------------------------


def test_slowdown_on_get_is_retried(
    deployed: Deployed,
    proxy: FaultProxy,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
    tally: Callable[..., None],
) -> None:
    source, out = deployed.source, deployed.out
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"pixels")
    slowdown = proxy.add(
        Fault("GET", rf"^/{source}/incoming/photo\.jpg", status=503, code="SlowDown", times=2)
    )

    response = deployed.invoke("incoming/photo.jpg")

    tally(slowdown)
    assert response["statusCode"] == 200
    assert slowdown.fired == 2
    assert objects(s3, out) == {"results/photo.jpg": b"pixels"}
    stdout = capsys.readouterr().out
    for attempt in (2, 3):
        assert (
            f"Retrying S3 GetObject of s3://{source}/incoming/photo.jpg "
            f"(attempt {attempt} of {MAX_ATTEMPTS}) after SlowDown (HTTP 503)"
        ) in stdout


def test_persistent_500_on_get(
    deployed: Deployed,
    proxy: FaultProxy,
    s3: Any,
    mark_dir: Path,
    aws_env: dict[str, str],
    tally: Callable[..., None],
) -> None:
    source, out = deployed.source, deployed.out
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"pixels")
    broken = proxy.add(
        Fault("GET", rf"^/{source}/incoming/photo\.jpg", times=None, **INTERNAL_ERROR)
    )

    message, elapsed = deployed.fail("incoming/photo.jpg")

    tally(broken)
    assert f"cannot download s3://{source}/incoming/photo.jpg" in message
    assert f"InternalError {INTERNAL_ERROR['message']} ({MAX_ATTEMPTS} attempts)" in message
    assert_clear(message, aws_env)
    assert broken.fired == MAX_ATTEMPTS
    assert elapsed < FAIL_WITHIN_S
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}
    assert list(deployed.function.work_dir.iterdir()) == []


def test_access_denied_on_get(
    deployed: Deployed,
    proxy: FaultProxy,
    s3: Any,
    mark_dir: Path,
    aws_env: dict[str, str],
    tally: Callable[..., None],
) -> None:
    source, out = deployed.source, deployed.out
    s3.put_object(Bucket=source, Key="private/report.csv", Body=b"secret numbers")
    denied = proxy.add(
        Fault(
            "GET",
            rf"^/{source}/private/report\.csv",
            status=403,
            code="AccessDenied",
            message="Access Denied",
            times=None,
        )
    )

    message, _ = deployed.fail("private/report.csv")

    tally(denied)
    assert f"cannot download s3://{source}/private/report.csv" in message
    assert message.endswith("access denied")
    assert_clear(message, aws_env)
    assert denied.fired == 1
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}


def test_missing_object(
    deployed: Deployed,
    proxy: FaultProxy,
    s3: Any,
    mark_dir: Path,
    aws_env: dict[str, str],
) -> None:
    source, out = deployed.source, deployed.out

    message, _ = deployed.fail("incoming/gone.txt")

    assert f"cannot download s3://{source}/incoming/gone.txt: the object does not exist" in message
    assert_clear(message, aws_env)
    assert ("HEAD", f"/{source}/incoming/gone.txt") in proxy.requests
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}


def test_a_small_object_sized_by_its_event_is_read_with_one_get(
    deployed: Deployed, proxy: FaultProxy, s3: Any
) -> None:
    """The event's size and ETag spare the HEAD that would ask for them."""
    source, out = deployed.source, deployed.out
    s3.put_object(Bucket=source, Key="incoming/small.txt", Body=b"small data")

    response = deployed.invoke("incoming/small.txt", size=len(b"small data"))

    assert response["statusCode"] == 200
    assert objects(s3, out) == {"results/small.txt": b"small data"}
    reads = [request for request in proxy.requests if request[1].startswith(f"/{source}/")]
    assert reads == [("GET", f"/{source}/incoming/small.txt")]


# --- multipart uploads ------------------------------------------------------------------


def big_input(s3: Any, bucket: str, size: int = 20 * MIB) -> bytes:
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="incoming/big.bin", Body=data)
    return data


def test_reset_in_a_multipart_upload(
    deployed: Deployed, proxy: FaultProxy, s3: Any, tally: Callable[..., None]
) -> None:
    out = deployed.out
    data = big_input(s3, deployed.source)
    # 20 MiB in parts of 8 MiB: part 2 is cut after 1 MiB of its body, once.
    reset = proxy.add(
        Fault("PUT", r"[?&]partNumber=2(&|$)", action="reset", after_bytes=MIB, times=1)
    )
    completion = proxy.add(Fault("POST", r"[?&]uploadId=", status=503, times=1))

    response = deployed.invoke("incoming/big.bin", len(data))

    tally(reset, completion)
    assert response["statusCode"] == 200
    assert (reset.fired, completion.fired) == (1, 1)
    landed = s3.get_object(Bucket=out, Key="results/big.bin")
    assert landed["Body"].read() == data
    assert landed["ETag"].strip('"').endswith("-3")
    assert s3.list_multipart_uploads(Bucket=out).get("Uploads", []) == []


def test_persistent_resets_abort_the_upload(
    deployed: Deployed,
    proxy: FaultProxy,
    s3: Any,
    mark_dir: Path,
    aws_env: dict[str, str],
    tally: Callable[..., None],
) -> None:
    out = deployed.out
    data = big_input(s3, deployed.source)
    resets = proxy.add(
        Fault("PUT", r"[?&]partNumber=\d+", action="reset", after_bytes=MIB, times=None)
    )

    message, elapsed = deployed.fail("incoming/big.bin", len(data))

    tally(resets)
    assert f"to s3://{out}/results/big.bin: the connection to {proxy.url}" in message
    assert "reset" in message
    assert_clear(message, aws_env)
    assert MAX_ATTEMPTS <= resets.fired <= 3 * MAX_ATTEMPTS
    assert elapsed < FAIL_WITHIN_S
    assert (mark_dir / "ran").exists()
    aborts = [path for method, path in proxy.requests if method == "DELETE"]
    assert len(aborts) == 1
    assert "uploadId=" in aborts[0]
    assert s3.list_multipart_uploads(Bucket=out).get("Uploads", []) == []
    assert objects(s3, out) == {}


# --- several outputs --------------------------------------------------------------------

OUTPUTS_SCRIPT = """\
set -eu
for name in a b c d; do echo "result $name" > "$TMP_OUTPUT_DIR/$name.txt"; done
"""


@pytest.mark.parametrize("caller", ["s3-event", "api"])
def test_one_failing_output_lists_the_others(
    install: Install,
    proxy: FaultProxy,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    mark_dir: Path,
    aws_env: dict[str, str],
    tally: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
    caller: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"pixels")
    function = install(OUTPUTS_SCRIPT, {"output": [{"path": f"{out}/results"}]})
    broken = proxy.add(Fault("PUT", rf"^/{out}/results/c\.txt", times=None, **INTERNAL_ERROR))
    context = function.context()

    if caller == "api":
        response = lambda_handler.handler(load_event("apigw_v2.json"), context)
        assert response["statusCode"] == 500
        text = base64.b64decode(response["body"]).decode()
        assert text.count("\n") == 1
        assert text.endswith("\n")
        message = text.strip()
    else:
        with pytest.raises(InvocationError) as raised:
            lambda_handler.handler(s3_put(load_event, source, "incoming/photo.jpg"), context)
        message = str(raised.value)

    tally(broken)
    assert broken.fired == MAX_ATTEMPTS
    stored = {f"results/{name}.txt": f"result {name}\n".encode() for name in "abd"}
    assert objects(s3, out) == stored
    listing = f"s3://{out}/results/a.txt, s3://{out}/results/b.txt, s3://{out}/results/d.txt"
    assert f"to s3://{out}/results/c.txt: InternalError We encountered" in message
    assert message.endswith(f"; uploaded before the failure: {listing}")
    assert_clear(message, aws_env)
    assert f"Uploaded before the failure (3 of 4 files): {listing}" in capsys.readouterr().out
