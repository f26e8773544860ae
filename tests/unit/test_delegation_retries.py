"""BatchBackend.submit's retries: what is retried, how long it waits, when it gives up.

A fake Batch client answers from a script of outcomes and a fake clock advances only when
the backend sleeps or a call takes time, so that every wait and every deadline is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from supervisor.deadline import Deadline
from supervisor.delegation import BatchBackend, JobRequest, RetryPolicy
from supervisor.errors import DelegationError

JOB = JobRequest(
    job_name="word-stats-8f1c2d3e",
    job_queue="word-stats-queue",
    job_definition="word-stats",
    environment=(("EVENT", "{}"),),
)
POLICY = RetryPolicy(
    max_attempts=8, base_delay=0.1, max_delay=2.0, connect_timeout=0.25, read_timeout=0.5
)


def client_error(code: str, status: int, message: str = "slow down") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SubmitJob",
    )


THROTTLED = client_error("TooManyRequestsException", 429, "Too Many Requests")


class Clock:
    """Monotonic time that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeBatch:
    """``submit_job`` raises or answers as ``outcomes`` say (the last one repeats), taking
    ``latency`` seconds of the clock each time."""

    def __init__(self, clock: Clock, outcomes: Iterable[Exception | str], latency: float = 0.05):
        self.clock = clock
        self.outcomes = list(outcomes)
        self.latency = latency
        self.calls: list[tuple[float, dict[str, Any]]] = []

    def submit_job(self, **request: Any) -> dict[str, Any]:
        self.calls.append((self.clock.now, request))
        self.clock.now += self.latency
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return {"jobId": outcome, "jobName": request["jobName"]}


def backend(
    clock: Clock, client: FakeBatch, *, policy: RetryPolicy = POLICY, jitter: float = 1.0
) -> BatchBackend:
    return BatchBackend(
        client,  # type: ignore[arg-type]
        policy=policy,
        sleep=clock.sleep,
        jitter=lambda: jitter,
    )


@pytest.mark.parametrize("throttled", [1, 2, 5])
def test_throttling_is_retried_until_batch_takes_the_job(
    throttled: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    client = FakeBatch(clock, [THROTTLED] * throttled + ["job-1"])

    with caplog.at_level(logging.WARNING, logger="supervisor.delegation"):
        job_id = backend(clock, client).submit(JOB, deadline=Deadline(clock.now + 30, clock))

    assert job_id == "job-1"
    assert len(client.calls) == throttled + 1
    assert all(request == JOB.submit_kwargs() for _, request in client.calls)
    assert clock.sleeps == [min(2.0, 0.1 * 2**n) for n in range(throttled)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == throttled
    assert all("TooManyRequestsException" in line and JOB.job_name in line for line in warnings)


@pytest.mark.parametrize(
    "error",
    [
        client_error("TooManyRequestsException", 429),
        client_error("ThrottlingException", 400),
        client_error("ServerException", 500, "internal error"),
        client_error("ServiceUnavailable", 503, "try again"),
        client_error("BadGateway", 502, ""),
        client_error("504", 504, ""),
        EndpointConnectionError(endpoint_url="https://batch.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://batch.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://batch.us-east-1.amazonaws.com"),
    ],
    ids=lambda error: type(error).__name__ + str(getattr(error, "response", ""))[:40],
)
def test_throttling_5xx_and_lost_connections_are_retried(error: Exception) -> None:
    clock = Clock()
    client = FakeBatch(clock, [error, "job-2"])

    assert backend(clock, client).submit(JOB, deadline=Deadline(clock.now + 30, clock)) == "job-2"
    assert len(client.calls) == 2


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (
            client_error("ClientException", 400, "Job queue word-stats-queue does not exist"),
            "does not exist",
        ),
        (client_error("AccessDeniedException", 403, "not authorized"), "AccessDeniedException"),
        (NoCredentialsError(), "NoCredentialsError"),
        (ParamValidationError(report="jobName is too long"), "jobName is too long"),
    ],
)
def test_a_refusal_fails_at_once_naming_the_queue_and_the_error(
    error: Exception, named: str
) -> None:
    clock = Clock()
    client = FakeBatch(clock, [error, "never"])

    with pytest.raises(DelegationError) as raised:
        backend(clock, client).submit(JOB, deadline=Deadline(clock.now + 30, clock))

    assert len(client.calls) == 1
    assert clock.sleeps == []
    assert JOB.job_queue in str(raised.value)
    assert named in str(raised.value)
    assert isinstance(raised.value.__cause__, type(error))


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("reserve", [0.8, 1.0, 3.0, 10.0])
def test_when_the_reserve_runs_out_the_last_error_is_named_before_the_deadline(
    reserve: float, jitter: float
) -> None:
    clock = Clock()
    deadline = clock.now + reserve
    client = FakeBatch(clock, [client_error("ServerException", 500, "internal"), THROTTLED])
    policy = RetryPolicy(max_attempts=1000, connect_timeout=0.25, read_timeout=0.5)

    with pytest.raises(DelegationError) as raised:
        backend(clock, client, policy=policy, jitter=jitter).submit(
            JOB, deadline=Deadline(deadline, clock)
        )

    message = str(raised.value)
    assert "TooManyRequestsException: Too Many Requests" in message
    assert "deadline" in message
    assert f"{len(client.calls)} attempt(s)" in message
    assert JOB.job_name in message
    assert clock.now <= deadline
    starts = [start for start, _ in client.calls]
    # Every retry started with a whole attempt's time (connect + read timeouts) still left.
    assert all(start + policy.attempt_time <= deadline for start in starts[1:])
    # ... and the loop did not give up while another attempt still fitted.
    assert clock.now + policy.attempt_time > deadline
    assert len(client.calls) >= 2


def test_the_first_attempt_is_made_even_with_little_time_left() -> None:
    clock = Clock()
    client = FakeBatch(clock, ["job-3"])

    assert backend(clock, client).submit(JOB, deadline=Deadline(clock.now + 0.1, clock)) == "job-3"

    failing = FakeBatch(clock, [THROTTLED])
    with pytest.raises(DelegationError, match="TooManyRequestsException"):
        backend(clock, failing).submit(JOB, deadline=Deadline(clock.now + 0.1, clock))
    assert len(failing.calls) == 1


def test_without_a_deadline_the_attempts_are_bounded() -> None:
    clock = Clock()
    client = FakeBatch(clock, [THROTTLED])

    with pytest.raises(DelegationError) as raised:
        backend(clock, client).submit(JOB)

    assert len(client.calls) == POLICY.max_attempts
    assert "attempts ran out" in str(raised.value)
    assert "TooManyRequestsException" in str(raised.value)
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_waits_are_jittered_below_the_exponential_ceiling() -> None:
    clock = Clock()
    client = FakeBatch(clock, [THROTTLED] * 4 + ["job-4"])

    backend(clock, client, jitter=0.25).submit(JOB, deadline=Deadline(clock.now + 60, clock))

    assert clock.sleeps == pytest.approx([0.025, 0.05, 0.1, 0.2])


@pytest.mark.parametrize(
    ("reserve", "connect", "read"),
    [(0.0, 0.2, 0.5), (1.0, 0.2, 0.5), (2.0, 0.25, 1.0), (10.0, 1.0, 5.0), (60.0, 1.0, 5.0)],
)
def test_client_timeouts_fit_the_reserve(reserve: float, connect: float, read: float) -> None:
    """What is left of the reserve after the watchdog's grace (0.5 s) and the margin (0.2 s)
    holds a first attempt that fails fast and a whole retry."""
    policy = RetryPolicy.for_reserve(reserve)

    assert (policy.connect_timeout, policy.read_timeout) == (connect, read)
    if reserve >= 2.0:
        assert policy.attempt_time + 0.05 <= reserve - 0.5 - 0.2


def test_the_default_client_has_short_timeouts_and_no_retries_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = BatchBackend(policy=RetryPolicy.for_reserve(2.0)).client()

    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.25, 1.0)
    assert config.retries["total_max_attempts"] == 1
