"""Property test: whatever event arrives, the handler answers or raises a typed, short error.

The same event shapes as ``tests/unit/test_properties.py`` (arbitrary JSON; S3, SQS, SNS,
EventBridge and API events with every field optional, garbled or nested) go to the Lambda
handler in-process, in ``lambda`` mode, warm, against the moto server, where the bucket
``bucket`` holds objects under the short keys the strategies draw.  Each outcome is a
response with status 200, 202, 400 or 500, or a ``SupervisorError`` with a short message
without a traceback; never another exception, and never the handler's "internal error",
which stands for an exception it did not expect.
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as label

from handlers import lambda_handler
from supervisor.errors import SupervisorError
from tests.functional.lambda_support import LambdaFunction, install_function
from tests.unit.test_properties import DEEP, any_event

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))
INTERNAL = "internal error"
STATUSES = {200, 202, 400, 500}
# Fails for an input that holds a "b", so that failures (500s, raises) are drawn too.
SCRIPT = """\
if grep -q b "$INPUT_FILE_PATH"; then echo "no b please" >&2; exit 3; fi
echo "ran for $STORAGE_OBJECT_KEY"
"""
KEYS = ("a", "b", "ab", "a/b", "a b", "a+b", "é", "%", "a/a")


@pytest.fixture
def function(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: dict[str, str], s3: Any
) -> LambdaFunction:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket="bucket")
    for key in KEYS:
        s3.put_object(Bucket="bucket", Key=key, Body=key.encode())
    return install_function(monkeypatch, tmp_path, SCRIPT)


def check_outcome(function: LambdaFunction, event: Any) -> str:
    try:
        response = lambda_handler.handler(event, function.context())
    except SupervisorError as exc:
        message = str(exc)
        assert message.strip()
        assert INTERNAL not in message, "an exception the handler did not expect"
        assert "Traceback" not in message
        assert len(message) < 2000
        return type(exc).__name__
    assert isinstance(response, dict)
    assert response["statusCode"] in STATUSES
    body = base64.b64decode(response["body"], validate=True)
    assert INTERNAL.encode() not in body
    return str(response["statusCode"])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(event=any_event)
@example(event=DEEP)
@example(event={"Records": [{"eventSource": "aws:sqs", "body": DEEP}]})
@example(
    event={
        "Records": [
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": "bucket"}, "object": {"key": "a"}}}
        ]
    }
)
@example(event={"script": "\x80"})
@example(event={"requestContext": {"http": {}}, "body": "é", "isBase64Encoded": True})
def test_any_event_gets_a_response_or_a_short_typed_error(
    function: LambdaFunction, event: Any
) -> None:
    label(check_outcome(function, event))
    assert list(function.work_dir.iterdir()) == []
