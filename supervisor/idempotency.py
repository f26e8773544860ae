"""Handing each delivery of an invocation to Batch once: a record per delivery in DynamoDB.

``DynamoDBIdempotency`` wraps a submission in aws-lambda-powertools' idempotency utility
with its DynamoDB persistence layer: one item per key (the function's name, and a hash of
the request id and the record's index, ``None`` for a ``batch``-mode job that carries the
whole event), written with a conditional put.  The first delivery writes ``INPROGRESS``,
submits, and stores the job id as ``COMPLETED``; a later one answers with that job id.  An
``INPROGRESS`` item holds only until the deadline of the invocation that wrote it (15
minutes without one), a failed submission removes it, and once a job is submitted a table
error is logged, not raised.  What users see of it is in ``docs/failures.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from supervisor.deadline import NO_DEADLINE_HOLD, Deadline
from supervisor.errors import DelegationError
from supervisor.sessions import create_client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from botocore.session import Session as BotocoreSession

__all__ = ["NO_DEADLINE_HOLD", "DynamoDBIdempotency", "Idempotency"]

logger = logging.getLogger(__name__)


class Idempotency(Protocol):
    def prepare(self) -> None:
        """Create the client now, so that nothing of that is paid at the deadline."""

    def once(
        self,
        request_id: str,
        record: int | None,
        submit: Callable[[], str],
        *,
        deadline: Deadline,
    ) -> str:
        """The job id of this delivery's job: ``submit()``'s, or the one recorded before."""


@dataclass(frozen=True)
class _TimeLeft:
    """The part of a Lambda context powertools reads: the time left, which sets how long an
    ``INPROGRESS`` item holds off other deliveries."""

    deadline: Deadline

    def get_remaining_time_in_millis(self) -> int:
        left = self.deadline.remaining()
        if left is None:
            return int(NO_DEADLINE_HOLD * 1000)
        return int(left * 1000)


class DynamoDBIdempotency:
    """Idempotency records in the DynamoDB table ``table`` (a name or an ARN).

    ``client`` is a boto3 DynamoDB client; by default one is created on ``prepare`` (from
    ``session``, the supervisor's botocore session, when given) with the given timeouts
    and one retry, so that a record costs little of the reserve.
    """

    def __init__(
        self,
        table: str,
        *,
        key_prefix: str,
        expires_after_seconds: int = 3600,
        client: Any = None,
        session: Callable[[], BotocoreSession] | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
    ) -> None:
        self.table = table
        self._key_prefix = key_prefix
        self._expires_after = expires_after_seconds
        self._client = client
        self._session = session
        self._timeouts = (connect_timeout, read_timeout)
        self._layer: DynamoDBPersistenceLayer | None = None

    def prepare(self) -> None:
        self._persistence()

    def _persistence(self) -> DynamoDBPersistenceLayer:
        if self._layer is None:
            from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

            client = self._client
            if client is None:
                client = create_client(
                    "dynamodb",
                    session=self._session,
                    connect_timeout=self._timeouts[0],
                    read_timeout=self._timeouts[1],
                    max_attempts=2,
                )
            self._layer = DynamoDBPersistenceLayer(table_name=self.table, boto3_client=client)
        return self._layer

    def once(
        self,
        request_id: str,
        record: int | None,
        submit: Callable[[], str],
        *,
        deadline: Deadline,
    ) -> str:
        from aws_lambda_powertools.utilities.idempotency.exceptions import BaseError

        what = _delivery(request_id, record)
        submission = _Submission(submit)
        guarded = self._guarded(submission.run, deadline)
        try:
            result = guarded(delivery={"request_id": request_id, "record": record})
        except BaseError as exc:
            return self._after_table_error(exc, submission, what)
        job_id = result.get("job_id") if isinstance(result, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise DelegationError(
                f"idempotency table {self.table} holds {result!r} for {what}, not a job id"
            )
        if submission.job_id is None:
            logger.info(
                "%s was handed to Batch before as job %s; not submitting again", what, job_id
            )
        return job_id

    def _guarded(
        self, function: Callable[[dict[str, Any]], dict[str, str]], deadline: Deadline
    ) -> Callable[..., Any]:
        """``function`` under powertools' idempotency utility, keyed by its ``delivery``
        argument; an ``INPROGRESS`` item holds until ``deadline``."""
        from aws_lambda_powertools.utilities.idempotency import (
            IdempotencyConfig,
            idempotent_function,
        )

        config = IdempotencyConfig(
            expires_after_seconds=self._expires_after,
            lambda_context=cast("LambdaContext", _TimeLeft(deadline)),
        )
        guarded: Callable[..., Any] = idempotent_function(
            function,
            data_keyword_argument="delivery",
            persistence_store=self._persistence(),
            config=config,
            key_prefix=self._key_prefix,
        )
        return guarded

    def _after_table_error(self, exc: Exception, submission: _Submission, what: str) -> str:
        """The job id when the job was submitted all the same; else the ``DelegationError``
        that says what the table did, and what the submission did."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        if isinstance(exc, IdempotencyAlreadyInProgressError):
            raise DelegationError(
                f"{what} is being handed to Batch by another delivery (idempotency table "
                f"{self.table}); not submitting a second job, try again later"
            ) from exc
        if not isinstance(exc, IdempotencyPersistenceLayerError):
            raise DelegationError(f"idempotency table {self.table}: {what}: {exc}") from exc
        if submission.job_id is not None:
            logger.warning(
                "Submitted Batch job %s for %s but could not record it in idempotency table %s: %s",
                submission.job_id,
                what,
                self.table,
                _cause(exc),
            )
            return submission.job_id
        if submission.error is not None:
            raise DelegationError(
                f"{submission.error} (and the idempotency table {self.table} failed: {_cause(exc)})"
            ) from submission.error
        raise DelegationError(
            f"idempotency table {self.table} failed, so the job for {what} was not "
            f"submitted: {_cause(exc)}"
        ) from exc


class _Submission:
    """One delivery's call of ``submit`` under the idempotency utility, and how it went:
    powertools hands back only what the function returned, and a table error that follows a
    submission hides whether the job was submitted."""

    def __init__(self, submit: Callable[[], str]) -> None:
        self._submit = submit
        self.job_id: str | None = None
        self.error: Exception | None = None

    def run(self, delivery: dict[str, Any]) -> dict[str, str]:
        try:
            self.job_id = self._submit()
        except Exception as exc:
            self.error = exc
            raise
        return {"job_id": self.job_id}


def _delivery(request_id: str, record: int | None) -> str:
    what = f"invocation {request_id}"
    return what if record is None else f"record {record} of {what}"


def _cause(exc: BaseException) -> str:
    """The underlying error of a powertools persistence error (a botocore one, mostly)."""
    cause = exc.__cause__
    return str(cause) if cause is not None else str(exc)
