"""The Lambda handler in-process, in ``lambda`` mode, against a real moto server over HTTP.

Each test ships a real ``/bin/sh`` script and a definition as the zip runtime would (``FDL``),
calls ``handlers.lambda_handler.handler(event, context)`` and checks what a user would:
the objects that landed and their bytes, the response, the error raised to Lambda, the
processes left behind, the log lines.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from handlers import lambda_handler
from supervisor.errors import ConfigError, InvocationError
from tests.functional.lambda_support import (
    LambdaFunction,
    install_function,
)

MakeBucket = Callable[[str], str]
LoadEvent = Callable[[str], Any]
Install = Callable[..., LambdaFunction]

EVENT_TIME = "2026-11-28T10:00:00.000Z"

COPY_SCRIPT = """\
set -eu
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
printf '%s\\n' "$STORAGE_OBJECT_KEY"
"""

# Leaves a mark, so that a test can tell the script never ran.
MARKING_SCRIPT = """\
set -eu
touch "$MARK_DIR/ran"
echo partial > "$TMP_OUTPUT_DIR/partial.txt"
"""


class EventFile(NamedTuple):
    name: str


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: dict[str, str]) -> Install:
    def make(script: str, definition: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return install_function(monkeypatch, tmp_path, script, definition, **kwargs)

    return make


def marked(mark_dir: Path, **container: Any) -> dict[str, Any]:
    """``container`` settings that tell ``MARKING_SCRIPT`` where to leave its mark."""
    return {**container, "environment": {"Variables": {"MARK_DIR": str(mark_dir)}}}


def with_bucket(load_event: LoadEvent, name: str, bucket: str) -> Any:
    """A recorded event with its placeholder bucket name replaced (nested messages too)."""
    return json.loads(json.dumps(load_event(name)).replace("input-bucket", bucket))


def s3_put(load_event: LoadEvent, bucket: str, key: str = "incoming/photo.jpg") -> Any:
    """An S3 notification for ``key`` (given as S3 sends it: URL-encoded)."""
    event = with_bucket(load_event, "s3_put.json", bucket)
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed
    }


def body_of(response: Mapping[str, Any]) -> bytes:
    assert response["isBase64Encoded"] is True
    return base64.b64decode(response["body"], validate=True)


def one_line(response: Mapping[str, Any]) -> str:
    text = body_of(response).decode()
    assert text.endswith("\n")
    assert text.count("\n") == 1, text
    assert "Traceback" not in text
    assert 'File "' not in text
    return text


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def parse_env(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.isidentifier():
            found[name] = value
    return found


def process_gone(pid: int) -> bool:
    """No such process, or a zombie that is no longer our child (waiting for init to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[0] in ("Z", "X") and int(fields[1]) != os.getpid()


# --- S3 events ------------------------------------------------------------------------------


def test_s3_event_outputs_land_in_every_output_they_match(
    install: Install, s3: Any, make_bucket: MakeBucket, load_event: LoadEvent
) -> None:
    source, texts, stats = make_bucket("in"), make_bucket("texts"), make_bucket("stats")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"hello world")
    function = install(
        """\
set -eu
mkdir -p "$TMP_OUTPUT_DIR/deep/nested"
tr 'a-z' 'A-Z' < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/upper.txt"
printf '{"bytes": %s}\\n' "$(wc -c < "$INPUT_FILE_PATH" | tr -d ' ')" > "$TMP_OUTPUT_DIR/stats.json"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/deep/nested/copy.txt"
echo "for nobody" > "$TMP_OUTPUT_DIR/notes.log"
echo "processed $(basename "$INPUT_FILE_PATH")"
""",
        {
            "input": [{"storage_provider": "s3", "path": f"{source}/incoming"}],
            "output": [
                {"storage_provider": "s3", "path": f"{texts}/results/text", "suffix": [".txt"]},
                {"storage_provider": "s3", "path": f"{stats}/json", "suffix": [".json"]},
                {"storage_provider": "s3", "path": f"{stats}/all-stats", "prefix": ["stats"]},
            ],
        },
    )
    context = function.context()

    response = lambda_handler.handler(s3_put(load_event, source), context)

    assert response["statusCode"] == 200
    assert response["headers"] == {
        "amz-lambda-request-id": context.aws_request_id,
        "amz-log-group-name": context.log_group_name,
        "amz-log-stream-name": context.log_stream_name,
    }
    assert body_of(response) == b"processed photo.jpg\n"
    assert objects(s3, texts) == {
        "results/text/upper.txt": b"HELLO WORLD",
        "results/text/deep/nested/copy.txt": b"hello world",
    }
    assert objects(s3, stats) == {
        "json/stats.json": b'{"bytes": 11}\n',
        "all-stats/stats.json": b'{"bytes": 11}\n',
    }
    assert objects(s3, source) == {"incoming/photo.jpg": b"hello world"}


def test_the_script_gets_the_contract_environment_and_no_credentials(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    aws_env: dict[str, str],
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"pixels")
    function = install(
        """\
set -eu
env > "$TMP_OUTPUT_DIR/env.txt"
printf '%s' "$EVENT" > "$TMP_OUTPUT_DIR/event.json"
ls -A "$TMP_INPUT_DIR" > "$TMP_OUTPUT_DIR/inputs.txt"
""",
        {
            "output": [{"path": f"{out}/run"}],
            "container": {
                "environment": {"Variables": {"MODEL": "small", "THRESHOLD": 0.5, "DEBUG": True}}
            },
        },
    )
    context = function.context()
    event = s3_put(load_event, source)

    response = lambda_handler.handler(event, context)

    assert response["statusCode"] == 200
    landed = objects(s3, out)
    env_text = landed["run/env.txt"].decode()
    env = parse_env(env_text)
    assert env["TMP_INPUT_DIR"] != env["TMP_OUTPUT_DIR"]
    for name in ("TMP_INPUT_DIR", "TMP_OUTPUT_DIR"):
        assert Path(env[name]).is_relative_to(function.work_dir)
    assert env["INPUT_FILE_PATH"] == f"{env['TMP_INPUT_DIR']}/photo.jpg"
    assert landed["run/inputs.txt"] == b"photo.jpg\n"
    assert env["STORAGE_OBJECT_KEY"] == "incoming/photo.jpg"
    assert env["EVENT_TIME"] == EVENT_TIME
    assert json.loads(landed["run/event.json"]) == event
    assert env["REQUEST_ID"] == context.aws_request_id
    assert env["AWS_LAMBDA_REQUEST_ID"] == context.aws_request_id
    assert "INSTANCE_IP" in env
    assert (env["MODEL"], env["THRESHOLD"], env["DEBUG"]) == ("small", "0.5", "true")
    for name in (
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN",
        "FDL",
        "FUNCTION_CONFIG",
    ):
        assert name not in env
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in env_text
    assert aws_env["AWS_ACCESS_KEY_ID"] not in env_text
    assert os.environ["FDL"] not in env_text
    assert not Path(env["TMP_OUTPUT_DIR"]).exists()


def test_two_records_are_two_script_runs(
    install: Install, s3: Any, make_bucket: MakeBucket, load_event: LoadEvent
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/one.txt", Body=b"first")
    s3.put_object(Bucket=source, Key="incoming/two.txt", Body=b"second")
    function = install(
        """\
set -eu
name=$(basename "$INPUT_FILE_PATH")
{ printf '%s: ' "$STORAGE_OBJECT_KEY"; cat "$INPUT_FILE_PATH"; } > "$TMP_OUTPUT_DIR/$name"
echo "ran for $STORAGE_OBJECT_KEY with $(ls -A "$TMP_INPUT_DIR")"
""",
        {"output": [{"path": f"{out}/done"}]},
    )

    response = lambda_handler.handler(
        with_bucket(load_event, "s3_two_records.json", source), function.context()
    )

    assert response["statusCode"] == 200
    assert body_of(response) == (
        b"ran for incoming/one.txt with one.txt\nran for incoming/two.txt with two.txt\n"
    )
    assert objects(s3, out) == {
        "done/one.txt": b"incoming/one.txt: first",
        "done/two.txt": b"incoming/two.txt: second",
    }


@pytest.mark.parametrize(
    ("event_file", "key"),
    [
        pytest.param("sqs_s3.json", "incoming/from-sqs.txt", id="sqs"),
        pytest.param("sns_s3.json", "incoming/from-sns.txt", id="sns"),
        pytest.param("eventbridge_s3.json", "incoming/from eventbridge.txt", id="eventbridge"),
        pytest.param(
            "sqs_eventbridge_s3.json", "incoming/from eventbridge.txt", id="sqs-eventbridge"
        ),
    ],
)
def test_wrapped_s3_events_are_processed_end_to_end(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    event_file: str,
    key: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key=key, Body=b"wrapped data")
    function = install(COPY_SCRIPT, {"output": [{"path": f"{out}/copies"}]})

    response = lambda_handler.handler(
        with_bucket(load_event, event_file, source), function.context()
    )

    assert response["statusCode"] == 200
    assert body_of(response) == f"{key}\n".encode()
    assert objects(s3, out) == {f"copies/{key.rpartition('/')[2]}": b"wrapped data"}


def test_a_minio_record_is_read_and_written_through_its_provider(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, out = make_bucket("minio-in"), make_bucket("minio-out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"from minio")
    function = install(
        COPY_SCRIPT,
        {
            "input": [{"storage_provider": "minio.lab", "path": f"{source}/incoming"}],
            "output": [{"storage_provider": "minio.lab", "path": f"{out}/processed"}],
            "storage_providers": {
                "minio": {
                    "lab": {
                        "endpoint": moto_server,
                        "verify": False,
                        "access_key": "minio-access-key",
                        "secret_key": "minio-secret-key-not-logged",
                    }
                }
            },
        },
    )
    # Only the minio.lab endpoint leads to the moto server: the default S3 provider cannot.
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    response = lambda_handler.handler(
        with_bucket(load_event, "minio_put.json", source), function.context()
    )

    assert response["statusCode"] == 200
    assert body_of(response) == b"incoming/photo.jpg\n"
    assert objects(s3, out) == {"processed/photo.jpg": b"from minio"}


@pytest.mark.parametrize(
    ("encoded", "key"),
    [
        pytest.param(None, "incoming/my holiday été +1.txt", id="recorded-event"),
        pytest.param(
            "uploads/na%C3%AFve+r%C3%A9sum%C3%A9+%28final%29+100%25.csv",
            "uploads/naïve résumé (final) 100%.csv",
            id="percent-and-parentheses",
        ),
    ],
)
def test_keys_with_spaces_plus_and_unicode_are_decoded_once(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    encoded: str | None,
    key: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key=key, Body=b"special")
    function = install(COPY_SCRIPT, {"output": [{"path": f"{out}/converted"}]})
    event = with_bucket(load_event, "s3_special_key.json", source)
    if encoded is not None:
        event["Records"][0]["s3"]["object"]["key"] = encoded

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 200
    assert body_of(response).decode() == f"{key}\n"
    assert objects(s3, out) == {f"converted/{key.rpartition('/')[2]}": b"special"}


# --- API requests and direct invocations ----------------------------------------------------

API_SCRIPT = """\
set -eu
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/received"
echo "file=$(basename "$INPUT_FILE_PATH")"
env | grep '^CONT_VAR_' | sort
"""


@pytest.mark.parametrize(
    ("event_file", "received", "query"),
    [
        pytest.param(
            "apigw_v1.json",
            b"\x89PNG\r\n\x1a\nbinary body",
            "CONT_VAR_mode=fast\nCONT_VAR_width=640\n",
            id="rest-api-v1-base64",
        ),
        pytest.param(
            "apigw_v2.json", b"hello from an HTTP API", "CONT_VAR_lang=en\n", id="http-api-v2"
        ),
    ],
)
def test_an_api_request_body_is_the_input_file(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    event_file: str,
    received: bytes,
    query: str,
) -> None:
    out = make_bucket("out")
    function = install(API_SCRIPT, {"output": [{"path": f"{out}/requests"}]})

    response = lambda_handler.handler(load_event(event_file), function.context())

    assert response["statusCode"] == 200
    assert body_of(response).decode() == f"file=api_event_file\n{query}"
    assert objects(s3, out) == {"requests/received": received}


def test_a_direct_invocation_is_saved_as_the_input_file(
    install: Install, s3: Any, make_bucket: MakeBucket, load_event: LoadEvent
) -> None:
    out = make_bucket("out")
    function = install(API_SCRIPT, {"output": [{"path": f"{out}/direct"}]})
    event = load_event("direct.json")

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 200
    assert body_of(response) == b"file=event_file\n"
    landed = objects(s3, out)
    assert list(landed) == ["direct/received"]
    assert json.loads(landed["direct/received"]) == event


# --- bad events -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        pytest.param("this is not { json", "the event is not JSON", id="not-json"),
        pytest.param({"Records": []}, "Records is empty", id="no-records"),
        pytest.param(
            EventFile("s3_no_object.json"),
            "Records[0].s3.object is missing",
            id="record-without-object",
        ),
    ],
)
def test_an_event_that_cannot_be_understood_is_a_400(
    install: Install,
    load_event: LoadEvent,
    mark_dir: Path,
    event: Any,
    missing: str,
) -> None:
    function = install(MARKING_SCRIPT, {"container": marked(mark_dir)})
    if isinstance(event, EventFile):
        event = load_event(event.name)
    context = function.context()

    response = lambda_handler.handler(event, context)

    assert response["statusCode"] == 400
    assert response["headers"]["amz-lambda-request-id"] == context.aws_request_id
    text = one_line(response)
    assert missing in text
    assert not (mark_dir / "ran").exists()


@pytest.mark.parametrize(
    ("event_file", "encoded", "key"),
    [
        pytest.param(
            "s3_dotdot_key.json", None, "incoming/../../../etc/cron.d/..", id="dot-dot-parts"
        ),
        pytest.param("s3_put.json", "incoming/%2E%2E", "incoming/..", id="encoded-dot-dot"),
    ],
)
def test_an_unsafe_key_fails_the_invocation_without_writing_outside_the_work_folder(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    mark_dir: Path,
    tmp_path: Path,
    event_file: str,
    encoded: str | None,
    key: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    if key.endswith("/"):
        s3.put_object(Bucket=source, Key=key, Body=b"")
    function = install(
        MARKING_SCRIPT,
        {
            "output": [{"path": f"{out}/results"}],
            "container": marked(mark_dir),
        },
    )
    event = with_bucket(load_event, event_file, source)
    if encoded is not None:
        event["Records"][0]["s3"]["object"]["key"] = encoded
    context = function.context()
    before = tree(tmp_path)

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(event, context)

    message = str(raised.value)
    assert f"cannot stage the object key {key!r}" in message
    assert "\n" not in message
    assert tree(tmp_path) - before == {function.work_dir}
    assert list(function.work_dir.iterdir()) == []
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}


def test_a_folder_marker_is_skipped_with_a_200_and_runs_nothing(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    mark_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`scar put`, `scar init` and the S3 console create `folder/` objects; their notifications
    must not fail (Lambda would retry them into the failure destination)."""
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/folder/", Body=b"")
    function = install(
        MARKING_SCRIPT, {"output": [{"path": f"{out}/results"}], "container": marked(mark_dir)}
    )
    event = with_bucket(load_event, "s3_folder_key.json", source)

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 200
    assert body_of(response) == b""
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}
    assert "Skipping the folder marker" in capsys.readouterr().out


def test_an_empty_event_runs_the_script_once_without_an_input_file(
    install: Install, tmp_path: Path
) -> None:
    """What plain `scar run` sends: `{}`."""
    function = install('echo "input=[$INPUT_FILE_PATH] args=$#"\n', {})

    response = lambda_handler.handler({}, function.context())

    assert response["statusCode"] == 200
    assert body_of(response) == b"input=[] args=0\n"


def test_a_missing_object_fails_the_invocation_naming_bucket_and_key(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    mark_dir: Path,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    function = install(
        MARKING_SCRIPT,
        {
            "output": [{"path": f"{out}/results"}],
            "container": marked(mark_dir),
        },
    )

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(s3_put(load_event, source), function.context())

    message = str(raised.value)
    assert f"s3://{source}/incoming/photo.jpg" in message
    assert "does not exist" in message
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}


def test_an_upload_failure_answers_an_api_caller_with_a_500(
    install: Install, load_event: LoadEvent
) -> None:
    """A request someone waits on gets a one-line 500, not a raise, when staging fails."""
    missing = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    function = install(
        'echo done > "$TMP_OUTPUT_DIR/result.txt"\n',
        {"output": [{"path": f"{missing}/results"}]},
    )
    context = function.context()

    response = lambda_handler.handler(load_event("apigw_v2.json"), context)

    assert response["statusCode"] == 500
    assert response["headers"]["amz-lambda-request-id"] == context.aws_request_id
    text = one_line(response)
    assert missing in text
    assert "results/result.txt" in text


# --- script failures and the watchdog -------------------------------------------------------


def test_a_failing_script_fails_the_invocation_and_uploads_nothing(
    install: Install, s3: Any, make_bucket: MakeBucket, load_event: LoadEvent
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"data")
    function = install(
        """\
echo "half done" > "$TMP_OUTPUT_DIR/half.txt"
echo "cannot decode the image" >&2
exit 3
""",
        {"output": [{"path": f"{out}/results"}]},
    )

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(s3_put(load_event, source), function.context())

    message = str(raised.value)
    assert "incoming/photo.jpg" in message
    assert "exited with 3" in message
    assert objects(s3, out) == {}
    assert list(function.work_dir.iterdir()) == []


def test_a_failing_script_answers_an_api_caller_with_a_one_line_500(
    install: Install, s3: Any, make_bucket: MakeBucket, load_event: LoadEvent
) -> None:
    out = make_bucket("out")
    function = install(
        """\
echo "half done" > "$TMP_OUTPUT_DIR/half.txt"
echo "step 1 of 2"
echo "cannot decode the image" >&2
exit 3
""",
        {"output": [{"path": f"{out}/results"}]},
    )

    response = lambda_handler.handler(load_event("apigw_v2.json"), function.context())

    assert response["statusCode"] == 500
    assert "exited with 3" in one_line(response)
    assert objects(s3, out) == {}


def test_the_watchdog_kills_the_script_and_its_background_children(
    install: Install, s3: Any, make_bucket: MakeBucket, load_event: LoadEvent, tmp_path: Path
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"data")
    pids = tmp_path / "pids"
    pids.mkdir()
    function = install(
        """\
echo partial > "$TMP_OUTPUT_DIR/partial.txt"
sleep 60 &
echo $! > "$PID_DIR/grandchild.pid"
sleep 60
""",
        {
            "output": [{"path": f"{out}/results"}],
            "container": {
                "timeout_threshold": 1,
                "environment": {"Variables": {"PID_DIR": str(pids)}},
            },
        },
    )
    context = function.context(timeout_s=3.0)
    started = time.monotonic()

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(s3_put(load_event, source), context)

    elapsed = time.monotonic() - started
    assert 1.0 < elapsed < 10.0
    assert "deadline" in str(raised.value)
    grandchild = int((pids / "grandchild.pid").read_text())
    end = time.monotonic() + 3.0
    while not process_gone(grandchild) and time.monotonic() < end:
        time.sleep(0.05)
    assert process_gone(grandchild)
    assert objects(s3, out) == {}
    assert list(function.work_dir.iterdir()) == []


# --- the execution environment: warm reuse, runtime, definition -----------------------------


def test_warm_invocations_reuse_the_supervisor_and_leave_no_work_files(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/a.txt", Body=b"first")
    s3.put_object(Bucket=source, Key="incoming/b.txt", Body=b"second")
    function = install(
        """\
set -eu
ls -A "$TMP_INPUT_DIR"
ls -A "$TMP_OUTPUT_DIR" | sed 's/^/left over: /'
echo "output dir: $TMP_OUTPUT_DIR"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
echo scratch > "$TMP_OUTPUT_DIR/../scratch.tmp"
""",
        {"output": [{"path": f"{out}/copies"}]},
    )

    first = lambda_handler.handler(s3_put(load_event, source, "incoming/a.txt"), function.context())
    built = lambda_handler.built()
    assert built is not None
    assert list(function.work_dir.iterdir()) == []
    # A warm environment never reads its definition again.
    monkeypatch.setenv("FDL", "name: [")
    second = lambda_handler.handler(
        s3_put(load_event, source, "incoming/b.txt"), function.context()
    )

    assert lambda_handler.built() is built
    assert list(function.work_dir.iterdir()) == []
    first_lines = body_of(first).decode().splitlines()
    second_lines = body_of(second).decode().splitlines()
    assert first_lines[0] == "a.txt"
    assert second_lines[:1] == ["b.txt"]
    assert not any(line.startswith("left over") for line in first_lines + second_lines)
    first_output = first_lines[-1].removeprefix("output dir: ")
    assert Path(first_output).is_relative_to(function.work_dir)
    assert not Path(first_output).exists()
    assert objects(s3, out) == {"copies/a.txt": b"first", "copies/b.txt": b"second"}


def test_a_container_image_in_the_zip_runtime_fails_clearly(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    mark_dir: Path,
    tmp_path: Path,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"data")
    missing = tmp_path / "no-such-image.tar"
    function = install(
        MARKING_SCRIPT,
        {
            "output": [{"path": f"{out}/results"}],
            "container": marked(mark_dir, image="ubuntu:24.04", image_file=str(missing)),
        },
    )

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(s3_put(load_event, source), function.context())

    message = str(raised.value)
    assert "udocker" in message
    assert f"container.image_file {missing}" in message
    assert "ubuntu:24.04" in message
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}
    assert list(function.work_dir.iterdir()) == []


def test_a_container_image_in_the_image_runtime_runs_the_script_directly(
    install: Install, s3: Any, make_bucket: MakeBucket, load_event: LoadEvent
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"data")
    function = install(
        COPY_SCRIPT,
        {"output": [{"path": f"{out}/results"}], "container": {"image": "ubuntu:24.04"}},
        execution_env="AWS_Lambda_Image",
    )

    response = lambda_handler.handler(s3_put(load_event, source), function.context())

    assert response["statusCode"] == 200
    assert objects(s3, out) == {"results/photo.jpg": b"data"}


def test_an_invalid_definition_raises_a_config_error_naming_the_key(
    install: Install, load_event: LoadEvent
) -> None:
    function = install(COPY_SCRIPT, {"execution_mode": "cloud"})

    with pytest.raises(ConfigError) as raised:
        lambda_handler.handler(s3_put(load_event, "any-bucket"), function.context())

    message = str(raised.value)
    assert "execution_mode" in message
    assert "'cloud'" in message
    assert lambda_handler.built() is None


# --- logs -----------------------------------------------------------------------------------


def test_log_lines_name_the_object_and_never_the_secret_key(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    aws_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = aws_env["AWS_SECRET_ACCESS_KEY"]
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"data")
    function = install(
        'echo "signing with $CARELESS"\n' + COPY_SCRIPT,
        {
            "log_level": "DEBUG",
            "output": [{"path": f"{out}/results"}],
            # A script that prints a credential it was handed: its output is logged too.
            "container": {"environment": {"Variables": {"CARELESS": secret}}},
        },
    )
    context = function.context()

    response = lambda_handler.handler(s3_put(load_event, source), context)

    assert response["statusCode"] == 200
    stdout, stderr = capsys.readouterr()
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    naming = [
        line
        for line in lines
        if source in str(line.get("message")) and "incoming/photo.jpg" in str(line.get("message"))
    ]
    assert naming, stdout
    assert naming[0].get("function_request_id") == context.aws_request_id
    assert any(str(line.get("message")) == "signing with ***" for line in lines), stdout
    assert secret not in stdout
    assert secret not in stderr


def test_the_s3_test_event_runs_nothing(install: Install, load_event: LoadEvent) -> None:
    """The notification S3 sends when a bucket's notifications are set up is not work."""
    function = install('echo ran > "$TMP_OUTPUT_DIR/ran.txt"\n', {"execution_mode": "batch"})

    response = lambda_handler.handler(load_event("sqs_s3_test_event.json"), function.context())

    assert response["statusCode"] == 200
    assert base64.b64decode(response["body"]) == b""


# --- mistakes in the definition and the outputs ---------------------------------------------


def test_a_deployed_function_warns_of_an_unknown_key_and_of_files_no_output_takes(
    install: Install,
    s3: Any,
    make_bucket: MakeBucket,
    load_event: LoadEvent,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A key a later SCAR may add must not stop a deployed function: it is a warning."""
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"pixels")
    function = install(
        'echo csv > "$TMP_OUTPUT_DIR/table.csv"\necho log > "$TMP_OUTPUT_DIR/notes.log"\n',
        {
            "outputs": [{"path": f"{out}/ignored"}],
            "output": [{"path": f"{out}/tables", "suffix": [".csv"], "prefx": ["t"]}],
        },
    )

    response = lambda_handler.handler(s3_put(load_event, source), function.context())

    assert response["statusCode"] == 200
    assert objects(s3, out) == {"tables/table.csv": b"csv\n"}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    warnings = [line["message"] for line in lines if line.get("level") == "WARNING"]
    assert warnings == [
        "Function definition: env FDL: unknown key 'outputs' (did you mean 'output'?)",
        "Function definition: env FDL: output[0]: unknown key 'prefx' (did you mean 'prefix'?)",
        f"Not uploaded, matching no output: 'notes.log' (the outputs take {out}/tables: "
        "suffix '.csv')",
    ]
