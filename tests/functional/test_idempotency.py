"""Idempotency records when the DynamoDB table fails, against a real moto server behind a
``FaultProxy`` that fails one DynamoDB action (``X-Amz-Target``) as a test tells it.

What a user checks: a job that was submitted is answered with its id even when the table
cannot record it; a table that cannot be written stops the submission; a failed submission
whose record cannot be removed says both what Batch and what the table said.
"""

# The fixtures proxy, dynamodb and idempotency_table come from test_batch_faults.
# ruff: noqa: F811

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor.deadline import Deadline
from supervisor.errors import DelegationError
from supervisor.idempotency import DynamoDBIdempotency
from tests.faults import Fault, FaultProxy
from tests.functional.test_batch_faults import (  # noqa: F401 (fixtures)
    dynamodb,
    idempotency_table,
    proxy,
)


def table_fault(action: str) -> Fault:
    """Every call of DynamoDB's ``action`` answered with a server error."""
    return Fault(
        "POST",
        "^/",
        status=500,
        code="InternalServerError",
        message="table unavailable",
        body_format="json",
        times=None,
        target=rf"\.{action}$",
    )


class Submissions:
    """The ``submit`` of one delivery: counts its calls, answers a job id or fails."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return "job-1"


@pytest.fixture
def records(proxy: FaultProxy, idempotency_table: str) -> DynamoDBIdempotency:
    """Records in the table, through the proxy (its endpoint is ``AWS_ENDPOINT_URL``)."""
    idempotency = DynamoDBIdempotency(idempotency_table, key_prefix="fn")
    idempotency.prepare()
    return idempotency


@pytest.fixture
def warnings() -> Iterator[list[logging.LogRecord]]:
    """What ``supervisor.idempotency`` logged, whatever handlers the logging setup left."""
    caught: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = caught.append  # type: ignore[method-assign]
    logger = logging.getLogger("supervisor.idempotency")
    logger.addHandler(handler)
    try:
        yield caught
    finally:
        logger.removeHandler(handler)


def test_a_job_the_table_cannot_record_is_answered_with_its_id(
    records: DynamoDBIdempotency,
    proxy: FaultProxy,
    dynamodb: Any,
    idempotency_table: str,
    warnings: list[logging.LogRecord],
) -> None:
    proxy.add(table_fault("UpdateItem"))
    submit = Submissions()
    request_id = str(uuid.uuid4())

    job_id = records.once(request_id, 0, submit, deadline=Deadline.none())

    assert (job_id, submit.calls) == ("job-1", 1)
    (warning,) = warnings
    message = warning.getMessage()
    assert "Submitted Batch job job-1" in message
    assert f"record 0 of invocation {request_id}" in message
    assert idempotency_table in message
    assert "table unavailable" in message
    (item,) = dynamodb.scan(TableName=idempotency_table)["Items"]
    assert item["status"]["S"] == "INPROGRESS"


def test_a_table_that_cannot_be_written_stops_the_submission(
    records: DynamoDBIdempotency, proxy: FaultProxy, dynamodb: Any, idempotency_table: str
) -> None:
    proxy.add(table_fault("PutItem"))
    submit = Submissions()
    request_id = str(uuid.uuid4())

    with pytest.raises(DelegationError) as raised:
        records.once(request_id, None, submit, deadline=Deadline.none())

    assert submit.calls == 0
    assert str(raised.value).startswith(
        f"idempotency table {idempotency_table} failed, so the job for invocation "
        f"{request_id} was not submitted: "
    )
    assert "table unavailable" in str(raised.value)
    assert dynamodb.scan(TableName=idempotency_table)["Items"] == []


def test_a_failed_submission_whose_record_stays_says_both(
    records: DynamoDBIdempotency, proxy: FaultProxy, idempotency_table: str
) -> None:
    proxy.add(table_fault("DeleteItem"))
    refused = DelegationError("SubmitJob: ClientException: no such job queue")
    submit = Submissions(refused)

    with pytest.raises(DelegationError) as raised:
        records.once(str(uuid.uuid4()), 2, submit, deadline=Deadline.none())

    assert submit.calls == 1
    assert raised.value.__cause__ is refused
    text = str(raised.value)
    assert text.startswith("SubmitJob: ClientException: no such job queue (and the idempotency")
    assert f"idempotency table {idempotency_table} failed: " in text
    assert "table unavailable" in text
