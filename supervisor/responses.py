"""The Lambda response: the shape deployment tools and API Gateway callers read.

``{"statusCode", "headers": {"amz-lambda-request-id", "amz-log-group-name",
"amz-log-stream-name"}, "body": base64, "isBase64Encoded": true}``: the body holds the
script's output, the delegation note, or a short error (never a traceback).  For a batch of
SQS messages of which some failed, the response also lists them as Lambda's SQS integration
reads them with ``ReportBatchItemFailures``: ``{"batchItemFailures": [{"itemIdentifier":
"<messageId>"}, ...]}``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from supervisor.escaping import escape

if TYPE_CHECKING:
    from supervisor.context import InvocationContext
    from supervisor.runtime import Outcome

__all__ = ["batch_item_failures", "error", "for_outcome", "respond"]


def respond(status: int, body: bytes, context: InvocationContext) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {
            "amz-lambda-request-id": context.request_id,
            "amz-log-group-name": context.log_group_name,
            "amz-log-stream-name": context.log_stream_name,
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def error(status: int, message: str, context: InvocationContext) -> dict[str, Any]:
    """A response for a request that could not be served, with a one-line reason: its
    control characters (from a key, a body, a file name) escaped."""
    return respond(status, f"{escape(message.strip())}\n".encode(), context)


def batch_item_failures(
    message_ids: Sequence[str], message: str, context: InvocationContext
) -> dict[str, Any]:
    """The response to a batch of SQS messages of which ``message_ids`` failed: only those
    are delivered again (the event source mapping must report batch item failures)."""
    return {
        **error(500, message, context),
        "batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids],
    }


def for_outcome(
    outcome: Outcome, synchronous: bool, context: InvocationContext
) -> dict[str, Any] | None:
    """The response to an invocation that ended with ``outcome`` (``synchronous``: an API
    request, whose caller waits for it): 200 with the script's output, 202 when the work
    went to Batch, the failed messages of a partly failed SQS batch, 500 for a failed API
    request.  None for any other failure: the handler raises, so that Lambda retries the
    event and then sends it to the function's on-failure destination."""
    if outcome.status == "failed":
        summary = "; ".join(outcome.summary().splitlines())
        failed = outcome.failed_messages
        if failed and len(failed) < len(outcome.message_ids):
            return batch_item_failures(failed, summary, context)
        if synchronous:
            return error(500, summary, context)
        return None
    if outcome.status == "delegated":
        return respond(202, f"{outcome.summary()}\n".encode(), context)
    return respond(200, outcome.output, context)
