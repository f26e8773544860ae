"""The log files of a workflow run's invocations: each log record goes to the file of the
invocation running in its thread, with secrets redacted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from supervisor import logs

__all__ = ["InvocationLogs"]


class InvocationLogs(logging.Handler):
    """Sends each log record to the log file of the invocation running in its thread."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__(logging.DEBUG)
        self._local = threading.local()
        self.setFormatter(logs.line_formatter())
        self.addFilter(logs.RedactingFilter(secrets))

    @contextmanager
    def capture(self, path: Path) -> Iterator[None]:
        with path.open("a", encoding="utf-8") as stream:
            self._local.stream = stream
            try:
                yield
            finally:
                self._local.stream = None

    def emit(self, record: logging.LogRecord) -> None:
        stream: IO[str] | None = getattr(self._local, "stream", None)
        if stream is None:
            return
        try:
            stream.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)
