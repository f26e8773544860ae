"""Handing an invocation to AWS Batch: the job request, and the backends that take it.

``build_job`` is pure: it turns the function definition, the invocation context and the
raw event into the SubmitJob request that deployment tools and the Batch side agree on
(``EVENT``, ``CONTEXT``, ``AWS_LAMBDA_REQUEST_ID`` and ``SCRIPT`` in the container's
environment; queue and definition named after the function unless configured).  An event
too large for the 30 KiB request limit is stored first and passed as ``EVENT_URI``.

``BatchBackend`` submits to AWS Batch with a client created before it is needed, so that
a submission at the deadline costs one API call when Batch answers at once.  Throttling
(``TooManyRequestsException`` and the other codes botocore's standard mode treats as
throttling), 5xx answers and lost connections are retried with full-jitter exponential
backoff (``RetryPolicy``) until the deadline it is given: a retry starts only when a whole
attempt (connect and read timeouts) still fits before it, so that the submission ends
before the Lambda deadline, in a job id or in a ``DelegationError`` that names the last
error.  botocore's own retries are off for this client: they do not know the deadline.
Any other refusal (``ClientException``: no such queue, a bad request) fails at once.

A local run submits to ``supervisor.local.batch.LocalBatchBackend`` instead.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from supervisor.deadline import Deadline, attempt_timeouts
from supervisor.errors import DelegationError
from supervisor.sessions import create_client

if TYPE_CHECKING:
    from botocore.session import Session as BotocoreSession
    from mypy_boto3_batch import BatchClient

    from supervisor.config import FunctionConfig
    from supervisor.context import InvocationContext

__all__ = [
    "MAX_REQUEST_BYTES",
    "Backend",
    "BatchBackend",
    "JobRequest",
    "RetryPolicy",
    "build_job",
]

MAX_REQUEST_BYTES = 30 * 1024
_NO_DEADLINE = Deadline.none()
logger = logging.getLogger(__name__)
_JOB_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class JobRequest:
    """A SubmitJob request, kept as plain data so it can be inspected, sized and replayed."""

    job_name: str
    job_queue: str
    job_definition: str
    environment: tuple[tuple[str, str], ...]
    multi_node: bool = False
    # The job's retry strategy (``batch.attempts``), else the job definition's.
    attempts: int | None = None

    def submit_kwargs(self) -> dict[str, Any]:
        overrides = [{"name": name, "value": value} for name, value in self.environment]
        request: dict[str, Any] = {
            "jobName": self.job_name,
            "jobQueue": self.job_queue,
            "jobDefinition": self.job_definition,
        }
        if self.multi_node:
            request["nodeOverrides"] = {
                "nodePropertyOverrides": [
                    {"targetNodes": "0:", "containerOverrides": {"environment": overrides}}
                ]
            }
        else:
            request["containerOverrides"] = {"environment": overrides}
        if self.attempts is not None:
            request["retryStrategy"] = {"attempts": self.attempts}
        return request

    def size(self) -> int:
        return len(json.dumps(self.submit_kwargs(), separators=(",", ":")).encode())

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)


def build_job(
    config: FunctionConfig,
    context: InvocationContext,
    event_json: str,
    *,
    script: str | None = None,
    store_event: Callable[[str], str] | None = None,
) -> JobRequest:
    """The job that finishes this invocation on Batch; ``store_event`` keeps an oversized event."""
    environment = [("EVENT", event_json)]
    environment += [
        ("CONTEXT", context.to_json()),
        ("AWS_LAMBDA_REQUEST_ID", context.request_id),
    ]
    if script:
        environment.append(("SCRIPT", script))
    job = JobRequest(
        job_name=_job_name(config.name, context.request_id),
        job_queue=config.job_queue,
        job_definition=config.job_definition,
        environment=tuple(environment),
        multi_node=config.batch.multi_node_parallel.enabled,
        attempts=config.batch.attempts,
    )
    if job.size() <= MAX_REQUEST_BYTES:
        return job
    if store_event is None:
        raise DelegationError(
            f"the job request is {job.size()} bytes, over the {MAX_REQUEST_BYTES} byte limit of "
            "SubmitJob, and there is nowhere to store the event (set batch.event_store)"
        )
    uri = store_event(event_json)
    logger.info("The event is too large for the job request; stored it as %s", uri)
    smaller = JobRequest(
        job_name=job.job_name,
        job_queue=job.job_queue,
        job_definition=job.job_definition,
        environment=(("EVENT_URI", uri), *environment[1:]),
        multi_node=job.multi_node,
        attempts=job.attempts,
    )
    if smaller.size() > MAX_REQUEST_BYTES:
        raise DelegationError(
            f"the job request is {smaller.size()} bytes even without the event "
            f"(limit {MAX_REQUEST_BYTES}): the script passed in the event is too large"
        )
    return smaller


def _job_name(function_name: str, request_id: str) -> str:
    """Batch wants `[A-Za-z0-9][A-Za-z0-9_-]{0,127}`; a Lambda name may start with - or _."""
    name = _JOB_NAME.sub("-", f"{function_name}-{request_id}").lstrip("-_") or "job"
    return name[:128]


class Backend(Protocol):
    def prepare(self) -> None:
        """Get ready to submit in one call (create clients, connections)."""

    def submit(self, job: JobRequest, deadline: Deadline = _NO_DEADLINE) -> str:
        """Submit the job and return its id, finishing before ``deadline``; raise
        ``DelegationError`` when it cannot."""


# What botocore's standard retry mode treats as throttling or as a transient fault.
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
_TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "ServerException"})


@dataclass(frozen=True)
class RetryPolicy:
    """How a submission is retried: full-jitter exponential backoff within a deadline.

    The n-th retry waits a random time up to ``min(max_delay, base_delay * 2**(n-1))``,
    shortened so that a whole attempt (``attempt_time``: the client's connect and read
    timeouts) still fits before the deadline; when it does not fit, or after
    ``max_attempts`` attempts, the submission fails.  The first attempt is always made.
    """

    max_attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 2.0
    connect_timeout: float = 1.0
    read_timeout: float = 2.0

    @classmethod
    def for_reserve(cls, reserve: float) -> RetryPolicy:
        """Client timeouts that let a retry fit in the seconds reserved to submit
        (``supervisor.deadline.attempt_timeouts``)."""
        connect, read = attempt_timeouts(reserve)
        return cls(connect_timeout=connect, read_timeout=read)

    @property
    def attempt_time(self) -> float:
        """The longest one attempt may take before the client gives up on it."""
        return self.connect_timeout + self.read_timeout

    def ceiling(self, retry: int) -> float:
        """The longest wait before the ``retry``-th retry (1 for the first)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


@dataclass(frozen=True)
class _Failure:
    """One failed attempt, as the retry loop and the messages need it."""

    code: str
    message: str
    retryable: bool

    @classmethod
    def of(cls, exc: Exception) -> _Failure:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = str(error.get("Code") or status or "Unknown")
            retryable = (
                status == 429
                or status >= 500
                or code in _THROTTLING_CODES
                or code in _TRANSIENT_CODES
            )
            return cls(code, str(error.get("Message") or ""), retryable)
        retryable = isinstance(exc, BotoConnectionError | HTTPClientError)
        return cls(type(exc).__name__, str(exc), retryable)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class BatchBackend:
    """AWS Batch through boto3, with retries that end before the deadline.

    ``sleep`` and ``jitter`` (a number in [0, 1)) are injectable, and the clock comes with
    the deadline, so that the retry loop can be tested without waiting.  Without a
    ``client``, one is created from ``session`` (a botocore session, shared with the
    supervisor's other clients), else from a session of its own.
    """

    def __init__(
        self,
        client: BatchClient | None = None,
        *,
        policy: RetryPolicy | None = None,
        session: Callable[[], BotocoreSession] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self.policy = policy or RetryPolicy()
        self._session = session
        self._sleep = sleep
        self._jitter = jitter

    def prepare(self) -> None:
        self.client()

    def rehearse(self) -> None:
        """Take a SubmitJob through the client without sending it (see
        ``shortcuts.rehearse``): the first real one then costs what a warm one does."""
        from supervisor.shortcuts import rehearse

        name = "rehearsal"
        rehearse(
            self.client(), "submit_job", {"jobName": name, "jobQueue": name, "jobDefinition": name}
        )

    def client(self) -> BatchClient:
        if self._client is None:
            client = create_client(
                "batch",
                session=self._session,
                connect_timeout=self.policy.connect_timeout,
                read_timeout=self.policy.read_timeout,
                # One attempt per call: the loop in ``submit`` retries against the deadline.
                max_attempts=1,
            )
            self._client = cast("BatchClient", client)
        return self._client

    def submit(self, job: JobRequest, deadline: Deadline = _NO_DEADLINE) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        client, request = self.client(), job.submit_kwargs()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = client.submit_job(**request)
                break
            except (ClientError, BotoCoreError) as exc:
                failure = _Failure.of(exc)
                if not failure.retryable:
                    raise DelegationError(_refused(job, failure)) from exc
                delay = self._backoff(attempt, deadline)
                if delay is None:
                    why = (
                        "the attempts ran out"
                        if attempt >= self.policy.max_attempts
                        else "no time was left before the deadline for another attempt"
                    )
                    raise DelegationError(_gave_up(job, failure, attempt, why)) from exc
                logger.warning(
                    "SubmitJob for job %s failed with %s (attempt %d); retrying in %.2f s",
                    job.job_name,
                    failure.code,
                    attempt,
                    delay,
                )
                self._sleep(delay)
        job_id = response["jobId"]
        logger.info(
            "Submitted Batch job %s (%s) to queue %s%s",
            job_id,
            job.job_name,
            job.job_queue,
            f" after {attempt} attempts" if attempt > 1 else "",
        )
        return job_id

    def _backoff(self, attempt: int, deadline: Deadline) -> float | None:
        """The wait before the next attempt, or ``None`` when there is to be none."""
        if attempt >= self.policy.max_attempts:
            return None
        delay = self._jitter() * self.policy.ceiling(attempt)
        # The last instant at which a whole attempt still fits before the deadline.
        latest = deadline.less(self.policy.attempt_time).at
        if latest is None:
            return delay
        room = latest - deadline.clock()
        if room < 0:
            return None
        return min(delay, room)


def _refused(job: JobRequest, failure: _Failure) -> str:
    return (
        f"AWS Batch refused job {job.job_name} on queue {job.job_queue} "
        f"(definition {job.job_definition}): {failure}"
    )


def _gave_up(job: JobRequest, failure: _Failure, attempts: int, why: str) -> str:
    return (
        f"could not submit job {job.job_name} to AWS Batch queue {job.job_queue}: "
        f"{attempts} attempt(s) failed and {why}; the last error: {failure}"
    )
