"""The script's output: read from its pipe, copied to its log file and logged.

The log file gets every byte as read.  The ``supervisor.script`` logger gets it a block of
lines per record (``supervisor.logs`` writes each line with its prefix).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import threading
from typing import BinaryIO

__all__ = ["OutputPump", "script_logger"]

logger = logging.getLogger(__name__)
script_logger = logging.getLogger("supervisor.script")

# A block of lines per record: a record per line made 100 MB of output cost a minute.  A
# block is at most _BLOCK_BYTES and _BLOCK_LINES, so that a record, escaped (up to 4 characters a
# byte) and prefixed, stays under the 256 KiB of a CloudWatch Logs event.
_BLOCK_BYTES = 48 * 1024
_BLOCK_LINES = 1024
# A longer line is logged in pieces of this size (the log file has it whole).
_MAX_LINE = _BLOCK_BYTES
_READ_SIZE = 1024 * 1024
# A larger pipe than the 64 KiB default lets the script write on while a block is logged.
_PIPE_SIZE = 1024 * 1024
_PUMP_POLL_MS = 200


class OutputPump:
    """Copies the script's output from a pipe to the log file and to the script logger.

    The log file gets every byte as read.  The logger gets blocks of whole lines (a line's
    ending removed, an unfinished last line logged once the output ends), one
    record per block, the text decoded as UTF-8 with invalid bytes replaced.
    """

    def __init__(self, fd: int, log_file: BinaryIO) -> None:
        self._fd = fd
        self._log_file = log_file
        self._stopped = threading.Event()
        self._pending = b""
        self._logging = script_logger.isEnabledFor(logging.INFO)
        with contextlib.suppress(OSError):  # over the system's limit: the default size
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        try:
            while not self._stopped.is_set():
                if not poller.poll(_PUMP_POLL_MS):
                    continue
                chunk = os.read(self._fd, _READ_SIZE)
                if not chunk:
                    break
                self._log_file.write(chunk)
                if self._logging:
                    self._emit(chunk)
            if self._pending:
                self._log_block(self._pending)
        except OSError:
            logger.exception("reading the script's output failed")
        finally:
            os.close(self._fd)
            self._log_file.close()

    def _emit(self, chunk: bytes) -> None:
        data = self._pending + chunk if self._pending else chunk
        view = memoryview(data)  # blocks are decoded from it, not copied out first
        start, end = 0, data.rfind(b"\n") + 1
        while start < end:
            stop = min(end, start + _BLOCK_BYTES)
            if stop < end:
                stop = data.rfind(b"\n", start, stop) + 1 or stop
            if data.count(b"\n", start, stop) > _BLOCK_LINES:
                stop -= len(data[start:stop].split(b"\n", _BLOCK_LINES)[-1])
            self._log_block(view[start:stop])
            start = stop
        while len(data) - start >= _MAX_LINE:
            self._log_block(view[start : start + _MAX_LINE])
            start += _MAX_LINE
        self._pending = data[start:]

    @staticmethod
    def _log_block(block: bytes | memoryview) -> None:
        """Log ``block`` without its last line's ending."""
        if block[-1:] == b"\n":
            block = block[:-2] if block[-2:-1] == b"\r" else block[:-1]
        text = str(block, "utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        script_logger.info("%s", text)
