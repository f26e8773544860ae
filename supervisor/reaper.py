"""The reaper: nothing a script starts outlives its script run, however it detaches.

The supervisor process makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``)
before its first script starts.  From then on, every process a script leaves behind whose
parent has died is re-parented by the kernel to the supervisor process instead of init:
a daemon that called ``setsid``, double-forked, changed its process group, cleared its
environment or ignores SIGTERM can move out of the script's process group, but not out
of the supervisor's tree.  When a script run ends (after the watchdog killed its process
group), the supervisor's children are listed; the leftovers are those that

- were not its children when the run began (the snapshot keeps what the host process
  started itself, such as a test server),
- are not in the supervisor's own session (a script runs in a new session, and a process
  can create a session but never join one, so nothing a script starts can be in it; what
  the supervisor starts in its session, such as a local Batch job, is never taken), and
- are not the script of a run still going on.

Each is killed with SIGKILL (a stopped process dies too) and reaped by its pid, never with
``waitpid(-1)``, which would take the exit status of a ``subprocess.Popen`` child; then the
children are listed again, since a leftover may fork while it dies and its children come
back here, until none is left or ``timeout`` has passed.

Script runs that overlap in one process (the local workflow runner runs functions in
threads) share one snapshot, taken when the first of them started; their leftovers are
killed when the last of them ends.

Where the kernel has no subreaper (not Linux), only the process group kill holds.  What a
script hands to a process outside its tree (a system service; none exists in Lambda), and
what is left when the supervisor process itself is killed with SIGKILL, is out of reach.
``PR_SET_PDEATHSIG`` is no defence here: a process may reset it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.hardening import prctl

__all__ = ["Reaper", "ScriptWatch", "open_pidfd", "poll_until", "process_reaper", "stat_fields"]

logger = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_PROC = Path("/proc")
_POLL_FIRST = 0.001
_POLL_MAX = 0.02

# A process is told apart from a later one with the same pid by its start time.
_Key = tuple[int, int]


@dataclass
class ScriptWatch:
    """One script run seen by the reaper: ``track`` the pid of each process it starts."""

    label: str
    pids: set[int] = field(default_factory=set)

    def track(self, pid: int) -> None:
        self.pids.add(pid)


class Reaper:
    """The subreaper of this process and the clean-up after each script run.

    ``proc`` is the proc file system; ``send`` sends a signal to a pid (``os.kill``);
    ``timeout`` bounds the clean-up after a run.  There is one per process, since being a
    subreaper is a property of the process: ``process_reaper()``.
    """

    def __init__(
        self,
        *,
        proc: Path = _PROC,
        timeout: float = 5.0,
        send: Callable[[int, int], None] = os.kill,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._proc = proc
        self._timeout = timeout
        self._send = send
        self._clock = clock
        self._lock = threading.Lock()
        self._enabled: bool | None = None
        self._active: list[ScriptWatch] = []
        self._labels: list[str] = []
        self._snapshot: set[_Key] = set()

    def enable(self) -> bool:
        """Make this process a child subreaper (once); whether it is one."""
        with self._lock:
            return self._enable()

    def begin(self, label: str) -> ScriptWatch:
        """A script run is about to start: the first of overlapping runs takes the snapshot."""
        with self._lock:
            watch = ScriptWatch(label)
            if self._enable() and not self._active:
                self._snapshot = set(self._children())
                self._labels = []
            self._active.append(watch)
            self._labels.append(label)
            return watch

    def end(self, watch: ScriptWatch) -> int:
        """The run of ``watch`` is over (its process group killed): when it is the last of
        overlapping runs, kill and reap what they left behind; how many were killed."""
        with self._lock:
            with contextlib.suppress(ValueError):
                self._active.remove(watch)
            if self._active or not self._enabled:
                return 0
            return self._kill_orphans(self._labels or [watch.label])

    def reap(self, label: str) -> int:
        """Kill and reap the leftovers now, when no script run is going on (after a local
        Batch job was killed, its orphans come here); how many were killed."""
        with self._lock:
            if self._active or not self._enable():
                return 0
            return self._kill_orphans([label])

    def running(self) -> list[int]:
        """The pids tracked by the runs going on: the leaders of their process groups."""
        with self._lock:
            return sorted({pid for watch in self._active for pid in watch.pids})

    # -- internals (the lock held) -------------------------------------------------------

    def _enable(self) -> bool:
        if self._enabled is None:
            self._enabled = _set_child_subreaper()
            if self._enabled:
                self._snapshot = set(self._children())
        return self._enabled

    def _kill_orphans(self, labels: list[str]) -> int:
        end = self._clock() + self._timeout
        own_session = os.getsid(0)
        killed: set[_Key] = set()
        while True:
            orphans = [
                key
                for key, session in self._children_with_sessions()
                if key not in self._snapshot and session != own_session
            ]
            if not orphans:
                break
            for pid, _ in orphans:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    self._send(pid, signal.SIGKILL)
            killed.update(orphans)
            if not all(_reaped(pid, end - self._clock()) for pid, _ in orphans):
                logger.error(
                    "processes %s left behind by %s still alive %.1f s after SIGKILL",
                    sorted(pid for pid, _ in orphans if _exists(self._proc, pid)),
                    _names(labels),
                    self._timeout,
                )
                break
        if killed:
            logger.warning(
                "killed %d process(es) left behind by %s",
                len(killed),
                _names(labels),
            )
        return len(killed)

    def _children(self) -> Iterable[_Key]:
        return (key for key, _ in self._children_with_sessions())

    def _children_with_sessions(self) -> list[tuple[_Key, int]]:
        """This process's children as (pid, start time) and their session ids."""
        tracked = {pid for watch in self._active for pid in watch.pids}
        found = []
        for pid in _child_pids(self._proc):
            if pid in tracked:
                continue
            stat = _stat(self._proc, pid)
            if stat is not None:
                session, started = stat
                found.append(((pid, started), session))
        return found


def _names(labels: list[str]) -> str:
    return ", ".join(dict.fromkeys(labels))


def _set_child_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        logger.debug("no child subreaper on %s: only process groups are killed", sys.platform)
        return False
    try:
        prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except OSError as exc:
        logger.debug("cannot become a child subreaper (%s): only process groups are killed", exc)
        return False
    return True


def _child_pids(proc: Path) -> list[int]:
    """The children of this process: ``/proc/self/task/*/children`` (an orphan goes to
    one of the threads), else a scan of every process's parent pid."""
    own = os.getpid()
    try:
        tasks = os.listdir(proc / str(own) / "task")
    except OSError:
        tasks = []
    pids: list[int] = []
    for task in tasks:
        try:
            text = (proc / str(own) / "task" / task / "children").read_bytes()
        except FileNotFoundError:
            if (proc / str(own) / "task" / task).exists():
                return _scan_children(proc, own)
            continue
        except OSError:
            continue
        pids.extend(int(pid) for pid in text.split())
    return pids if tasks else _scan_children(proc, own)


def _scan_children(proc: Path, parent: int) -> list[int]:
    try:
        names = os.listdir(proc)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.isdigit():
            continue
        fields = stat_fields(name, proc)
        if fields is not None and len(fields) > 1 and fields[1] == str(parent).encode():
            found.append(int(name))
    return found


def stat_fields(pid: int | str, proc: Path = _PROC) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (the state first), or None
    when the process is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def _stat(proc: Path, pid: int) -> tuple[int, int] | None:
    """The session id and the start time of ``pid``."""
    fields = stat_fields(pid, proc)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[3]), int(fields[19])


def _exists(proc: Path, pid: int) -> bool:
    return (proc / str(pid)).exists()


def _reaped(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for child ``pid`` to end, and reap it; whether it has."""
    pidfd = open_pidfd(pid)
    if pidfd is not None:
        try:
            select.select([pidfd], [], [], max(0.0, timeout))
        finally:
            os.close(pidfd)
        return _reap(pid)
    return poll_until(lambda: _reap(pid), timeout)


def poll_until(
    done: Callable[[], bool], timeout: float, clock: Callable[[], float] = time.monotonic
) -> bool:
    """Call ``done`` until it is true, sleeping 1 ms then twice as long each time (20 ms at
    most), for up to ``timeout`` s of ``clock``; whether it became true (it is called at
    least once)."""
    end = clock() + timeout
    delay = _POLL_FIRST
    while not done():
        left = end - clock()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, _POLL_MAX)
    return True


def _reap(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return reaped == pid


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it has ended), or None where the kernel or Python
    has none, or the process is gone."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:
        return None
    return fd


_PROCESS_REAPER: Reaper | None = None
_PROCESS_REAPER_LOCK = threading.Lock()


def process_reaper() -> Reaper:
    """The reaper of this process (built at the first call, made a subreaper at the first
    script run)."""
    global _PROCESS_REAPER
    with _PROCESS_REAPER_LOCK:
        if _PROCESS_REAPER is None:
            _PROCESS_REAPER = Reaper()
        return _PROCESS_REAPER
