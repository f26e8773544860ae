"""A daemon that a hostile script leaves behind, run with the system's python3.

``escape_daemon.py TAG STATE WORK_ROOT OWN_WORK MODE``: it escapes its script's process
group in one of several ways (MODE), writes ``STATE/ready-<pid>`` with its pid, session and
process group once it has, and then, until it is killed or 120 s have passed, looks for the
folders of other invocations under WORK_ROOT: it copies every file it finds there to
``STATE/loot`` and plants a file in every output folder.  It takes only arguments, never
its environment, so that ``env -i`` cannot take anything from it.  TAG is on its command
line, so that the test can tell its processes from any other.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

LIFETIME = 120.0
FORKS = 200


def ready(state: Path, note: str = "") -> None:
    pid = os.getpid()
    text = f"{pid} {os.getsid(0)} {os.getpgid(0)} {note}\n"
    partial = state / f".ready-{pid}"
    partial.write_text(text)
    partial.rename(state / f"ready-{pid}")


def record(state: Path) -> None:
    with (state / "pids").open("a") as pids:
        pids.write(f"{os.getpid()}\n")


def attack(state: Path, work_root: Path, own: Path) -> None:
    loot = state / "loot"
    end = time.monotonic() + LIFETIME
    while time.monotonic() < end:
        for folder, _, files in os.walk(work_root):
            path = Path(folder)
            if path == own or own in path.parents:
                continue
            for name in files:
                with contextlib.suppress(OSError):
                    shutil.copy(path / name, loot / f"{os.getpid()}-{name}")
            if path.name == "output":
                with contextlib.suppress(OSError):
                    (path / f"planted-{os.getpid()}.txt").write_text("planted by a daemon\n")
        time.sleep(0.01)


def fork_children(state: Path, work_root: Path, own: Path) -> None:
    """Keep forking children that leave the session, up to FORKS processes in all."""
    for number in range(FORKS):
        pid = os.fork()
        if pid == 0:
            os.setsid()
            record(state)
            attack(state, work_root, own)
            os._exit(0)
        if number == 10:
            ready(state, "forking")


def main() -> None:
    _, _tag, state_arg, root_arg, own_arg, mode = sys.argv
    state, work_root, own = Path(state_arg), Path(root_arg), Path(own_arg)
    (state / "loot").mkdir(exist_ok=True)
    record(state)
    if mode == "python-setsid-execve":
        if os.fork() != 0:
            os._exit(0)
        os.setsid()
        os.execve(sys.executable, [sys.executable, *sys.argv[:5], "plain"], {})  # noqa: S606
    if mode == "setpgid":
        os.setpgid(0, 0)
    if mode == "ignores-signals":
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
    if mode == "closes-output":
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    if mode == "fork-loop":
        fork_children(state, work_root, own)
        attack(state, work_root, own)
        return
    ready(state, mode)
    if mode == "stopped":
        os.kill(os.getpid(), signal.SIGSTOP)
    attack(state, work_root, own)


if __name__ == "__main__":
    main()
