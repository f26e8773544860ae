"""What became of an invocation: an outcome per record, and their sum.

``RecordOutcome`` says what became of one record (done here, failed here, or handed to
Batch) and ``Outcome`` of all the records of an event; the runtime returns one, and the
entry points turn it into a Lambda response, a report or an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from supervisor.escaping import escape

if TYPE_CHECKING:
    from supervisor.events import Record

__all__ = ["Outcome", "RecordOutcome", "Status"]

Status = Literal["succeeded", "failed", "delegated"]


@dataclass(frozen=True)
class RecordOutcome:
    """What became of one record: done here, failed here, or handed to Batch."""

    status: Status
    record: Record
    output: bytes = b""
    exit_code: int | None = None
    timed_out: bool = False
    uploaded: tuple[str, ...] = ()
    job_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    """What became of an invocation's records; for an SQS batch, its messages' ids and the
    messages that could not be read (id, reason), which count as failed."""

    request_id: str
    records: tuple[RecordOutcome, ...] = field(default_factory=tuple)
    message_ids: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()

    @property
    def status(self) -> Status:
        statuses = {record.status for record in self.records}
        if "failed" in statuses or self.rejected:
            return "failed"
        return "delegated" if "delegated" in statuses else "succeeded"

    @property
    def failed_messages(self) -> tuple[str, ...]:
        """The ids of the SQS messages with a record that failed, or that were rejected."""
        failed = {message for message, _ in self.rejected}
        failed.update(
            record.record.message_id
            for record in self.records
            if record.status == "failed" and record.record.message_id is not None
        )
        return tuple(message for message in self.message_ids if message in failed)

    @property
    def output(self) -> bytes:
        return b"".join(record.output for record in self.records)

    @property
    def job_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.job_id for r in self.records if r.job_id is not None))

    @property
    def uploaded(self) -> tuple[str, ...]:
        return tuple(uri for record in self.records for uri in record.uploaded)

    @property
    def exit_code(self) -> int:
        """The first failing record's exit code (1 when it has none), else 0."""
        for record in self.records:
            if record.status == "failed":
                code = record.exit_code
                if code is None or code == 0:
                    return 1
                return code if code > 0 else 128 - code
        return 1 if self.rejected else 0

    def summary(self) -> str:
        """A one-paragraph account for a person: what ran where and what came out, a line
        per record (a key's or a reason's control characters escaped)."""
        lines = []
        for record in self.records:
            what = escape(record.record.key or record.record.file_name or "event")
            reason = escape(record.reason)
            if record.status == "delegated":
                lines.append(f"{what}: delegated to Batch job {record.job_id} ({reason})")
            elif record.status == "failed":
                lines.append(f"{what}: failed ({reason})")
            else:
                lines.append(f"{what}: done, {len(record.uploaded)} file(s) uploaded")
        lines += [f"SQS message {message}: rejected ({why})" for message, why in self.rejected]
        return "\n".join(lines)
