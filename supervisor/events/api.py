"""API Gateway requests (REST API v1, HTTP API v2) and Lambda function URLs.

The request body is the input file (``api_event_file``), base64-decoded when the request
says so; the query parameters reach the script as ``CONT_VAR_<name>``.
"""

from __future__ import annotations

import base64
from typing import Any

from supervisor.errors import EventError
from supervisor.escaping import escape
from supervisor.events.records import Record
from supervisor.events.values import utf8

__all__ = ["api_record", "is_api_request"]

_BODY_FILE = "api_event_file"


def is_api_request(event: Any) -> bool:
    """Whether the event is an API Gateway or function URL request (a caller waits for it)."""
    if not isinstance(event, dict):
        return False
    context = event.get("requestContext")
    return isinstance(context, dict) and (
        "httpMethod" in event or "routeKey" in event or "http" in context
    )


def api_record(event: dict[str, Any]) -> Record:
    body = event.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise EventError("API request: 'body' must be a string")
    elif event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError as exc:  # binascii.Error, or a character outside ASCII
            raise EventError(
                "API request: 'body' is marked isBase64Encoded but is not base64"
            ) from exc
    else:
        data = utf8(body, "API request: 'body'").encode("utf-8")
    query = event.get("queryStringParameters") or {}
    if not isinstance(query, dict):
        raise EventError("API request: 'queryStringParameters' must be an object")
    parameters = {
        utf8(str(name), "API request: a query parameter name"): utf8(
            str(value), f"API request: query parameter {escape(str(name))!r}"
        )
        for name, value in query.items()
        if value is not None
    }
    context = event["requestContext"]
    when = context.get("time") or context.get("requestTime") or ""
    return Record(
        "api",
        body=data,
        file_name=_BODY_FILE,
        query=parameters,
        event_time=utf8(str(when), "API request: requestContext time"),
        raw=event,
    )
