"""Stopping on SIGTERM and SIGINT: how every command-line entry point ends when told to.

AWS Batch stops a job (terminated, or at its timeout) with SIGTERM, then SIGKILL; Kubernetes
deletes a pod the same way; a person at a terminal presses Ctrl-C (SIGINT).  Inside
``stopping()`` the first of these signals raises ``Stopped`` in the main thread, wherever it
is waiting (for the script, for a transfer, for a local Batch job).  ``Stopped`` is a
``BaseException``, so that no handler of errors takes it for one: it unwinds the pipeline
through its ``finally`` blocks, which kill the script's process group and remove the
invocation's work folder, as at the end of any run.  The entry point then ends with
``128 + signal`` (143 for SIGTERM, 130 for SIGINT), as a shell reports a process ended by
that signal.  A second signal while that clean-up runs is recorded and otherwise ignored,
so that it cannot cut the clean-up short or print a traceback; SIGKILL, which Batch sends
after its grace period, ends everything anyway.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "Stop", "Stopped", "stopping"]

# The signals that ask a process to end: Batch and Kubernetes send SIGTERM, a terminal SIGINT.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Stopped(BaseException):
    """A stop signal arrived: raised once, in the main thread, inside ``stopping()``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"stopped by {_name(self.signum)}"


class Stop:
    """What ``stopping()`` saw: the first stop signal (None while none came)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def stopped(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """The exit code of a process ended by the signal: ``128 + signum``."""
        if self.signum is None:
            raise ValueError("no stop signal has arrived")
        return 128 + self.signum

    @property
    def name(self) -> str:
        """The signal's name (``SIGTERM``), or an empty string while none came."""
        return "" if self.signum is None else _name(self.signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        raise Stopped(signum)


@contextmanager
def stopping() -> Iterator[Stop]:
    """Turn the first SIGTERM or SIGINT into ``Stopped`` while the block runs.

    ``Stopped`` leaving the block is swallowed: ``Stop.stopped`` says it came, and
    ``Stop.exit_code`` is the code to end with.  Once stopped, the handlers stay (further
    signals are ignored) since the process is ending; otherwise the previous handlers come
    back when the block ends.  Outside the main thread, where Python delivers no signal,
    nothing is installed.
    """
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous: dict[signal.Signals, _Handler] = {}
    for signum in STOP_SIGNALS:
        previous[signum] = signal.signal(signum, stop._handle)
    try:
        yield stop
    except Stopped:
        pass
    finally:
        if not stop.stopped:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
