"""The records of an event, and the event that carries one record alone.

A ``Record`` is one unit of work: an object in a bucket, a request body, or a whole direct
invocation.  ``ParsedEvent`` is what ``supervisor.events.parse`` returns: the records with
what the caller passed at the top level.  ``record_event`` is the event a record's script
sees (``EVENT``), and ``event_for`` the event that hands one record on to Batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CALLER_KEYS", "ParsedEvent", "Record", "RecordSource", "event_for", "record_event"]

RecordSource = Literal["s3", "minio", "api", "direct"]

# Keys of a direct invocation that are instructions to the supervisor, not input data.
CALLER_KEYS = ("script", "cmd_args")


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
