"""The timeout watchdog: owns the deadline of one invocation and enforces it.

The script may run until ``kill_at``, the deadline less the reserve; the reserve is left to
the supervisor (to submit a Batch job, to answer: ``supervisor.deadline`` says how it is
spent).  At ``kill_at`` the whole process group of the script gets SIGTERM, then SIGKILL
after a short grace, so that no grandchild outlives the invocation.  Every wait here is
timed by the deadline's clock.  The same group kill cleans up the background processes a
script leaves behind when it exits normally, so that a warm container starts clean.

A process that left the group (``setsid``, a daemon) is out of reach of the group kill:
``supervisor.reaper`` finds it among the supervisor process's children (it is their
subreaper) and kills it when the run ends.

The wait for the script is a blocking wait with a timeout (a pidfd on Linux, else
``Popen.wait``), not a polling loop, so the kill lands within a millisecond or so of
``kill_at`` and a script that exits is noticed at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import time

from supervisor.deadline import KILL_GRACE, KILL_WAIT, Clock, Deadline
from supervisor.reaper import open_pidfd, poll_until, stat_fields

__all__ = ["Watchdog", "kill_group"]

logger = logging.getLogger(__name__)


class Watchdog:
    """The deadline of one invocation, and the enforcement of it on a script's process group.

    ``deadline`` may be ``Deadline.none()`` for no limit; ``reserve`` seconds before it the
    script is killed (``kill``, a deadline of the same clock).  ``killed_at`` is the
    clock's instant at which SIGTERM was sent by the last ``supervise`` call, or ``None``
    when the script ended on its own.
    """

    def __init__(self, deadline: Deadline, reserve: float, *, grace: float = KILL_GRACE) -> None:
        if reserve < 0:
            raise ValueError(f"reserve must not be negative, got {reserve!r}")
        if grace < 0:
            raise ValueError(f"grace must not be negative, got {grace!r}")
        self.deadline = deadline
        self.reserve = reserve
        self.grace = grace
        self.kill = deadline.less(reserve)
        self.killed_at: float | None = None

    @property
    def clock(self) -> Clock:
        return self.deadline.clock

    @property
    def kill_at(self) -> float | None:
        """The instant at which the script is killed, or ``None`` without a deadline."""
        return self.kill.at

    def remaining(self) -> float | None:
        """Seconds left until ``kill_at`` (never negative), or ``None`` without a deadline."""
        return self.kill.remaining()

    def expired(self) -> bool:
        """Whether ``kill_at`` has been reached."""
        return self.kill.expired()

    def supervise(self, process: subprocess.Popen[bytes]) -> bool:
        """Wait for ``process`` to exit, killing its process group at ``kill_at``.

        ``process`` must lead its own process group (``start_new_session=True``).
        Returns True when the script was killed because it ran out of time.  The direct
        child is reaped in either case; what is left of its group after a normal exit is
        the caller's to clean up with ``kill_group``.
        """
        self.killed_at = None
        kill_at = self.kill.at
        if kill_at is None:
            process.wait()
            return False
        while True:
            left = kill_at - self.clock()
            if left <= 0:
                break
            if _wait_exit(process, left):
                return False
        if process.poll() is not None:
            return False
        self.killed_at = self.clock()
        logger.warning(
            "script out of time: killing process group %d (%+.1f ms from kill_at, "
            "%.3f s before the deadline)",
            process.pid,
            (self.killed_at - kill_at) * 1000.0,
            kill_at + self.reserve - self.killed_at,
        )
        _kill_group(process.pid, self.grace, process, self.clock)
        return True


def kill_group(
    pgid: int,
    grace: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    clock: Clock = time.monotonic,
) -> None:
    """Terminate every process of group ``pgid``: SIGTERM, up to ``grace`` s, then SIGKILL.

    Pass ``process`` (the group leader's ``Popen``) so that it is reaped while waiting:
    an unreaped zombie would keep the group alive.  Returns at once when the group is
    already empty, as after a script that left nothing behind.  ``clock`` times the waits
    (the deadline's clock).
    """
    if _kill_group(pgid, grace, process, clock):
        logger.info("killed the processes left in process group %d", pgid)


def _kill_group(
    pgid: int, grace: float, process: subprocess.Popen[bytes] | None, clock: Clock
) -> bool:
    """The group kill; True when a live process was found and signalled."""
    _reap(pgid, process)
    if not _group_alive(pgid):
        return False
    _signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone(pgid, grace, process, clock):
        return True
    logger.warning(
        "process group %d still alive %.2f s after SIGTERM: sending SIGKILL", pgid, grace
    )
    _signal_group(pgid, signal.SIGKILL)
    if not _wait_group_gone(pgid, KILL_WAIT, process, clock):
        logger.error("process group %d still alive %.1f s after SIGKILL", pgid, KILL_WAIT)
    return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _wait_group_gone(
    pgid: int, timeout: float, process: subprocess.Popen[bytes] | None, clock: Clock
) -> bool:
    """Wait up to ``timeout`` s of ``clock`` for the group to have no live process; True when
    it has none."""
    deadline = Deadline.after(timeout, clock)
    if process is not None and process.returncode is None:
        _wait_exit(process, deadline.cap(timeout))

    def gone() -> bool:
        _reap(pgid, process)
        return not _group_alive(pgid)

    return poll_until(gone, deadline.cap(timeout), clock)


def _reap(pgid: int, process: subprocess.Popen[bytes] | None) -> None:
    """Reap the zombies of the group that are ours.

    The leader is reaped through its ``Popen`` so its exit status is kept.  Orphaned
    grandchildren are our children when we are PID 1 or a subreaper (``supervisor.reaper``
    makes the supervisor process one); they are reaped with ``waitpid(-pgid)``, but only
    once the leader is reaped, never stealing its status.
    """
    if process is None or process.poll() is None:
        return
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _group_alive(pgid: int) -> bool:
    """Whether the group has a process that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    """Look in /proc for a non-zombie member of the group (zombies still count for killpg).

    Where /proc is missing, or shows no member at all while killpg found one, the group
    is taken as alive.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    seen = False
    for name in entries:
        if not name.isdigit():
            continue
        fields = stat_fields(name)
        if fields is None or len(fields) < 3 or int(fields[2]) != pgid:
            continue
        seen = True
        if fields[0] not in (b"Z", b"X"):
            return True
    return not seen


def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``process`` to exit and reap it; True when it has."""
    if process.poll() is not None:
        return True
    pidfd = open_pidfd(process.pid)
    if pidfd is None:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(0.0, timeout) * 1000.0):
            return process.poll() is not None
    finally:
        os.close(pidfd)
    process.wait()
    return True
