"""Logging set-up: line formats, redaction whatever the level and logger, idempotency."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from hypothesis import given
from hypothesis import strategies as st

from supervisor import logs
from tests.functional.lambda_support import FakeLambdaContext

ACCESS_KEY_ID = "AKIAUNITTESTKEY00042"
SECRET = "unit-secret-access-key-do-not-log"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////unit+session/token=="


@pytest.fixture
def service() -> Iterator[str]:
    """A powertools service name of its own, so that its handler writes to this test's stdout."""
    name = f"svc-{uuid.uuid4().hex[:8]}"
    yield name
    logging.getLogger(name).handlers.clear()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _raise_with_secret() -> None:
    try:
        raise KeyError("lookup failed")
    except KeyError as exc:
        raise ValueError(f"cannot sign with {SECRET}") from exc


# -- RedactingFilter and secrets_from_environ -------------------------------------------------


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        pytest.param([SECRET], f"key={SECRET}!", "key=***!", id="literal"),
        pytest.param(["abc", ""], "abc stays", "abc stays", id="too-short-ignored"),
        pytest.param(["secret", "secret-long"], "secret-long", "***", id="longest-first"),
        pytest.param(
            [TOKEN], f"X-Amz-T={quote(TOKEN, safe='')}&x", "X-Amz-T=***&x", id="url-encoded"
        ),
        pytest.param(
            [],
            "{'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAROLE0000/20261128/us-east-1/"
            "s3/aws4_request, SignedHeaders=host, Signature=" + "ab" * 32 + "'}",
            "{'Authorization': b'AWS4-HMAC-SHA256 Credential=***/20261128/us-east-1/s3/"
            "aws4_request, SignedHeaders=host, "
            "Signature=***'}",
            id="sigv4-header",
        ),
        pytest.param(
            [],
            "{'X-Amz-Security-Token': b'FwoGZXIvYXdzEBc/role+token='}",
            "{'X-Amz-Security-Token': b'***'}",
            id="token-header",
        ),
        pytest.param(
            [],
            "host:s3\nx-amz-security-token:FwoGZXIvYXdz\n\nhost;x-amz-security-token",
            "host:s3\nx-amz-security-token:***\n\nhost;x-amz-security-token",
            id="canonical-request",
        ),
        pytest.param(
            [],
            "https://b.s3/k?X-Amz-Credential=AKIAROLE%2F2026&X-Amz-Security-Token=Fwo%2B&X-Amz-Date=1",
            "https://b.s3/k?X-Amz-Credential=***%2F2026&X-Amz-Security-Token=***&X-Amz-Date=1",
            id="presigned-url",
        ),
    ],
)
def test_redact(secrets: list[str], text: str, expected: str) -> None:
    assert logs.RedactingFilter(secrets).redact(text) == expected


def test_filter_redacts_mapping_messages_and_extras() -> None:
    record = logging.makeLogRecord(
        {"msg": {"key": SECRET, "nested": [SECRET]}, "detail": f"with {SECRET}", "count": 3}
    )
    assert logs.RedactingFilter([SECRET]).filter(record)
    assert record.msg == {"key": "***", "nested": ["***"]}
    assert record.__dict__["detail"] == "with ***"
    assert record.__dict__["count"] == 3


def test_filter_survives_a_bad_format_string() -> None:
    record = logging.makeLogRecord({"msg": "%d items", "args": (SECRET,)})
    logs.RedactingFilter([SECRET]).filter(record)
    assert SECRET not in record.getMessage()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_SESSION_TOKEN": TOKEN,
                "AWS_REGION": "us-east-1",
                "PATH": "/usr/bin",
            },
            (ACCESS_KEY_ID, SECRET, TOKEN),
            id="aws-credentials",
        ),
        pytest.param(
            {"AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-token", "AWS_SECURITY_TOKEN": "abc"},
            ("container-token",),
            id="short-values-ignored",
        ),
        pytest.param(
            {"AWS_SESSION_TOKEN": TOKEN, "AWS_SECURITY_TOKEN": TOKEN}, (TOKEN,), id="deduplicated"
        ),
        pytest.param({}, (), id="none"),
    ],
)
def test_secrets_from_environ(environ: dict[str, str], expected: tuple[str, ...]) -> None:
    assert logs.secrets_from_environ(environ) == expected


# -- configure_cli ----------------------------------------------------------------------------


def test_cli_line_format() -> None:
    stream = io.StringIO()
    logs.configure_cli("info", secrets=[], stream=stream)
    logging.getLogger("supervisor.runtime").info("staged %s/%s", "bucket", "key.txt")
    logging.getLogger("supervisor.runtime").debug("not shown")

    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO supervisor.runtime: staged bucket/key.txt\n",
        stream.getvalue(),
    )


@pytest.mark.parametrize("name", logs.PACKAGE_LOGGERS)
def test_cli_routes_every_package(name: str) -> None:
    stream = io.StringIO()
    logs.configure_cli("DEBUG", secrets=[], stream=stream)
    logging.getLogger(f"{name}.module").debug("hello")
    assert stream.getvalue().endswith(f" DEBUG {name}.module: hello\n")


def test_cli_leaves_the_root_logger_and_the_libraries_levels_alone() -> None:
    """An application that embeds the supervisor keeps its own root handlers and levels."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure_cli("DEBUG", secrets=[SECRET], stream=stream)
    logging.getLogger("botocore.endpoint").debug("not shown %s", SECRET)
    logging.getLogger("urllib3.connectionpool").warning("shown %s", SECRET)

    assert (root.handlers, root.level) == (handlers, level)
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING
    assert "not shown" not in stream.getvalue()
    assert stream.getvalue().endswith(" WARNING urllib3.connectionpool: shown ***\n")


def test_the_package_logs_nowhere_until_an_application_says_where() -> None:
    code = (
        "import logging, supervisor\n"
        "print(logging.getLogger('supervisor').handlers)\n"
        "logging.getLogger('supervisor.runtime').warning('nobody asked')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[<NullHandler (NOTSET)>]"
    assert done.stderr == ""


def test_cli_redacts_at_debug_in_args_msg_and_traceback() -> None:
    stream = io.StringIO()
    logs.configure_cli("DEBUG", secrets=[SECRET, TOKEN], stream=stream)
    log = logging.getLogger("supervisor.staging")

    log.debug("credentials %s and %r", SECRET, {"token": TOKEN})
    log.debug(f"inline {SECRET}")
    try:
        _raise_with_secret()
    except ValueError:
        log.debug("signing failed", exc_info=True)

    output = stream.getvalue()
    assert SECRET not in output
    assert TOKEN not in output
    assert "credentials *** and {'token': '***'}" in output
    assert "inline ***" in output
    assert "Traceback (most recent call last)" in output
    assert "KeyError: 'lookup failed'" in output
    assert "ValueError: cannot sign with ***" in output


def test_cli_redacts_botocore_debug_requests() -> None:
    stream = io.StringIO()
    logs.configure_cli("DEBUG", secrets=[SECRET, TOKEN], stream=stream)
    logging.getLogger("botocore").setLevel(logging.DEBUG)

    _list_buckets_signed()

    output = stream.getvalue()
    assert "Sending http request" in output
    assert "Credential=***" in output
    assert SECRET not in output
    assert TOKEN not in output
    assert ACCESS_KEY_ID not in output


def test_cli_patterns_hide_credentials_it_was_not_given() -> None:
    stream = io.StringIO()
    logs.configure_cli("DEBUG", secrets=[], stream=stream)
    logging.getLogger("botocore").setLevel(logging.DEBUG)

    _list_buckets_signed()

    output = stream.getvalue()
    assert "X-Amz-Security-Token" in output
    assert TOKEN not in output
    assert ACCESS_KEY_ID not in output


def test_cli_is_idempotent() -> None:
    stream = io.StringIO()
    logs.configure_cli("INFO", secrets=[SECRET], stream=stream)
    logs.configure_cli("INFO", secrets=[SECRET], stream=stream)
    logging.getLogger("supervisor.runtime").info("once %s", SECRET)
    logging.getLogger("botocore.hooks").warning("third party once")

    assert stream.getvalue().count("once ***") == 1
    assert stream.getvalue().count("third party once") == 1


PREFIX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR) [a-z_.]+: ")
FORGED = "2026-01-01T00:00:00Z INFO supervisor.runtime: finished: all records done"


def _cli_lines(stream: io.StringIO) -> list[str]:
    lines = stream.getvalue().removesuffix("\n").split("\n")
    for line in lines:
        assert PREFIX.match(line), line
        assert not line.startswith(FORGED), line
    return lines


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param(f"a\n{FORGED}", f"a\\n{FORGED}", id="newline"),
        pytest.param(f"a\r{FORGED}", f"a\\r{FORGED}", id="carriage-return"),
        pytest.param("\x1b]0;title\x07\x1b[2Kx", "\\x1b]0;title\\x07\\x1b[2Kx", id="escapes"),
        pytest.param(f"a\u2028{FORGED}\u2029\x85", f"a\\u2028{FORGED}\\u2029\\x85", id="unicode"),
        pytest.param(
            "tab\tkept, caf\u00e9 \u20ac kept", "tab\tkept, caf\u00e9 \u20ac kept", id="kept"
        ),
    ],
)
def test_cli_record_is_one_line_whatever_its_arguments(text: str, shown: str) -> None:
    stream = io.StringIO()
    logs.configure_cli("INFO", secrets=[], stream=stream)
    logging.getLogger("supervisor.runtime").info("Downloading %s", text)

    (line,) = _cli_lines(stream)
    assert line.endswith(f"INFO supervisor.runtime: Downloading {shown}")


def test_cli_script_record_is_a_line_per_output_line_each_with_the_prefix() -> None:
    stream = io.StringIO()
    logs.configure_cli("INFO", secrets=[SECRET], stream=stream)
    logging.getLogger(logs.SCRIPT_LOGGER).info("%s", f"one\n{FORGED}\nx\r{SECRET}\x1b[2K\n")

    lines = _cli_lines(stream)
    assert [line.split(" supervisor.script: ", 1)[1] for line in lines] == [
        "one",
        FORGED,
        "x\\r***\\x1b[2K",
        "",
    ]


def test_cli_traceback_lines_are_marked_as_the_records() -> None:
    stream = io.StringIO()
    logs.configure_cli("INFO", secrets=[], stream=stream)
    try:
        raise ValueError(f"bad key\n{FORGED}\r")
    except ValueError:
        logging.getLogger("supervisor.runtime").exception("staging failed")

    lines = _cli_lines(stream)
    assert lines[0].endswith("ERROR supervisor.runtime: staging failed")
    assert lines[1].endswith("ERROR supervisor.runtime: | Traceback (most recent call last):")
    assert all(" ERROR supervisor.runtime: | " in line for line in lines[1:])
    assert lines[-2].endswith(": | ValueError: bad key")
    assert lines[-1].endswith(f": | {FORGED}\\r")


def test_redaction_finds_a_secret_written_escaped() -> None:
    secret = "line-one\nline-two"
    stream = io.StringIO()
    logs.configure_cli("INFO", secrets=[secret], stream=stream)
    logging.getLogger(logs.SCRIPT_LOGGER).info("%s", f"said {secret}".replace("\n", "\\n"))
    logging.getLogger("supervisor.runtime").info("said %s", secret)

    assert "line-two" not in stream.getvalue()
    assert stream.getvalue().count("said ***") == 2


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("X-AMZ-SECURITY-TOKEN: FwoGZXIvYXdz", id="upper-case"),
        pytest.param("x-Amz-Security-Token=FwoGZXIvYXdz", id="mixed-case"),
    ],
)
def test_a_session_token_is_redacted_whatever_its_case(text: str) -> None:
    long = "frame=1 fps=25\n" * 500  # a block of the script's output, the token at its end
    assert logs.RedactingFilter().redact(long + text).endswith("***")
    assert "FwoGZ" not in logs.RedactingFilter().redact(long + text)


# -- configure_lambda -------------------------------------------------------------------------


def test_lambda_json_lines(service: str, capsys: pytest.CaptureFixture[str]) -> None:
    logger = logs.configure_lambda("INFO", service=service, secrets=[SECRET])
    logger.info("staged %s", "key.txt")
    logger.debug("not shown")
    logging.getLogger("supervisor.execution").warning("exit code %d, key %s", 3, SECRET)

    captured = capsys.readouterr()
    first, second = _json_lines(captured.out)
    assert first["message"] == "staged key.txt"
    assert first["level"] == "INFO"
    assert first["service"] == service
    assert second["message"] == "exit code 3, key ***"
    assert second["level"] == "WARNING"
    assert second["name"] == "supervisor.execution"
    assert SECRET not in captured.out + captured.err


def test_lambda_package_lines_carry_the_context(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logs.configure_lambda("DEBUG", service=service, secrets=[SECRET])

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> str:
        logging.getLogger("supervisor.x").debug("event %s with %s", event["id"], SECRET)
        try:
            _raise_with_secret()
        except ValueError:
            logging.getLogger("handlers.lambda_handler").exception("invocation failed")
        return "done"

    context = FakeLambdaContext("scar-test", aws_request_id="5e3d9c1a-0000-4000-8000-000000000001")
    assert handler({"id": "e-1"}, context) == "done"

    captured = capsys.readouterr()
    debug, error = _json_lines(captured.out)
    for line in (debug, error):
        assert line["function_request_id"] == context.aws_request_id
        assert line["function_name"] == "scar-test"
        assert "cold_start" in line
    assert debug["message"] == "event e-1 with ***"
    assert debug["name"] == "supervisor.x"
    assert error["level"] == "ERROR"
    assert error["exception_name"] == "ValueError"
    assert "ValueError: cannot sign with ***" in error["exception"]
    assert SECRET not in captured.out + captured.err


def test_lambda_keeps_structured_exceptions_without_secrets(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure_lambda("INFO", service=service, secrets=[SECRET])
    try:
        raise RuntimeError("plain failure")
    except RuntimeError:
        logging.getLogger("supervisor.x").exception("failed")

    (line,) = _json_lines(capsys.readouterr().out)
    assert line["exception_name"] == "RuntimeError"
    assert line["stack_trace"]["type"] == "RuntimeError"


def test_lambda_is_idempotent(service: str, capsys: pytest.CaptureFixture[str]) -> None:
    first = logs.configure_lambda("INFO", service=service, secrets=[SECRET])
    second = logs.configure_lambda("INFO", service=service, secrets=[SECRET])
    second.info("from powertools")
    logging.getLogger("supervisor.x").info("from supervisor")

    lines = _json_lines(capsys.readouterr().out)
    assert [line["message"] for line in lines] == ["from powertools", "from supervisor"]
    assert first.registered_handler is second.registered_handler
    redacting = [
        f for f in second.registered_handler.filters if isinstance(f, logs.RedactingFilter)
    ]
    assert len(redacting) == 1


def test_lambda_redacts_the_runtime_root_handler(service: str) -> None:
    runtime_stream = io.StringIO()
    logging.getLogger().addHandler(logging.StreamHandler(runtime_stream))
    logs.configure_lambda("INFO", service=service, secrets=[SECRET, TOKEN])
    logging.getLogger("botocore").setLevel(logging.DEBUG)

    _list_buckets_signed()
    logging.getLogger("supervisor.x").info("not twice")

    output = runtime_stream.getvalue()
    assert "Sending http request" in output
    assert SECRET not in output
    assert TOKEN not in output
    assert "not twice" not in output


def test_cli_replaces_lambda(service: str) -> None:
    lambda_logger = logs.configure_lambda("INFO", service=service, secrets=[])
    stream = io.StringIO()
    logs.configure_cli("INFO", secrets=[], stream=stream)
    logging.getLogger("supervisor.x").info("plain")

    assert lambda_logger.registered_handler not in logging.getLogger("supervisor").handlers
    assert stream.getvalue().endswith(" INFO supervisor.x: plain\n")


# -- helpers ----------------------------------------------------------------------------------


class _Body:
    def stream(self) -> Iterator[bytes]:
        yield b"<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>"


def _list_buckets_signed() -> None:
    """A signed S3 request that botocore logs at DEBUG, answered before it leaves the process."""
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
        region_name="us-east-1",
    )
    client = session.client("s3", endpoint_url="http://127.0.0.1:9")

    def answer(**_: Any) -> AWSResponse:
        return AWSResponse("http://127.0.0.1:9/", 200, HTTPHeaders(), _Body())

    events: Any = client.meta.events  # the stubs type handlers as returning None
    events.register("before-send.s3.ListBuckets", answer)
    client.list_buckets()


# -- serialize_json: the JSON of powertools' default serializer -------------------------------

# What powertools writes with its default serializer (``LambdaPowertoolsFormatter``).
POWERTOOLS_DUMPS = {"default": str, "separators": (",", ":"), "ensure_ascii": False}
PADDING = "frame=1 fps=25\n" * 100  # past the length under which json.dumps writes it all


@pytest.mark.parametrize(
    "message",
    [
        PADDING,
        PADDING + 'quote " backslash \\ tab \t cr \r',
        PADDING + "\x00\x07\x08\x0c\x1b[2K\x1f\x7f",  # escaped by json itself
        PADDING + "\x85\u2028\u202e caf\u00e9 \U0001f600 lone \ud800",
        PADDING + "\x00message-",  # the start of the placeholder of the message
        "short \x1b\n",
        {"a": PADDING},
        12,
    ],
    ids=["plain", "short-escapes", "controls", "non-ascii", "placeholder", "short", "dict", "int"],
)
def test_serialize_json_writes_what_json_dumps_writes(message: Any) -> None:
    log = {
        "level": "INFO",
        "location": "_log_block:99",
        "message": message,
        "timestamp": "2026-12-03 10:00:00,000+0000",
        "extra": object(),
        "name": "supervisor.script",
    }
    assert logs.serialize_json(log) == json.dumps(log, **POWERTOOLS_DUMPS)


@given(st.text(min_size=1024, max_size=4096))
def test_serialize_json_writes_what_json_dumps_writes_whatever_the_text(text: str) -> None:
    log = {"level": "INFO", "message": text, "name": "supervisor.script"}
    assert logs.serialize_json(log) == json.dumps(log, **POWERTOOLS_DUMPS)


def test_lambda_script_block_is_one_json_line_that_reads_back_as_written(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure_lambda("INFO", service=service, secrets=[SECRET])
    block = PADDING + f'{FORGED}\n"quoted" \\ \x1b[2K\r{SECRET}\u2028end'
    logging.getLogger(logs.SCRIPT_LOGGER).info("%s", block)

    (line,) = capsys.readouterr().out.strip("\n").split("\n")  # not at U+2028
    record = json.loads(line)
    assert record["message"] == block.replace(SECRET, "***")
    assert record["name"] == logs.SCRIPT_LOGGER
    assert list(record)[:4] == ["level", "location", "message", "timestamp"]
