"""Objects written to a bucket: S3 and MinIO notifications, the SQS, SNS and EventBridge
envelopes around them, and OSCAR's delegated event.

Keys are URL-decoded here, once, and folder markers skipped.  An SQS batch is read one
message at a time, so that a message that cannot be understood is rejected alone.
``object_created`` writes the notification a bucket sends, for the local storage.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from supervisor.errors import EventError
from supervisor.escaping import escape
from supervisor.events.records import ParsedEvent, Record, RecordSource
from supervisor.events.values import check_depth, kind_of, object_etag, object_size, utf8

__all__ = ["object_created", "object_event"]

logger = logging.getLogger(__name__)


def object_event(
    event: dict[str, Any], script: str | None, cmd_args: tuple[str, ...] | None
) -> ParsedEvent | None:
    """The records of a storage event (notifications, their envelopes, OSCAR's delegated
    event), with what its caller passed; None when ``event`` is none of these."""
    if _is_delegated(event):
        return _delegated(event, script, cmd_args)
    if "Records" in event:
        if _is_sqs_batch(event["Records"]):
            return _sqs_batch(event, script, cmd_args)
        records = _records(event["Records"], "Records")
        return ParsedEvent("records", records, event, script, cmd_args)
    if event.get("source") == "aws.s3" or "detail-type" in event:
        return ParsedEvent("eventbridge", _eventbridge(event), event, script, cmd_args)
    return None


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
            logger.warning("SQS message %s rejected: %s", item["messageId"], exc)
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
        check_depth(inner, "delegated event: 'event'")
    if not isinstance(inner, dict) or "Records" not in inner:
        raise EventError("delegated event: 'event' must hold the original storage event")
    records = tuple(
        replace(record, storage_provider=provider.strip())
        for record in _records(inner["Records"], "event.Records")
    )
    return ParsedEvent("delegated", records, event, script, cmd_args)


def _records(items: Any, where: str) -> tuple[Record, ...]:
    if not isinstance(items, list):
        raise EventError(f"{where} must be a list, got {kind_of(items)}")
    if not items:
        raise EventError(f"{where} is empty: there is nothing to process")
    records: list[Record] = []
    for index, item in enumerate(items):
        records.extend(_record(item, f"{where}[{index}]"))
    return tuple(records)


def _record(item: Any, where: str) -> tuple[Record, ...]:
    if not isinstance(item, dict):
        raise EventError(f"{where} must be an object, got {kind_of(item)}")
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
    check_depth(inner, where)
    if not isinstance(inner, dict):
        raise EventError(f"{where} must hold a JSON object")
    if inner.get("Event") == "s3:TestEvent":
        logger.info("Skipping the s3:TestEvent sent when a bucket notification is configured")
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
            size=object_size(obj.get("size")),
            etag=object_etag(obj.get("eTag")),
            event_time=utf8(str(item.get("eventTime") or ""), f"{where}.eventTime"),
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
    logger.info("Skipping the folder marker %s/%s: it is not a file", bucket, escape(key))
    return True


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
            size=object_size(obj.get("size")),
            etag=object_etag(obj.get("etag")),
            event_time=utf8(str(event.get("time") or ""), "EventBridge event: time"),
            raw=event,
        ),
    )


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
