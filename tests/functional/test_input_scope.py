"""A record only touches what the function is configured for: the Lambda handler in-process
against a real moto server, with a real ``/bin/sh`` script that copies its input out.

The attacker is whoever can invoke the function or write to a bucket that notifies it: they
name an object the function's role can read but that lies outside its inputs, and hope to
find it copied to the outputs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from handlers import lambda_handler
from supervisor.errors import InvocationError
from tests.functional.lambda_support import LambdaFunction, install_function

MakeBucket = Callable[[str], str]
Install = Callable[..., LambdaFunction]

COPY_SCRIPT = """\
set -eu
touch "$MARK_DIR/ran-$(basename "$INPUT_FILE_PATH")"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
"""


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: dict[str, str]) -> Install:
    def make(definition: Mapping[str, Any]) -> LambdaFunction:
        return install_function(monkeypatch, tmp_path, COPY_SCRIPT, definition)

    return make


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


@pytest.fixture
def buckets(s3: Any, make_bucket: MakeBucket) -> dict[str, str]:
    """An input bucket, an output bucket, and a private bucket the role can read too."""
    made = {"source": make_bucket("in"), "out": make_bucket("out"), "private": make_bucket("priv")}
    s3.put_object(Bucket=made["source"], Key="incoming/photo.jpg", Body=b"uploaded")
    s3.put_object(Bucket=made["source"], Key="incoming/sub/deep.jpg", Body=b"deep")
    s3.put_object(Bucket=made["source"], Key="incoming2/other.jpg", Body=b"next door")
    s3.put_object(Bucket=made["source"], Key="private/keys.txt", Body=b"same bucket secret")
    s3.put_object(Bucket=made["private"], Key="payroll.csv", Body=b"salaries")
    return made


def definition(buckets: Mapping[str, str], marks: Path, **extra: Any) -> dict[str, Any]:
    return {
        "input": [{"storage_provider": "s3", "path": f"{buckets['source']}/incoming"}],
        "output": [{"storage_provider": "s3", "path": f"{buckets['out']}/copies"}],
        "container": {"environment": {"Variables": {"MARK_DIR": str(marks)}}},
        **extra,
    }


def record(bucket: str, key: str, *, source: str | None = "aws:s3") -> dict[str, Any]:
    item: dict[str, Any] = {"s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
    if source is not None:
        item["eventSource"] = source
    return item


def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed
    }


def body_text(response: Mapping[str, Any]) -> str:
    return base64.b64decode(response["body"]).decode()


@pytest.mark.parametrize(
    ("where", "key"),
    [
        pytest.param("private", "payroll.csv", id="another-bucket"),
        pytest.param("source", "incoming2/other.jpg", id="a-folder-with-the-same-start"),
        pytest.param("source", "private/keys.txt", id="another-folder-of-the-input-bucket"),
        pytest.param("source", "incoming/../private/keys.txt", id="dot-dot-out-of-the-folder"),
        pytest.param("source", "incoming%2F..%2Fprivate%2Fkeys.txt", id="url-encoded-dot-dot"),
        pytest.param("source", "incoming", id="the-folder-name-as-a-key"),
    ],
)
def test_a_direct_invocation_naming_an_object_outside_the_inputs_is_a_400(
    install: Install,
    s3: Any,
    buckets: dict[str, str],
    marks: Path,
    where: str,
    key: str,
) -> None:
    function = install(definition(buckets, marks))
    # A direct invocation: no eventSource, any bucket and key the caller likes.
    event = {"Records": [record(buckets[where], key, source=None)]}

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 400
    text = body_text(response)
    assert f"{buckets[where]}/" in text
    assert f"(s3 {buckets['source']}/incoming)" in text
    assert "allow_any_input" in text
    assert list(marks.iterdir()) == []
    assert objects(s3, buckets["out"]) == {}
    assert list(function.work_dir.iterdir()) == []


def test_an_s3_notification_for_another_bucket_is_refused_and_logged(
    install: Install,
    s3: Any,
    buckets: dict[str, str],
    marks: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    function = install(definition(buckets, marks))
    event = {"Records": [record(buckets["private"], "payroll.csv")]}

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 400
    assert f"the object {buckets['private']}/payroll.csv (s3) is outside" in body_text(response)
    logged = capsys.readouterr()
    assert f"{buckets['private']}/payroll.csv" in logged.out + logged.err
    assert objects(s3, buckets["out"]) == {}
    assert list(marks.iterdir()) == []


def test_objects_under_the_input_folder_run(
    install: Install, s3: Any, buckets: dict[str, str], marks: Path
) -> None:
    function = install(definition(buckets, marks))
    event = {
        "Records": [
            record(buckets["source"], "incoming/photo.jpg"),
            record(buckets["source"], "incoming/sub/deep.jpg"),
        ]
    }

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 200
    assert objects(s3, buckets["out"]) == {
        "copies/photo.jpg": b"uploaded",
        "copies/deep.jpg": b"deep",
    }


def test_a_refused_record_fails_the_invocation_while_the_others_run(
    install: Install, s3: Any, buckets: dict[str, str], marks: Path
) -> None:
    """One event, two records: the one outside is never downloaded, and the invocation
    fails naming it, so that Lambda's retries and failure destination keep the event."""
    function = install(definition(buckets, marks))
    event = {
        "Records": [
            record(buckets["private"], "payroll.csv"),
            record(buckets["source"], "incoming/photo.jpg"),
        ]
    }

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(event, function.context())

    message = str(raised.value)
    assert f"payroll.csv: failed (refused: the object {buckets['private']}/payroll.csv" in message
    assert objects(s3, buckets["out"]) == {"copies/photo.jpg": b"uploaded"}
    assert sorted(path.name for path in marks.iterdir()) == ["ran-photo.jpg"]


def test_allow_any_input_accepts_an_object_from_anywhere(
    install: Install, s3: Any, buckets: dict[str, str], marks: Path
) -> None:
    function = install(definition(buckets, marks, allow_any_input=True))
    event = {"Records": [record(buckets["private"], "payroll.csv", source=None)]}

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 200
    assert objects(s3, buckets["out"]) == {"copies/payroll.csv": b"salaries"}


def test_a_function_without_inputs_takes_any_object_and_any_body(
    install: Install, s3: Any, buckets: dict[str, str], marks: Path
) -> None:
    config = definition(buckets, marks)
    del config["input"]
    function = install(config)

    from_anywhere = lambda_handler.handler(
        {"Records": [record(buckets["private"], "payroll.csv")]}, function.context()
    )
    body = lambda_handler.handler({"greeting": "hello"}, function.context())

    assert from_anywhere["statusCode"] == 200
    assert body["statusCode"] == 200
    assert objects(s3, buckets["out"]) == {
        "copies/payroll.csv": b"salaries",
        "copies/event_file": json.dumps({"greeting": "hello"}).encode(),
    }


def test_a_body_is_not_judged_against_the_inputs(
    install: Install, s3: Any, buckets: dict[str, str], marks: Path
) -> None:
    function = install(definition(buckets, marks))

    response = lambda_handler.handler({"greeting": "hello"}, function.context())

    assert response["statusCode"] == 200
    assert objects(s3, buckets["out"]) == {"copies/event_file": b'{"greeting": "hello"}'}
