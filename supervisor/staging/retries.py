"""Retries of the S3 clients: botocore's standard mode, with limits that fit a Lambda deadline.

Standard mode retries a 5xx, a throttling answer (``SlowDown``) and a connection error (a
reset, a timeout) with jittered exponential backoff (50 ms base, 1 s after throttling,
20 s at most) and a retry quota per client.  ``MAX_ATTEMPTS`` per request and short
connect and read timeouts keep one dead request from holding a transfer for minutes: a
request that cannot succeed fails within about a minute at worst, and every transfer
as a whole is bounded by the deadline that ``staging.download`` and ``staging.upload``
are given.  ``log_retries`` makes each retry one WARNING line naming the operation, the
object and the cause, so that time spent retrying is never silent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.awsrequest import AWSRequest
    from mypy_boto3_s3 import S3Client

__all__ = ["CONNECT_TIMEOUT", "MAX_ATTEMPTS", "READ_TIMEOUT", "log_retries", "settings"]

logger = logging.getLogger(__name__)

# The first attempt included: four retries take at most 0.75 s of backoff after a 5xx or a
# reset, 15 s after throttling.
MAX_ATTEMPTS = 5
# Seconds.  S3 answers a connect within milliseconds and starts an answer within a second
# or two; botocore's 60 s would let five attempts at a silent endpoint take five minutes.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0

_CAUSE = "supervisor_retry_cause"


def settings() -> dict[str, Any]:
    """The ``botocore.config.Config`` arguments for retries and timeouts."""
    return {
        "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
    }


def log_retries(client: S3Client) -> None:
    """Log a WARNING line for each retry ``client`` makes."""
    events = client.meta.events
    # First, so that the cause is noted whatever the retry handler decides.
    events.register_first("needs-retry.s3", _note_cause, unique_id="supervisor-retry-cause")
    events.register("request-created.s3", _log_retry, unique_id="supervisor-retry-log")


def _note_cause(
    request_dict: dict[str, Any] | None = None,
    response: tuple[Any, dict[str, Any]] | None = None,
    caught_exception: BaseException | None = None,
    **kwargs: Any,
) -> None:
    context = (request_dict or {}).get("context")
    if context is None:
        return
    if caught_exception is not None:
        cause = type(caught_exception).__name__
    elif response is not None and response[0].status_code >= 400:
        code = response[1].get("Error", {}).get("Code") or "error"
        cause = f"{code} (HTTP {response[0].status_code})"
    else:
        return
    context[_CAUSE] = cause


def _log_retry(request: AWSRequest, operation_name: str, **kwargs: Any) -> None:
    context = request.context
    retries = context.get("retries", {})
    attempt = retries.get("attempt", 1)
    if attempt <= 1:
        return
    params = context.get("input_params") or {}
    uri = f"s3://{params.get('Bucket', '?')}/{params.get('Key', '')}"
    logger.warning(
        "Retrying S3 %s of %s (attempt %d of %d) after %s",
        operation_name,
        uri,
        attempt,
        retries.get("max", MAX_ATTEMPTS),
        context.get(_CAUSE, "an error"),
    )
