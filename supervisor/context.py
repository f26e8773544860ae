"""The invocation context: who asked, under which request id, and until when.

Built from a Lambda context object, from the ``CONTEXT`` variable of a delegated Batch
job, or for a local run.  ``deadline`` is a ``supervisor.deadline.Deadline`` (with no
instant when the invocation has no time limit); every step of the invocation works
against it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from supervisor.deadline import Deadline

__all__ = ["InvocationContext", "LambdaContextLike"]


class LambdaContextLike(Protocol):
    """The part of the Lambda context object the supervisor reads."""

    aws_request_id: str
    function_name: str
    memory_limit_in_mb: int | str
    log_group_name: str
    log_stream_name: str

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class InvocationContext:
    request_id: str
    function_name: str
    memory_limit_in_mb: int = 0
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline: Deadline = field(default_factory=Deadline.none)

    @classmethod
    def from_lambda(
        cls, context: LambdaContextLike, clock: Callable[[], float] = time.monotonic
    ) -> InvocationContext:
        remaining = context.get_remaining_time_in_millis() / 1000.0
        return cls(
            request_id=str(context.aws_request_id),
            function_name=str(context.function_name),
            memory_limit_in_mb=_int(context.memory_limit_in_mb),
            log_group_name=str(context.log_group_name),
            log_stream_name=str(context.log_stream_name),
            deadline=Deadline.after(remaining, clock),
        )

    @classmethod
    def from_json(
        cls,
        text: str,
        *,
        function_name: str,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> InvocationContext:
        """The ``CONTEXT`` a delegating Lambda put in the job (missing fields get defaults)."""
        try:
            data: Any = json.loads(text) if text.strip() else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(
            request_id=str(data.get("aws_request_id") or uuid.uuid4()),
            function_name=str(data.get("function_name") or function_name),
            memory_limit_in_mb=_int(data.get("memory_limit_in_mb", 0)),
            log_group_name=str(data.get("log_group_name") or ""),
            log_stream_name=str(data.get("log_stream_name") or ""),
            deadline=Deadline.after(timeout, clock),
        )

    @classmethod
    def local(
        cls,
        function_name: str,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> InvocationContext:
        return cls(
            request_id=request_id or str(uuid.uuid4()),
            function_name=function_name,
            deadline=Deadline.after(timeout, clock),
        )

    def to_json(self) -> str:
        """The ``CONTEXT`` variable of a delegated job, as the system this replaces wrote it."""
        return json.dumps(
            {
                "function_name": self.function_name,
                "memory_limit_in_mb": self.memory_limit_in_mb,
                "aws_request_id": self.request_id,
                "log_group_name": self.log_group_name,
                "log_stream_name": self.log_stream_name,
            },
            separators=(",", ":"),
        )


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
