"""The response shape and how outcomes add up."""

from __future__ import annotations

import base64

import pytest

from supervisor import responses
from supervisor.context import InvocationContext
from supervisor.events import Record
from supervisor.runtime import Outcome, RecordOutcome

CONTEXT = InvocationContext(
    request_id="req-1",
    function_name="f",
    log_group_name="/aws/lambda/f",
    log_stream_name="2026/11/28/[$LATEST]abc",
)


def test_response_shape() -> None:
    response = responses.respond(200, b"done\n", CONTEXT)
    assert response == {
        "statusCode": 200,
        "headers": {
            "amz-lambda-request-id": "req-1",
            "amz-log-group-name": "/aws/lambda/f",
            "amz-log-stream-name": "2026/11/28/[$LATEST]abc",
        },
        "body": base64.b64encode(b"done\n").decode(),
        "isBase64Encoded": True,
    }


def test_error_body_is_one_line() -> None:
    response = responses.error(400, "  Bad event: Records is empty \n", CONTEXT)
    assert base64.b64decode(response["body"]) == b"Bad event: Records is empty\n"


def test_error_body_escapes_a_hostile_name() -> None:
    message = "Bad event: key 'a\nINFO finished: all records done\r\x1b[2K\ud800'"
    body = base64.b64decode(responses.error(400, message, CONTEXT)["body"])
    assert body == b"Bad event: key 'a\\nINFO finished: all records done\\r\\x1b[2K\\ud800'\n"


A = Record("s3", bucket="b", key="a.txt")
B = Record("s3", bucket="b", key="b.txt")


@pytest.mark.parametrize(
    ("records", "status", "exit_code"),
    [
        ((RecordOutcome("succeeded", A, exit_code=0),), "succeeded", 0),
        (
            (RecordOutcome("succeeded", A), RecordOutcome("delegated", B, job_id="j")),
            "delegated",
            0,
        ),
        ((RecordOutcome("failed", A, exit_code=3), RecordOutcome("delegated", B)), "failed", 3),
        ((RecordOutcome("failed", A, exit_code=-9),), "failed", 137),
        ((RecordOutcome("failed", A, exit_code=None),), "failed", 1),
    ],
)
def test_outcome_status_and_exit_code(
    records: tuple[RecordOutcome, ...], status: str, exit_code: int
) -> None:
    outcome = Outcome("req-1", records)
    assert outcome.status == status
    assert outcome.exit_code == exit_code


def test_outcome_collects_output_jobs_and_uploads() -> None:
    outcome = Outcome(
        "req-1",
        (
            RecordOutcome("succeeded", A, output=b"a\n", uploaded=("s3://o/a",)),
            RecordOutcome("delegated", B, job_id="job-1", reason="timeout"),
            RecordOutcome("delegated", B, job_id="job-1", reason="timeout"),
        ),
    )
    assert outcome.output == b"a\n"
    assert outcome.uploaded == ("s3://o/a",)
    assert outcome.job_ids == ("job-1",)
    assert "b.txt: delegated to Batch job job-1 (timeout)" in outcome.summary()
