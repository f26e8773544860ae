"""Raw events -> typed records.

One ``Record`` per unit of work: an object in a bucket (S3 and MinIO notifications, also
wrapped in SQS, SNS or EventBridge envelopes, and OSCAR's delegated event), a request body
(API Gateway REST and HTTP APIs, function URLs) or a whole direct invocation with its
``script`` and ``cmd_args``.  Keys are URL-decoded here, once, and folder markers skipped
(``docs/events.md`` says what each event gives the script).  Anything that cannot be
understood raises ``EventError`` naming what is missing; so does an event nested deeper
than ``MAX_DEPTH`` levels, and text the script could not receive as UTF-8 (a lone
surrogate).  An object key that cannot be a file name is refused later, by staging.

The modules, one per family of event shapes: ``objects`` (storage notifications and their
envelopes, OSCAR's delegated event), ``api`` (HTTP requests), ``direct`` (direct
invocations); ``records`` holds ``Record`` and the events that carry one, ``values`` the
checks on what an event holds.
"""

from __future__ import annotations

import json
from typing import Any

from supervisor.errors import EventError
from supervisor.events.api import api_record, is_api_request
from supervisor.events.direct import cmd_args_of, direct_event, opaque_event, script_of
from supervisor.events.objects import object_created, object_event
from supervisor.events.records import (
    CALLER_KEYS,
    ParsedEvent,
    Record,
    RecordSource,
    event_for,
    record_event,
)
from supervisor.events.values import MAX_DEPTH, check_depth, kind_of

__all__ = [
    "CALLER_KEYS",
    "MAX_DEPTH",
    "ParsedEvent",
    "Record",
    "RecordSource",
    "event_for",
    "is_api_request",
    "object_created",
    "parse",
    "record_event",
]


def parse(raw: Any, *, opaque_body: bool = False) -> ParsedEvent:
    """Turn a raw event (already decoded JSON, or JSON text) into records; raise ``EventError``.

    With ``opaque_body`` (an OSCAR service's synchronous call, whose request body is the
    event), text that is not JSON is the input file itself: base64-decoded when it is base64,
    as OSCAR's clients send files, else as it is.
    """
    if opaque_body and isinstance(raw, str | bytes | bytearray):
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError):
            return opaque_event(raw)
    else:
        event = _decoded(raw)
    check_depth(event, "the event")
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {kind_of(event)}")
    if is_api_request(event):
        kind = "api-v2" if event.get("version") == "2.0" else "api-v1"
        return ParsedEvent(kind, (api_record(event),), event)
    script, cmd_args = script_of(event), cmd_args_of(event)
    parsed = object_event(event, script, cmd_args)
    return parsed if parsed is not None else direct_event(event, script, cmd_args)


def _decoded(raw: Any) -> Any:
    if isinstance(raw, bytes | bytearray):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError("the event is not UTF-8 text") from exc
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise EventError(f"the event is not JSON: {exc}") from exc
        except RecursionError:
            raise EventError("the event is JSON nested too deeply to read") from None
    return raw
