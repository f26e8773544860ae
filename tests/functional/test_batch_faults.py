"""Delegation under faults, delivered twice, and a thousand times, against a real moto server.

The handler reaches AWS through a ``FaultProxy`` in front of the moto server (its
``AWS_ENDPOINT_URL``), which answers ``POST /v1/submitjob`` (Batch's SubmitJob) with
throttling or 5xx errors as a test tells it; the test itself looks at the queue through
the moto server directly.  What a user checks: the job is there once, with the event; an
invocation that could not hand its event to Batch ends in an error before the deadline,
never in a 2xx.
"""

# The fixtures make_function and invoke come from test_delegation, as parameters shadow them.
# ruff: noqa: F811

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

import handlers.lambda_handler
from supervisor.delegation import BatchBackend
from supervisor.errors import DelegationError, InvocationError
from tests.conftest import REGION
from tests.faults import Fault, FaultProxy
from tests.functional.lambda_support import FakeLambdaContext
from tests.functional.test_delegation import (  # noqa: F401 (fixtures)
    JOB_STATUSES,
    MakeFunction,
    body,
    invoke,
    job_environment,
    jobs_in,
    make_function,
    s3_event,
    the_job,
)

SUBMIT_JOB = r"^/v1/submitjob"
Invoke = Callable[..., dict[str, Any]]


def throttling(times: int | None) -> Fault:
    return Fault(
        "POST",
        SUBMIT_JOB,
        status=429,
        code="TooManyRequestsException",
        message="Too Many Requests",
        body_format="json",
        times=times,
    )


@pytest.fixture
def proxy(
    moto_server: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the moto server, as the handler's endpoint."""
    with FaultProxy(moto_server) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy


@pytest.fixture
def dynamodb(aws_env: dict[str, str]) -> Any:
    return boto3.client("dynamodb", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)


@pytest.fixture
def idempotency_table(dynamodb: Any) -> str:
    """A table as the README tells users to create it: partition key ``id``, TTL ``expiration``."""
    name = f"supervisor-idempotency-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )
    return name


def log_lines(captured: str) -> list[dict[str, Any]]:
    """The JSON lines the powertools logger printed."""
    lines = []
    for line in captured.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def submit_requests(proxy: FaultProxy) -> int:
    return sum(1 for method, path in proxy.requests if method == "POST" and "/v1/submitjob" in path)


@pytest.mark.parametrize(
    "fault",
    [
        throttling(2),
        Fault(
            "POST", SUBMIT_JOB, status=503, code="ServiceUnavailable", body_format="json", times=2
        ),
        Fault("POST", SUBMIT_JOB, status=500, code="ServerException", body_format="json", times=2),
    ],
    ids=["429-TooManyRequestsException", "503-ServiceUnavailable", "500-ServerException"],
)
def test_submit_job_survives_throttling_and_5xx(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    proxy: FaultProxy,
    capsys: pytest.CaptureFixture[str],
    fault: Fault,
) -> None:
    function = make_function("batch")
    queue = batch_queue(function.name)
    injected = proxy.add(fault)
    context = FakeLambdaContext(function.name)

    response = invoke(function, function.event, context)

    assert response["statusCode"] == 202
    assert injected.fired == 2
    assert submit_requests(proxy) == 3
    job = the_job(batch, queue)
    assert job["jobId"] in body(response)
    assert json.loads(job_environment(job)["EVENT"]) == function.event
    retries = [
        line
        for line in log_lines(capsys.readouterr().out)
        if line["level"] == "WARNING" and "retrying" in line["message"]
    ]
    assert len(retries) == 2
    assert all(fault.code in line["message"] for line in retries)


def test_persistent_throttling_in_batch_mode_fails_before_the_deadline(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    proxy: FaultProxy,
) -> None:
    function = make_function("batch", threshold=1)
    queue = batch_queue(function.name)
    injected = proxy.add(throttling(None))
    context = FakeLambdaContext(function.name, timeout_s=3.0)

    with pytest.raises((InvocationError, DelegationError)) as raised:
        invoke(function, function.event, context)
    returned_at = time.monotonic()

    assert returned_at < context.deadline + 0.5, "the handler outlived the Lambda deadline"
    assert "TooManyRequestsException" in str(raised.value)
    assert injected.fired >= 2, "SubmitJob was not retried"
    assert jobs_in(batch, queue) == []


def test_throttling_after_a_timeout_is_retried_inside_the_default_reserve(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    proxy: FaultProxy,
) -> None:
    function = make_function("lambda-batch", ': > "$ATTEMPTS_DIR/ran"\nsleep 30\n', threshold=2)
    queue = batch_queue(function.name)
    injected = proxy.add(throttling(1))
    context = FakeLambdaContext(function.name, timeout_s=4.0)

    response = invoke(function, function.event, context)
    returned_at = time.monotonic()

    assert returned_at < context.deadline, "the handler answered after the Lambda deadline"
    assert response["statusCode"] == 202
    assert injected.fired == 1
    assert the_job(batch, queue)["jobId"] in body(response)


def test_persistent_throttling_after_a_timeout_fails_inside_the_reserve(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
    proxy: FaultProxy,
) -> None:
    """lambda-batch: the script is killed at the deadline less the reserve; the retries of
    the submission must fit in what is left."""
    function = make_function("lambda-batch", ': > "$ATTEMPTS_DIR/ran"\nsleep 30\n', threshold=1.5)
    queue = batch_queue(function.name)
    injected = proxy.add(throttling(None))
    context = FakeLambdaContext(function.name, timeout_s=4.0)

    with pytest.raises((InvocationError, DelegationError)) as raised:
        invoke(function, function.event, context)
    returned_at = time.monotonic()

    assert (function.attempts / "ran").exists(), "the script did not run in Lambda"
    assert returned_at < context.deadline + 0.5, "the handler outlived the Lambda deadline"
    assert "TooManyRequestsException" in str(raised.value)
    assert injected.fired >= 2, "SubmitJob was not retried"
    assert jobs_in(batch, queue) == []
    assert s3.list_objects_v2(Bucket=function.output_bucket).get("KeyCount", 0) == 0


def test_persistent_throttling_answers_an_api_caller_with_a_500(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    proxy: FaultProxy,
    load_event: Callable[[str], Any],
) -> None:
    function = make_function("batch", threshold=1)
    queue = batch_queue(function.name)
    proxy.add(throttling(None))

    response = invoke(
        function, load_event("apigw_v2.json"), FakeLambdaContext(function.name, timeout_s=3.0)
    )

    assert response["statusCode"] == 500
    assert "TooManyRequestsException" in body(response)
    assert jobs_in(batch, queue) == []


def deliver_twice(
    invoke: Invoke, function: Any, event: Any, request_id: str, timeout_s: float = 30.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same invocation, as Lambda retries it: same event, same request id, a cold start."""
    first = invoke(
        function, event, FakeLambdaContext(function.name, timeout_s, aws_request_id=request_id)
    )
    again = invoke(
        function, event, FakeLambdaContext(function.name, timeout_s, aws_request_id=request_id)
    )
    return first, again


def test_a_delivery_repeated_with_the_same_request_id_makes_one_job(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    dynamodb: Any,
    idempotency_table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    function = make_function("batch")
    function.definition["idempotency"] = {"table": idempotency_table}
    queue = batch_queue(function.name)
    request_id = str(uuid.uuid4())

    first, again = deliver_twice(invoke, function, function.event, request_id)

    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    job = the_job(batch, queue)
    assert job["jobId"] in body(first)
    assert job["jobId"] in body(again)
    assert job_environment(job)["AWS_LAMBDA_REQUEST_ID"] == request_id
    (item,) = dynamodb.scan(TableName=idempotency_table)["Items"]
    assert item["status"]["S"] == "COMPLETED"
    assert json.loads(item["data"]["S"]) == {"job_id": job["jobId"]}
    assert item["id"]["S"].startswith(f"{function.name}#")
    assert any(
        "not submitting again" in line["message"] for line in log_lines(capsys.readouterr().out)
    )

    other = invoke(function, function.event, FakeLambdaContext(function.name))

    assert other["statusCode"] == 202
    jobs = jobs_in(batch, queue)
    assert len(jobs) == 2
    (second,) = [summary for summary in jobs if summary["jobId"] != job["jobId"]]
    assert second["jobId"] in body(other)


def test_without_an_idempotency_table_a_repeated_delivery_makes_two_jobs(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
) -> None:
    """What the table is for (and proof that the test above can fail)."""
    function = make_function("batch")
    queue = batch_queue(function.name)

    first, again = deliver_twice(invoke, function, function.event, str(uuid.uuid4()))

    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    assert len(jobs_in(batch, queue)) == 2


class Crash(BaseException):
    """The execution environment dying (killed at the deadline, out of memory)."""


def test_an_attempt_that_died_after_marking_in_progress_blocks_only_until_its_deadline(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    dynamodb: Any,
    idempotency_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    function = make_function("batch")
    function.definition["idempotency"] = {"table": idempotency_table}
    queue = batch_queue(function.name)
    request_id = str(uuid.uuid4())
    submit = BatchBackend.submit

    def die(self: BatchBackend, job: Any, deadline: Any = None) -> str:
        raise Crash

    monkeypatch.setattr(BatchBackend, "submit", die)
    crashed = FakeLambdaContext(function.name, timeout_s=2.5, aws_request_id=request_id)
    with pytest.raises(Crash):
        invoke(function, function.event, crashed)
    monkeypatch.setattr(BatchBackend, "submit", submit)
    (item,) = dynamodb.scan(TableName=idempotency_table)["Items"]
    assert item["status"]["S"] == "INPROGRESS"

    with pytest.raises(InvocationError, match="another delivery"):
        invoke(
            function, function.event, FakeLambdaContext(function.name, aws_request_id=request_id)
        )
    assert jobs_in(batch, queue) == []

    time.sleep(max(0.0, crashed.deadline - time.monotonic()) + 0.1)
    retried = invoke(
        function, function.event, FakeLambdaContext(function.name, aws_request_id=request_id)
    )

    assert retried["statusCode"] == 202
    assert the_job(batch, queue)["jobId"] in body(retried)


def test_a_failed_submission_leaves_no_record_so_the_retry_submits(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    dynamodb: Any,
    idempotency_table: str,
    proxy: FaultProxy,
) -> None:
    function = make_function("batch")
    function.definition["idempotency"] = {"table": idempotency_table}
    queue = batch_queue(function.name)
    request_id = str(uuid.uuid4())
    proxy.add(Fault("POST", SUBMIT_JOB, status=400, code="ClientException", body_format="json"))

    with pytest.raises(InvocationError, match="ClientException"):
        invoke(
            function, function.event, FakeLambdaContext(function.name, aws_request_id=request_id)
        )
    assert dynamodb.scan(TableName=idempotency_table)["Items"] == []

    retried = invoke(
        function, function.event, FakeLambdaContext(function.name, aws_request_id=request_id)
    )

    assert retried["statusCode"] == 202
    assert the_job(batch, queue)["jobId"] in body(retried)


def test_lambda_batch_timeouts_delivered_twice_make_one_job_per_record(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
    idempotency_table: str,
) -> None:
    function = make_function("lambda-batch", ': > "$ATTEMPTS_DIR/run-$$"\nsleep 30\n', threshold=1)
    function.definition["idempotency"] = {"table": idempotency_table}
    queue = batch_queue(function.name)
    s3.put_object(Bucket=function.input_bucket, Key="incoming/second.jpg", Body=b"second")
    event = function.event
    (record,) = event["Records"]
    other = json.loads(json.dumps(record))
    other["s3"]["object"]["key"] = "incoming/second.jpg"
    event["Records"].append(other)
    request_id = str(uuid.uuid4())

    first, again = deliver_twice(invoke, function, event, request_id, timeout_s=3.0)

    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    assert len(list(function.attempts.iterdir())) >= 2, "the script did not run in Lambda twice"
    jobs = jobs_in(batch, queue)
    assert len(jobs) == 2
    described = batch.describe_jobs(jobs=[job["jobId"] for job in jobs])["jobs"]
    keys = {
        json.loads(job_environment(job)["EVENT"])["Records"][0]["s3"]["object"]["key"]: job["jobId"]
        for job in described
    }
    assert set(keys) == {record["s3"]["object"]["key"], "incoming/second.jpg"}
    for response in (first, again):
        assert all(job_id in body(response) for job_id in keys.values())


@pytest.mark.slow
def test_a_thousand_delegations_leave_a_thousand_jobs_with_their_events(
    make_function: MakeFunction,
    invoke: Invoke,
    batch_queue: Callable[[str], str],
    batch: Any,
) -> None:
    count = 1000
    function = make_function("batch")
    queue = batch_queue(function.name)
    sent: dict[str, str] = {}  # request id -> key
    answered: dict[str, str] = {}  # request id -> response body
    started = time.monotonic()

    for number in range(count):
        key = f"incoming/load/item-{number:04d}.dat"
        context = FakeLambdaContext(function.name)
        event = s3_event(function.input_bucket, key)
        if number == 0:
            response = invoke(function, event, context)  # the cold start
        else:
            response = handlers.lambda_handler.handler(event, context)
        assert response["statusCode"] == 202, body(response)
        sent[context.aws_request_id] = key
        answered[context.aws_request_id] = body(response)
    elapsed = time.monotonic() - started

    job_ids: set[str] = set()
    pages = batch.get_paginator("list_jobs")
    for status in JOB_STATUSES:
        for page in pages.paginate(jobQueue=queue, jobStatus=status):
            job_ids.update(summary["jobId"] for summary in page["jobSummaryList"])
    assert len(job_ids) == count
    received: dict[str, str] = {}
    ordered = sorted(job_ids)
    for start in range(0, count, 100):
        for job in batch.describe_jobs(jobs=ordered[start : start + 100])["jobs"]:
            environment = job_environment(job)
            request_id = environment["AWS_LAMBDA_REQUEST_ID"]
            assert request_id not in received, f"two jobs for request {request_id}"
            received[request_id] = json.loads(environment["EVENT"])["Records"][0]["s3"]["object"][
                "key"
            ]
            assert job["jobId"] in answered[request_id]
    assert received == sent
    print(f"{count} delegations in {elapsed:.1f} s ({1000 * elapsed / count:.1f} ms each)")
