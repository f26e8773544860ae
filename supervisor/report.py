"""The report of a local run (``python -m supervisor run``): JSON for tools, a few lines for
a person.

Both say what ran where (here, as in Lambda, or handed to a Batch job, with the job's exit
code and the end of its log), what was uploaded, and the response a caller would get from
the deployed function: built with ``supervisor.responses`` as the Lambda handler builds it
(200 with the script's output, 202 when the work went to Batch, 400 for an event the
function cannot read, 500 for an API request or an SQS batch that failed).  An asynchronous
invocation that fails gets no response: Lambda records a function error, retries the event
and then sends it to the function's on-failure destination; the report shows that error as
Lambda writes it (``errorType``, ``errorMessage``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from supervisor import responses
from supervisor.escaping import escape

if TYPE_CHECKING:
    from supervisor.context import InvocationContext
    from supervisor.runtime import Outcome

__all__ = ["Job", "Run", "function_error", "read_tail", "response"]

# Lines of a Batch job's log, and of a response's body, that a person is shown.
TAIL_LINES: Final = 20
BODY_LINES: Final = 5
# Uploaded objects listed by name before the rest are counted.
LISTED_UPLOADS: Final = 20
_REASONS: Final = {200: "OK", 202: "Accepted", 400: "Bad Request", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Job:
    """A local Batch job that ``run`` waited for: its exit code, its log file (None once
    removed with the temporary work folder) and the last lines of that log."""

    job_id: str
    exit_code: int
    log: Path | None
    log_tail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "exit_code": self.exit_code,
            "log": None if self.log is None else str(self.log),
            "log_tail": self.log_tail,
        }


def read_tail(path: Path, lines: int = TAIL_LINES, limit: int = 64 * 1024) -> str:
    """The last ``lines`` lines of the file (of its last ``limit`` bytes); empty if unreadable."""
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - limit))
            data = log.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "".join(text.splitlines(keepends=True)[-lines:])


def function_error(message: str) -> dict[str, Any]:
    """What Lambda records when the handler raises (an asynchronous invocation that failed)."""
    return {"errorType": "InvocationError", "errorMessage": message}


def response(outcome: Outcome, synchronous: bool, context: InvocationContext) -> dict[str, Any]:
    """The response the Lambda handler gives for ``outcome`` (``synchronous``: the event is
    an API request, whose caller waits for it), or the function error Lambda records."""
    given = responses.for_outcome(outcome, synchronous, context)
    return function_error(outcome.summary()) if given is None else given


@dataclass(frozen=True)
class Run:
    """What a local run did, for its report."""

    function: str
    mode: str
    storage_root: Path
    request_id: str
    status: str
    response: dict[str, Any]
    outcome: Outcome | None = None
    jobs: Sequence[Job] = ()

    def to_json(self) -> dict[str, Any]:
        records = [] if self.outcome is None else self.outcome.records
        return {
            "request_id": self.request_id,
            "status": self.status,
            "records": [
                {
                    "key": record.record.key or record.record.file_name,
                    "status": record.status,
                    "exit_code": record.exit_code,
                    "uploaded": list(record.uploaded),
                    "job_id": record.job_id,
                    "reason": record.reason,
                }
                for record in records
            ],
            "output": ""
            if self.outcome is None
            else self.outcome.output.decode("utf-8", errors="replace"),
            "jobs": [job.to_json() for job in self.jobs],
            "storage_root": str(self.storage_root),
            "response": self.response,
        }

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rejected") or any(job.exit_code for job in self.jobs)

    def last_line(self) -> str:
        """How the run ended, in one line."""
        if self.status != "delegated":
            return f"{self.status} (request {self.request_id})"
        failed = [job for job in self.jobs if job.exit_code != 0]
        if failed:
            codes = ", ".join(f"{job.job_id} exited {job.exit_code}" for job in failed)
            return f"failed on Batch: {codes} (request {self.request_id})"
        return f"succeeded on Batch (request {self.request_id})"

    def lines(self) -> list[str]:
        """The report for a person: what ran where, what was uploaded, the response."""
        lines = [f"function {self.function} ({self.mode} mode), buckets in {self.storage_root}"]
        jobs = {job.job_id: job for job in self.jobs}
        for record in () if self.outcome is None else self.outcome.records:
            what = escape(record.record.key or record.record.file_name or "event")
            reason = escape(record.reason)
            if record.status == "succeeded":
                count = len(record.uploaded)
                lines.append(
                    f"{what}: ran here (as in Lambda), exit code 0, {count} file(s) uploaded"
                )
                lines += self._uploads(record.uploaded)
            elif record.status == "failed":
                lines.append(f"{what}: failed ({reason})")
            else:
                lines.append(f"{what}: handed to Batch job {record.job_id} ({reason})")
                job = jobs.get(record.job_id or "")
                if job is not None:
                    lines += self._job(job)
        lines += self._response()
        lines.append(self.last_line())
        return lines

    def _uploads(self, uris: Sequence[str]) -> list[str]:
        shown = [f"  uploaded {escape(self._object(uri))}" for uri in uris[:LISTED_UPLOADS]]
        if len(uris) > LISTED_UPLOADS:
            shown.append(f"  ... and {len(uris) - LISTED_UPLOADS} more")
        return shown

    def _object(self, uri: str) -> str:
        """``bucket/key`` for an object under the storage root, else the URI."""
        try:
            return Path(uri).relative_to(self.storage_root).as_posix()
        except ValueError:
            return uri

    def _job(self, job: Job) -> list[str]:
        lines = [f"  Batch job {job.job_id} (run here) exited {job.exit_code}"]
        if job.exit_code != 0 and job.log_tail:
            lines.append("  the end of its log:")
            lines += [f"    {escape(line)}" for line in job.log_tail.splitlines()]
        if job.log is not None:
            lines.append(f"  log: {job.log}")
        return lines

    def _response(self) -> list[str]:
        if "statusCode" not in self.response:
            message = escape(str(self.response.get("errorMessage", "")))
            return [
                f"response: function error ({self.response.get('errorType')}): {message}",
                "  (Lambda retries an asynchronous event, then sends it to the function's "
                "on-failure destination)",
            ]
        status = int(self.response["statusCode"])
        body = base64.b64decode(self.response.get("body") or "")
        size = f"{len(body)} byte(s)"
        lines = [f"response: {status} {_REASONS.get(status, '')}, body {size}".replace(" ,", ",")]
        text = body.decode("utf-8", errors="replace").splitlines()
        lines += [f"  | {escape(line)}" for line in text[:BODY_LINES]]
        if len(text) > BODY_LINES:
            lines.append(f"  | ... ({len(text) - BODY_LINES} more line(s))")
        failures = self.response.get("batchItemFailures")
        if failures:
            ids = " ".join(str(item["itemIdentifier"]) for item in failures)
            lines.append(f"  SQS messages to be delivered again: {ids}")
        return lines
