"""The exceptions of the supervisor, all under one tree.

    SupervisorError
     ├── ConfigError        the function definition is missing or invalid (fails at start)
     ├── EventError         the event cannot be understood (the caller's fault: a 4xx)
     ├── StagingError       an object could not be downloaded or uploaded, or a name is unsafe
     │    ├── UnsafeKeyError    a key that would write outside the input folder
     │    └── NoSpaceError      an input does not fit in the free space of the work folder
     ├── DeadlineError      the deadline passed before the step could finish
     ├── ExecutionError     the script could not be started at all
     ├── DelegationError    the Batch job could not be submitted
     └── InvocationError    the invocation could neither finish nor be delegated

Every message is one line: ``str(error)`` escapes the control characters that a key, a
body, a file name or the script's output may have brought into it (``supervisor.escaping``),
so that it cannot forge a line of a log or of a response.  A ``ConfigError`` keeps the
newlines between the lines of its list of invalid keys.

Outcomes of a script (a non-zero exit, a timeout) are not exceptions: they are
``ExecutionResult`` values that the runtime decides upon.  Exceptions are mapped to
a response or an exit code in one place: the Lambda handler and the CLI entry point.
"""

from __future__ import annotations

from collections.abc import Sequence

from supervisor.escaping import escape, escape_lines

__all__ = [
    "ConfigError",
    "DeadlineError",
    "DelegationError",
    "EventError",
    "ExecutionError",
    "InvocationError",
    "NoSpaceError",
    "StagingError",
    "SupervisorError",
    "UnsafeKeyError",
]


class SupervisorError(Exception):
    """Base of every error the supervisor raises on purpose."""

    def __str__(self) -> str:
        return escape(super().__str__())


class ConfigError(SupervisorError):
    """The function definition is missing or invalid."""

    def __str__(self) -> str:
        return escape_lines(Exception.__str__(self))


class EventError(SupervisorError):
    """The event is malformed or of an unknown shape."""


class StagingError(SupervisorError):
    """A transfer from or to a storage provider failed.

    ``uploaded`` holds the URIs of the objects an upload stored before it failed.
    """

    def __init__(
        self, message: str, *, bucket: str = "", key: str = "", uploaded: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.bucket = bucket
        self.key = key
        self.uploaded = tuple(uploaded)


class UnsafeKeyError(StagingError):
    """An object key that cannot be turned into a file name inside the work folder."""


class NoSpaceError(StagingError):
    """An input larger than the free space of its folder's filesystem (known from its size
    before the download, or from ENOSPC during it).  ``size`` is ``None`` when unknown."""

    def __init__(
        self,
        message: str,
        *,
        bucket: str = "",
        key: str = "",
        size: int | None = None,
        free: int | None = None,
    ) -> None:
        super().__init__(message, bucket=bucket, key=key)
        self.size = size
        self.free = free


class DeadlineError(SupervisorError):
    """The deadline passed before a step (stage-in, pull, upload) could finish.

    ``uploaded`` holds the URIs of the objects an upload stored before the deadline.
    """

    def __init__(self, message: str, *, uploaded: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.uploaded = tuple(uploaded)


class ExecutionError(SupervisorError):
    """The user script could not be started."""


class DelegationError(SupervisorError):
    """The job could not be handed to AWS Batch."""


class InvocationError(SupervisorError):
    """Raised to Lambda so that its retries and failure destination keep the event."""
