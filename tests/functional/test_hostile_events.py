"""Events shaped to break the supervisor, sent as an attacker would: through the Lambda
handler, ``python -m supervisor run --event`` and a Batch job.  Each is refused as a bad
event (400, the exit code of a bad event) with a message that says what is wrong, never an
internal error, a 500 or a traceback; the script never runs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from handlers import lambda_handler
from tests.functional.lambda_support import LambdaFunction, install_function
from tests.functional.test_handler import MARKING_SCRIPT, body_of, marked, one_line

ROOT = Path(__file__).resolve().parents[2]
Install = Callable[..., LambdaFunction]
DEPTH = 1000


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: dict[str, str]) -> Install:
    def make(script: str, definition: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return install_function(monkeypatch, tmp_path, script, definition, **kwargs)

    return make


def nested(depth: int) -> Any:
    """``{"a": [{"a": [...]}]}``, ``depth`` levels of objects and lists, built without recursion."""
    value: Any = "bottom"
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def nested_json(depth: int) -> str:
    """``depth`` levels of JSON lists, as text."""
    return "[" * depth + '"bottom"' + "]" * depth


def api_event(body: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /",
        "rawPath": "/",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/"}, "requestId": "r"},
        "body": body,
        "isBase64Encoded": False,
        **extra,
    }


# --- the handler ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param({"deep": nested(DEPTH)}, "nested too deeply", id="direct-deep"),
        pytest.param(
            {"Records": [{"eventSource": "aws:s3", "s3": nested(DEPTH)}]},
            "nested too deeply",
            id="record-deep",
        ),
        pytest.param(
            api_event("{}", headers={"x": nested(DEPTH)}), "nested too deeply", id="api-deep"
        ),
        pytest.param(
            {"Records": [{"eventSource": "aws:sqs", "body": nested_json(DEPTH - 10)}]},
            "nested too deeply",
            id="sqs-body-deep",
        ),
        pytest.param(
            {"Records": [{"eventSource": "aws:sqs", "body": "[" * 30_000}]},
            "nested too deeply",
            id="sqs-body-deeper-than-python",
        ),
        pytest.param(
            {"cmd_args": "[" * 30_000}, "'cmd_args' must be a JSON list", id="cmd-args-deep"
        ),
        pytest.param(api_event("\ud800"), "lone surrogate U+D800", id="api-body-surrogate"),
        pytest.param(
            api_event("ok", queryStringParameters={"name": "x\udfff"}),
            "lone surrogate U+DFFF",
            id="api-query-surrogate",
        ),
        pytest.param(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventTime": "2026-12-03T\udc00",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": "in/x.jpg"}},
                    }
                ]
            },
            "Records[0].eventTime is not valid Unicode text",
            id="s3-event-time-surrogate",
        ),
    ],
)
def test_hostile_events_are_a_400(
    install: Install, mark_dir: Path, event: Any, message: str
) -> None:
    function = install(MARKING_SCRIPT, {"container": marked(mark_dir)})

    response = lambda_handler.handler(event, function.context())

    assert response["statusCode"] == 400, body_of(response)
    text = one_line(response)
    assert text.startswith("Bad event: ")
    assert message in text
    assert not (mark_dir / "ran").exists()


def test_a_deep_json_body_is_only_the_input_file(install: Install, tmp_path: Path) -> None:
    """An API body is the input file as it is: however deep its JSON, nothing walks it."""
    function = install('wc -c < "$INPUT_FILE_PATH"\n')
    body = nested_json(DEPTH * 10)

    response = lambda_handler.handler(api_event(body), function.context())

    assert response["statusCode"] == 200, body_of(response)
    assert body_of(response).strip() == str(len(body.encode())).encode()


def test_an_event_just_within_the_depth_limit_runs(install: Install, mark_dir: Path) -> None:
    from supervisor.events import MAX_DEPTH

    function = install(MARKING_SCRIPT, {"container": marked(mark_dir)})

    response = lambda_handler.handler({"deep": nested(MAX_DEPTH - 1)}, function.context())

    assert response["statusCode"] == 200, body_of(response)
    assert (mark_dir / "ran").exists()


# --- python -m supervisor run --event, and a Batch job ---------------------------------------


def supervisor(
    args: list[str], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


HOSTILE_TEXTS = [
    pytest.param('{"deep": ' + nested_json(DEPTH - 10) + "}", "nested too deeply", id="deep"),
    pytest.param("[" * 30_000 + "]" * 30_000, "nested too deeply", id="deeper-than-python"),
    pytest.param(json.dumps(api_event("\ud800")), "lone surrogate U+D800", id="surrogate-body"),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE_TEXTS)
def test_run_refuses_hostile_events(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "mark.sh").write_text('touch "$MARK"\n')
    (tmp_path / "function.yaml").write_text(
        "name: marks\ninit_script: mark.sh\n"
        f"container: {{environment: {{Variables: {{MARK: {tmp_path / 'ran'}}}}}}}\n"
    )
    (tmp_path / "event.json").write_text(text)

    done = supervisor(["run", "--config", "function.yaml", "--event", "event.json"], tmp_path, {})

    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "ran").exists()


def job_environment(tmp_path: Path) -> dict[str, str]:
    definition = {
        "name": "marks",
        "container": {"environment": {"Variables": {"MARK": str(tmp_path / "ran")}}},
    }
    return {
        "FUNCTION_CONFIG": base64.b64encode(json.dumps(definition).encode()).decode(),
        "SCRIPT": base64.b64encode(b'touch "$MARK"\n').decode(),
        "AWS_BATCH_JOB_ID": "hostile",
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "SUPERVISOR_WORK_DIR": str(tmp_path / "work"),
    }


@pytest.mark.parametrize(("text", "message"), HOSTILE_TEXTS)
def test_batch_job_refuses_hostile_events(tmp_path: Path, text: str, message: str) -> None:
    done = supervisor([], tmp_path, {**job_environment(tmp_path), "EVENT": text})

    assert done.returncode == 1, done.stdout
    assert message in done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "ran").exists()


def test_batch_job_refuses_an_event_uri_that_is_not_utf8(
    tmp_path: Path, aws_env: dict[str, str], s3: Any, make_bucket: Callable[[str], str]
) -> None:
    bucket = make_bucket("events")
    s3.put_object(Bucket=bucket, Key="event.json", Body=b'{"key": "\xff\xfe\x80"}')
    environment = {
        **aws_env,
        **job_environment(tmp_path),
        "EVENT_URI": f"s3://{bucket}/event.json",
    }

    done = supervisor([], tmp_path, environment)

    assert done.returncode == 1, done.stdout
    assert f"the event at EVENT_URI s3://{bucket}/event.json is not UTF-8 text" in done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "ran").exists()
