"""The report of a local run: the response a caller would get, and the lines a person reads."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from supervisor import report
from supervisor.context import InvocationContext
from supervisor.events import Record
from supervisor.runtime import Outcome, RecordOutcome

CONTEXT = InvocationContext(request_id="req-1", function_name="f")
A = Record("s3", bucket="b", key="a.txt", message_id="m1")
B = Record("s3", bucket="b", key="b.txt", message_id="m2")
DONE = RecordOutcome("succeeded", A, output=b"out\n", exit_code=0, uploaded=("/s/r/a.txt",))
FAILED = RecordOutcome("failed", B, exit_code=3, reason="the script exited with 3")
DELEGATED = RecordOutcome("delegated", B, job_id="job-1", reason="batch mode")


def body(response: dict[str, Any]) -> bytes:
    return base64.b64decode(response["body"])


@pytest.mark.parametrize(
    ("records", "synchronous", "status", "text"),
    [
        ((DONE,), False, 200, b"out\n"),
        ((DONE,), True, 200, b"out\n"),
        ((DELEGATED,), False, 202, b"b.txt: delegated to Batch job job-1 (batch mode)\n"),
        ((FAILED,), True, 500, b"b.txt: failed (the script exited with 3)\n"),
    ],
)
def test_the_response_is_the_handlers(
    records: tuple[RecordOutcome, ...], synchronous: bool, status: int, text: bytes
) -> None:
    response = report.response(Outcome("req-1", records), synchronous, CONTEXT)

    assert (response["statusCode"], body(response)) == (status, text)
    assert response["headers"]["amz-lambda-request-id"] == "req-1"


def test_an_asynchronous_failure_is_a_function_error() -> None:
    response = report.response(Outcome("req-1", (FAILED,)), False, CONTEXT)

    assert response == {
        "errorType": "InvocationError",
        "errorMessage": "b.txt: failed (the script exited with 3)",
    }


def test_an_sqs_batch_with_some_failures_names_them() -> None:
    outcome = Outcome("req-1", (DONE, FAILED), message_ids=("m1", "m2"))

    response = report.response(outcome, False, CONTEXT)

    assert response["statusCode"] == 500
    assert response["batchItemFailures"] == [{"itemIdentifier": "m2"}]
    lines = report.Run("f", "lambda", Path("/s"), "req-1", "failed", response, outcome).lines()
    assert "  SQS messages to be delivered again: m2" in lines


def test_the_lines_escape_what_came_from_outside() -> None:
    hostile = Record("s3", bucket="b", key="a\nINFO forged.txt")
    outcome = Outcome(
        "req-1", (RecordOutcome("succeeded", hostile, output=b"x\x1b[2J\n", exit_code=0),)
    )
    response = report.response(outcome, False, CONTEXT)

    lines = report.Run("f", "lambda", Path("/s"), "req-1", "succeeded", response, outcome).lines()

    assert (
        lines[1] == "a\\nINFO forged.txt: ran here (as in Lambda), exit code 0, 0 file(s) uploaded"
    )
    assert "  | x\\x1b[2J" in lines


def test_a_long_body_and_many_uploads_are_cut_short() -> None:
    uploads = tuple(f"/s/r/{index}.txt" for index in range(25))
    output = "".join(f"line {index}\n" for index in range(8)).encode()
    outcome = Outcome(
        "req-1", (RecordOutcome("succeeded", A, output=output, exit_code=0, uploaded=uploads),)
    )
    response = report.response(outcome, False, CONTEXT)

    lines = report.Run("f", "lambda", Path("/s"), "req-1", "succeeded", response, outcome).lines()

    assert "  uploaded r/19.txt" in lines
    assert "  uploaded r/20.txt" not in lines
    assert "  ... and 5 more" in lines
    assert "  | line 4" in lines
    assert "  | line 5" not in lines
    assert "  | ... (3 more line(s))" in lines


def test_the_tail_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("".join(f"{index}\n" for index in range(100)))

    assert report.read_tail(log, lines=3) == "97\n98\n99\n"
    assert report.read_tail(tmp_path / "missing.log") == ""
