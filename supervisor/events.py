"""Raw events -> typed records.

One ``Record`` per unit of work: an object in a bucket (S3 and MinIO notifications, also
wrapped in SQS, SNS or EventBridge envelopes), a request body (API Gateway REST and HTTP
APIs, function URLs) or a whole direct invocation.  Object keys are URL-decoded here,
once.  Anything that cannot be understood raises ``EventError`` with what is missing.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote_plus, unquote_plus

from supervisor.errors import EventError

__all__ = [
    "ParsedEvent",
    "Record",
    "RecordSource",
    "event_for",
    "is_api_request",
    "object_created",
    "parse",
]

_log = logging.getLogger(__name__)

RecordSource = Literal["s3", "minio", "api", "direct"]


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

    @property
    def is_object(self) -> bool:
        return self.source in ("s3", "minio")

    @property
    def provider_type(self) -> str:
        """The storage provider type an object record is read from."""
        return "minio" if self.source == "minio" else "s3"


@dataclass(frozen=True)
class ParsedEvent:
    kind: str
    records: tuple[Record, ...]
    raw: Any
    script: str | None = None


_BODY_FILE = "api_event_file"
_DIRECT_FILE = "event_file"


def parse(raw: Any) -> ParsedEvent:
    """Turn a raw event (already decoded JSON, or JSON text) into records; raise ``EventError``."""
    event = _decoded(raw)
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {_kind(event)}")
    if not event:
        raise EventError(
            "the event is empty: expected S3 records, an API request or a JSON payload"
        )
    script = _script(event)
    if "Records" in event:
        return ParsedEvent("records", _records(event["Records"], "Records"), event, script)
    if event.get("source") == "aws.s3" or "detail-type" in event:
        return ParsedEvent("eventbridge", (_eventbridge(event),), event, script)
    if is_api_request(event):
        kind = "api-v2" if event.get("version") == "2.0" else "api-v1"
        return ParsedEvent(kind, (_api(event),), event, script)
    payload = {name: value for name, value in event.items() if name != "script"}
    body = json.dumps(payload).encode() if payload else None
    return ParsedEvent(
        "direct", (Record("direct", body=body, file_name=_DIRECT_FILE, raw=event),), event, script
    )


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
        return (_s3_record(item, where, "minio" if source == "minio:s3" else "s3"),)
    if source == "aws:sqs":
        return _envelope(item.get("body"), f"{where}.body")
    if source == "aws:sns":
        sns = item.get("Sns")
        if not isinstance(sns, dict):
            raise EventError(f"{where}.Sns is missing")
        return _envelope(sns.get("Message"), f"{where}.Sns.Message")
    if "s3" in item:
        return (_s3_record(item, where, "s3"),)
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
        return (_eventbridge(inner),)
    raise EventError(f"{where}: expected S3 records inside the message")


def _s3_record(item: dict[str, Any], where: str, source: RecordSource) -> Record:
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
    return Record(
        source=source,
        bucket=name,
        key=unquote_plus(key),
        size=_size(obj.get("size")),
        etag=_etag(obj.get("eTag")),
        event_time=str(item.get("eventTime") or ""),
        raw=item,
    )


def _eventbridge(event: dict[str, Any]) -> Record:
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
    return Record(
        "s3",
        bucket=name,
        key=key,
        size=_size(obj.get("size")),
        etag=_etag(obj.get("etag")),
        event_time=str(event.get("time") or ""),
        raw=event,
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
        data = body.encode("utf-8")
    query = event.get("queryStringParameters") or {}
    if not isinstance(query, dict):
        raise EventError("API request: 'queryStringParameters' must be an object")
    context = event["requestContext"]
    when = context.get("time") or context.get("requestTime") or ""
    return Record(
        "api",
        body=data,
        file_name=_BODY_FILE,
        query={str(name): str(value) for name, value in query.items() if value is not None},
        event_time=str(when),
        raw=event,
    )


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _etag(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def event_for(parsed: ParsedEvent, record: Record) -> Any:
    """The event that carries ``record`` alone, to hand one unfinished record on to Batch."""
    if len(parsed.records) == 1 or record.raw is None:
        return parsed.raw
    if isinstance(record.raw, dict) and "s3" in record.raw:
        return {"Records": [record.raw]}
    return record.raw


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
