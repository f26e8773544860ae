"""Raw events -> typed records.

One ``Record`` per unit of work: an object in a bucket (S3 and MinIO notifications, also
wrapped in SQS, SNS or EventBridge envelopes, and OSCAR's delegated event), a request body
(API Gateway REST and HTTP APIs, function URLs) or a whole direct invocation with its
``script`` and ``cmd_args``.  Keys are URL-decoded here, once, and folder markers skipped
(``docs/events.md`` says what each event gives the script).  Anything that cannot be
understood raises ``EventError`` naming what is missing; so does an event nested deeper
than ``MAX_DEPTH`` levels, and text the script could not receive as UTF-8 (a lone
surrogate).  An object key that cannot be a file name is refused later, by staging.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote_plus, unquote_plus

from supervisor.errors import EventError

__all__ = [
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

_log = logging.getLogger(__name__)

RecordSource = Literal["s3", "minio", "api", "direct"]
# Levels of objects and lists an event may nest: storage and API events use fewer than 10.
MAX_DEPTH = 200


@dataclass(frozen=True)
class Record:
    """One unit of work: an object to download, or a body to save as the input file.

    ``size`` and ``etag`` are what the event says of the object (``None`` where it says
    nothing); the object may have changed since.
    """

    source: RecordSource
    bucket: str = ""
    key: str = ""
    size: int | None = None
    etag: str | None = None
    event_time: str = ""
    body: bytes | None = None
    file_name: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    raw: Any = field(default=None, compare=False, repr=False)
    # The provider named by OSCAR's delegated event (``TYPE.ID`` or an ID), else None.
    storage_provider: str | None = None
    # The SQS or SNS record the record came in (the outermost), and the SQS message's id.
    envelope: Any = field(default=None, compare=False, repr=False)
    message_id: str | None = None

    @property
    def is_object(self) -> bool:
        return self.source in ("s3", "minio")

    @property
    def provider_type(self) -> str:
        """The storage provider type an object record is read from."""
        if self.storage_provider is not None:
            kind, dot, _ = self.storage_provider.partition(".")
            if dot or kind in _event_types():
                return kind
        return "minio" if self.source == "minio" else "s3"

    @property
    def provider_id(self) -> str | None:
        """The provider ID the event names for this object, or None to pick it by bucket.

        OSCAR names ``TYPE.ID``, a bare ``TYPE`` (its default provider), or, in older
        releases, a bare cluster ID (a provider of the event's own type).
        """
        if not self.storage_provider:
            return None
        kind, dot, ident = self.storage_provider.partition(".")
        if dot:
            return ident or "default"
        return "default" if kind in _event_types() else kind


def _event_types() -> frozenset[str]:
    """The storage types an object event can name (OSCAR's delegated events)."""
    # The registry holds pydantic models: imported for the events that name a provider.
    from supervisor import storage

    return storage.event_types()


@dataclass(frozen=True)
class ParsedEvent:
    """An event's records, with the ``script`` and ``cmd_args`` its caller passed at the top
    level of a direct invocation (None when it passed none)."""

    kind: str
    records: tuple[Record, ...]
    raw: Any
    script: str | None = None
    cmd_args: tuple[str, ...] | None = None
    # An SQS batch: the id of each of its messages, and those that could not be read
    # (id, reason), whose records are not among ``records``.
    message_ids: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()


_BODY_FILE = "api_event_file"
_DIRECT_FILE = "event_file"


# Keys of a direct invocation that are instructions to the supervisor, not input data.
CALLER_KEYS = ("script", "cmd_args")


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
            return _opaque(raw)
    else:
        event = _decoded(raw)
    _check_depth(event, "the event")
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {_kind(event)}")
    if is_api_request(event):
        kind = "api-v2" if event.get("version") == "2.0" else "api-v1"
        return ParsedEvent(kind, (_api(event),), event)
    script, cmd_args = _script(event), _cmd_args(event)
    if _is_delegated(event):
        return _delegated(event, script, cmd_args)
    if "Records" in event:
        if _is_sqs_batch(event["Records"]):
            return _sqs_batch(event, script, cmd_args)
        records = _records(event["Records"], "Records")
        return ParsedEvent("records", records, event, script, cmd_args)
    if event.get("source") == "aws.s3" or "detail-type" in event:
        return ParsedEvent("eventbridge", _eventbridge(event), event, script, cmd_args)
    payload = {name: value for name, value in event.items() if name not in CALLER_KEYS}
    body = json.dumps(payload).encode() if payload else None
    record = Record("direct", body=body, file_name=_DIRECT_FILE, raw=event)
    return ParsedEvent("direct", (record,), event, script, cmd_args)


def _is_sqs_batch(items: Any) -> bool:
    """Records that Lambda's SQS integration delivers: each an SQS message with its id."""
    return (
        isinstance(items, list)
        and bool(items)
        and all(
            isinstance(item, dict)
            and item.get("eventSource") == "aws:sqs"
            and isinstance(item.get("messageId"), str)
            and item["messageId"]
            for item in items
        )
    )


def _sqs_batch(
    event: dict[str, Any], script: str | None, cmd_args: tuple[str, ...] | None
) -> ParsedEvent:
    """A batch of SQS messages, read one message at a time: a message that cannot be
    understood is rejected alone (retrying it cannot help, but its redeliveries end in the
    queue's dead-letter queue), and the others are processed."""
    records: list[Record] = []
    rejected: list[tuple[str, str]] = []
    for index, item in enumerate(event["Records"]):
        try:
            records.extend(_record(item, f"Records[{index}]"))
        except EventError as exc:
            _log.warning("SQS message %s rejected: %s", item["messageId"], exc)
            rejected.append((item["messageId"], str(exc)))
    ids = tuple(item["messageId"] for item in event["Records"])
    return ParsedEvent(
        "records",
        tuple(records),
        event,
        script,
        cmd_args,
        message_ids=ids,
        rejected=tuple(rejected),
    )


def _is_delegated(event: dict[str, Any]) -> bool:
    return "event" in event and "storage_provider" in event and "Records" not in event


def _delegated(
    event: dict[str, Any], script: str | None, cmd_args: tuple[str, ...] | None
) -> ParsedEvent:
    """OSCAR's delegated event: the original event as JSON text, and the provider to read it
    from (``TYPE.ID``, or an ID of the event's own provider type)."""
    provider = event["storage_provider"]
    if not isinstance(provider, str) or not provider.strip():
        raise EventError("delegated event: 'storage_provider' must be a provider name")
    inner = event["event"]
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except ValueError as exc:
            raise EventError("delegated event: 'event' is not JSON") from exc
        except RecursionError:
            raise EventError("delegated event: 'event' is JSON nested too deeply") from None
        _check_depth(inner, "delegated event: 'event'")
    if not isinstance(inner, dict) or "Records" not in inner:
        raise EventError("delegated event: 'event' must hold the original storage event")
    records = tuple(
        replace(record, storage_provider=provider.strip())
        for record in _records(inner["Records"], "event.Records")
    )
    return ParsedEvent("delegated", records, event, script, cmd_args)


def _opaque(raw: str | bytes | bytearray) -> ParsedEvent:
    """A request body that is not JSON: the input file itself."""
    if isinstance(raw, str):
        try:
            # Bytes that standard input could not decode come back as they were sent.
            content = raw.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            _utf8(raw, "the request body")
            raise
    else:
        content = bytes(raw)
    with contextlib.suppress(ValueError):  # not base64: the body is the file
        content = base64.b64decode(content, validate=True)
    record = Record("direct", body=content, file_name=_DIRECT_FILE)
    return ParsedEvent("body", (record,), raw)


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


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _script(event: dict[str, Any]) -> str | None:
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


def _cmd_args(event: dict[str, Any]) -> tuple[str, ...] | None:
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
        _utf8(item, f"cmd_args[{index}]")
    return tuple(value)


def _records(items: Any, where: str) -> tuple[Record, ...]:
    if not isinstance(items, list):
        raise EventError(f"{where} must be a list, got {_kind(items)}")
    if not items:
        raise EventError(f"{where} is empty: there is nothing to process")
    records: list[Record] = []
    for index, item in enumerate(items):
        records.extend(_record(item, f"{where}[{index}]"))
    return tuple(records)


def _record(item: Any, where: str) -> tuple[Record, ...]:
    if not isinstance(item, dict):
        raise EventError(f"{where} must be an object, got {_kind(item)}")
    source = item.get("eventSource") or item.get("EventSource")
    if source in ("aws:s3", "minio:s3"):
        return _s3_record(item, where, "minio" if source == "minio:s3" else "s3")
    if source == "aws:sqs":
        message_id = item.get("messageId")
        return tuple(
            replace(
                record,
                envelope=item,
                message_id=message_id if isinstance(message_id, str) else None,
            )
            for record in _envelope(item.get("body"), f"{where}.body")
        )
    if source == "aws:sns":
        sns = item.get("Sns")
        if not isinstance(sns, dict):
            raise EventError(f"{where}.Sns is missing")
        return tuple(
            replace(record, envelope=item, message_id=None)
            for record in _envelope(sns.get("Message"), f"{where}.Sns.Message")
        )
    if "s3" in item:
        return _s3_record(item, where, "s3")
    raise EventError(
        f"{where}: unknown record (eventSource {source!r}); expected aws:s3, minio:s3, "
        "or S3 records wrapped by aws:sqs or aws:sns"
    )


def _envelope(body: Any, where: str) -> tuple[Record, ...]:
    """An SQS or SNS message: S3 records, an SNS notification or an EventBridge event."""
    if not isinstance(body, str):
        raise EventError(f"{where} is missing")
    try:
        inner = json.loads(body)
    except ValueError as exc:
        raise EventError(f"{where} is not JSON") from exc
    except RecursionError:
        raise EventError(f"{where} is JSON nested too deeply to read") from None
    _check_depth(inner, where)
    if not isinstance(inner, dict):
        raise EventError(f"{where} must hold a JSON object")
    if inner.get("Event") == "s3:TestEvent":
        _log.info("Skipping the s3:TestEvent sent when a bucket notification is configured")
        return ()
    if "Records" in inner:
        return _records(inner["Records"], f"{where}.Records")
    if inner.get("Type") == "Notification" and "Message" in inner:
        return _envelope(inner["Message"], f"{where}.Message")
    if inner.get("source") == "aws.s3":
        return _eventbridge(inner)
    raise EventError(f"{where}: expected S3 records inside the message")


def _s3_record(item: dict[str, Any], where: str, source: RecordSource) -> tuple[Record, ...]:
    s3 = item.get("s3")
    if not isinstance(s3, dict):
        raise EventError(f"{where}.s3 is missing")
    bucket = s3.get("bucket")
    name = bucket.get("name") if isinstance(bucket, dict) else None
    if not isinstance(name, str) or not name:
        raise EventError(f"{where}.s3.bucket.name is missing")
    obj = s3.get("object")
    if not isinstance(obj, dict):
        raise EventError(f"{where}.s3.object is missing")
    key = obj.get("key")
    if not isinstance(key, str) or not key:
        raise EventError(f"{where}.s3.object.key is missing")
    key = _object_key(key)
    if _is_folder(name, key):
        return ()
    return (
        Record(
            source=source,
            bucket=name,
            key=key,
            size=_size(obj.get("size")),
            etag=_etag(obj.get("eTag")),
            event_time=_utf8(str(item.get("eventTime") or ""), f"{where}.eventTime"),
            raw=item,
        ),
    )


def _object_key(key: str) -> str:
    """The key as stored: bucket notifications URL-encode it (a space as '+').  The events
    ``scar run`` makes up from a bucket listing carry it as it is; a literal space, which
    URL encoding never leaves, tells those apart (a raw key with '+' and no space cannot be
    told apart, and is decoded as a notification's)."""
    return key if " " in key else unquote_plus(key)


def _is_folder(bucket: str, key: str) -> bool:
    """A folder marker: an empty object whose key ends in '/', nothing to process."""
    if not key.endswith("/"):
        return False
    _log.info("Skipping the folder marker %s/%s: it is not a file", bucket, _printable(key))
    return True


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _eventbridge(event: dict[str, Any]) -> tuple[Record, ...]:
    detail = event.get("detail")
    if event.get("source") != "aws.s3" or not isinstance(detail, dict):
        raise EventError("EventBridge event: expected source 'aws.s3' with a 'detail' object")
    if event.get("detail-type") != "Object Created":
        raise EventError(
            f"EventBridge event: detail-type {event.get('detail-type')!r} is not 'Object Created'"
        )
    bucket = detail.get("bucket")
    name = bucket.get("name") if isinstance(bucket, dict) else None
    obj = detail.get("object")
    key = obj.get("key") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not name:
        raise EventError("EventBridge event: detail.bucket.name is missing")
    if not isinstance(key, str) or not key or not isinstance(obj, dict):
        raise EventError("EventBridge event: detail.object.key is missing")
    # EventBridge carries the key as it is, not URL-encoded like bucket notifications.
    if _is_folder(name, key):
        return ()
    return (
        Record(
            "s3",
            bucket=name,
            key=key,
            size=_size(obj.get("size")),
            etag=_etag(obj.get("etag")),
            event_time=_utf8(str(event.get("time") or ""), "EventBridge event: time"),
            raw=event,
        ),
    )


def is_api_request(event: Any) -> bool:
    """Whether the event is an API Gateway or function URL request (a caller waits for it)."""
    if not isinstance(event, dict):
        return False
    context = event.get("requestContext")
    return isinstance(context, dict) and (
        "httpMethod" in event or "routeKey" in event or "http" in context
    )


def _api(event: dict[str, Any]) -> Record:
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
        data = _utf8(body, "API request: 'body'").encode("utf-8")
    query = event.get("queryStringParameters") or {}
    if not isinstance(query, dict):
        raise EventError("API request: 'queryStringParameters' must be an object")
    parameters = {
        _utf8(str(name), "API request: a query parameter name"): _utf8(
            str(value), f"API request: query parameter {_printable(str(name))!r}"
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
        event_time=_utf8(str(when), "API request: requestContext time"),
        raw=event,
    )


def _utf8(text: str, where: str) -> str:
    """``text``, if UTF-8 can write it: a lone surrogate (``\\ud800`` in JSON) cannot be
    written to a file, a file name or the script's environment."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EventError(
            f"{where} is not valid Unicode text: it holds the lone surrogate "
            f"U+{ord(text[exc.start]):04X} at character {exc.start}"
        ) from None
    return text


def _check_depth(value: Any, where: str) -> None:
    """Refuse objects and lists nested deeper than ``MAX_DEPTH``, walking them without
    recursion (a decoded event may come nested deeper than Python's recursion limit)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise EventError(
                f"{where} is nested too deeply: more than {MAX_DEPTH} levels of objects or lists"
            )
        pending.extend((child, depth + 1) for child in children)


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _etag(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def record_event(parsed: ParsedEvent, record: Record) -> Any:
    """The event of ``record``, as its script sees it (``EVENT``): the whole event when it
    holds that record alone, else the message it came in (an SQS or SNS record, in an event
    of one record), else the event that carries it alone (``event_for``)."""
    if _alone(parsed):
        return parsed.raw
    if record.envelope is not None:
        return {"Records": [record.envelope]}
    return event_for(parsed, record)


def event_for(parsed: ParsedEvent, record: Record) -> Any:
    """The event that carries ``record`` alone, to hand one unfinished record on to Batch.

    A record that came alone in an SQS or SNS message is handed on in that message, so that
    its script sees the same ``EVENT`` on Batch.  A record that came inside an envelope is
    handed on without the caller's keys (``script``, ``cmd_args``) that its sender may have
    put there: only the top level of a direct invocation may carry them.
    """
    if _alone(parsed):
        return parsed.raw
    if record.envelope is not None and _alone_in(parsed, record):
        return {"Records": [record.envelope]}
    if record.raw is None:
        return parsed.raw
    if parsed.kind == "delegated":
        inner = {"Records": [record.raw]}
        return {**parsed.raw, "event": json.dumps(inner)}
    if isinstance(record.raw, dict) and "s3" in record.raw:
        return {"Records": [record.raw]}
    if isinstance(record.raw, dict):
        return {name: value for name, value in record.raw.items() if name not in CALLER_KEYS}
    return record.raw


def _alone(parsed: ParsedEvent) -> bool:
    """Whether the event holds one record and nothing else to process or reject."""
    return len(parsed.records) == 1 and not parsed.rejected and len(parsed.message_ids) <= 1


def _alone_in(parsed: ParsedEvent, record: Record) -> bool:
    return sum(1 for other in parsed.records if other.envelope is record.envelope) == 1


def object_created(
    bucket: str, key: str, size: int, *, when: float | None = None
) -> dict[str, Any]:
    """The S3 notification a bucket sends when ``key`` is written (``when``: a Unix time).

    The key is URL-encoded as S3 encodes it (a space as ``+``), so that ``parse`` decodes it
    back to ``key``.
    """
    moment = time.time() if when is None else when
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    millis = int(moment * 1000) % 1000
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "local",
                "eventTime": f"{stamp}.{millis:03d}Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "sequencer": f"{int(moment * 1e9):016X}",
                    },
                },
            }
        ]
    }
