"""Direct invocations: the whole event is the input, and its top level may carry the
caller's ``script`` (base64) and ``cmd_args``.  Also the request body of an OSCAR service's
synchronous call that is not JSON: the input file itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from supervisor.errors import EventError
from supervisor.events.records import CALLER_KEYS, ParsedEvent, Record
from supervisor.events.values import utf8

__all__ = ["cmd_args_of", "direct_event", "opaque_event", "script_of"]

_DIRECT_FILE = "event_file"


def direct_event(
    event: dict[str, Any], script: str | None, cmd_args: tuple[str, ...] | None
) -> ParsedEvent:
    """The event as one record, its input file the event without the caller's keys."""
    payload = {name: value for name, value in event.items() if name not in CALLER_KEYS}
    body = json.dumps(payload).encode() if payload else None
    record = Record("direct", body=body, file_name=_DIRECT_FILE, raw=event)
    return ParsedEvent("direct", (record,), event, script, cmd_args)


def opaque_event(raw: str | bytes | bytearray) -> ParsedEvent:
    """A request body that is not JSON: the input file itself."""
    if isinstance(raw, str):
        try:
            # Bytes that standard input could not decode come back as they were sent.
            content = raw.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            utf8(raw, "the request body")
            raise
    else:
        content = bytes(raw)
    with contextlib.suppress(ValueError):  # not base64: the body is the file
        content = base64.b64decode(content, validate=True)
    record = Record("direct", body=content, file_name=_DIRECT_FILE)
    return ParsedEvent("body", (record,), raw)


def script_of(event: dict[str, Any]) -> str | None:
    script = event.get("script")
    if script is None:
        return None
    if not isinstance(script, str) or not script.strip():
        raise EventError("'script' must be a base64-encoded shell script")
    try:
        base64.b64decode(script, validate=True)
    except ValueError as exc:  # binascii.Error, or a character outside ASCII
        raise EventError("'script' is not valid base64") from exc
    return script


def cmd_args_of(event: dict[str, Any]) -> tuple[str, ...] | None:
    """``cmd_args``: a JSON list as text (what ``scar run ARGS`` sends), or a list."""
    value = event.get("cmd_args")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise EventError("'cmd_args' must be a JSON list of strings") from exc
        except RecursionError:
            raise EventError("'cmd_args' must be a JSON list of strings") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise EventError("'cmd_args' must be a JSON list of strings")
    if any("\0" in item for item in value):
        raise EventError("'cmd_args' cannot hold a NUL character")
    for index, item in enumerate(value):
        utf8(item, f"cmd_args[{index}]")
    return tuple(value)
