"""The reaper with real scripts: what it spares, overlapping runs, and a process it cannot kill.

The escape techniques themselves, as an unprivileged user across warm invocations, are in
``test_escapes.py``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from supervisor.deadline import Deadline
from supervisor.execution import ExecutionResult, ProcessExecutor, ScriptRun
from supervisor.reaper import Reaper, _child_pids, _scan_children
from supervisor.watchdog import Watchdog

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux subreaper")

# Starts a daemon out of its session (its output elsewhere), waits until it has left, exits.
LEAVES_A_DAEMON = """\
setsid /bin/sh -c 'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 60' "$OUT/daemon.pid" \
  > /dev/null 2>&1 &
until [ -e "$OUT/daemon.pid" ]; do sleep 0.01; done
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def wait_for(path: Path) -> None:
    """Wait until ``path`` exists (the scripts say so), at most 60 s."""
    event = threading.Event()
    for _ in range(6000):
        if path.exists():
            return
        event.wait(0.01)
    raise AssertionError(f"{path} never appeared")


def run_script(reaper: Reaper, folder: Path, body: str) -> ExecutionResult:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "script.sh"
    script.write_text(body)
    environment = {"PATH": os.environ["PATH"], "OUT": str(folder)}
    return ProcessExecutor(reaper=reaper).run(
        ScriptRun(script, environment, folder, folder / "script.log"),
        Watchdog(Deadline.none(), 0.0),
    )


def test_the_daemon_of_a_run_dies_when_the_last_overlapping_run_ends(tmp_path: Path) -> None:
    reaper = Reaper()
    waiting = tmp_path / "waiting"
    results: list[ExecutionResult] = []
    other = threading.Thread(
        target=lambda: results.append(
            run_script(
                reaper,
                waiting,
                'touch "$OUT/started"\nuntil [ -e "$OUT/release" ]; do sleep 0.01; done\n',
            )
        )
    )
    other.start()
    try:
        wait_for(waiting / "started")

        first = run_script(reaper, tmp_path / "first", LEAVES_A_DAEMON)
        daemon = int((tmp_path / "first" / "daemon.pid").read_text())

        assert first.succeeded
        assert alive(daemon), "killed only when the overlapping run ends"
    finally:
        (waiting / "release").touch()
        other.join(60)
    assert results[0].succeeded
    assert not alive(daemon)


def test_what_the_host_started_is_spared(tmp_path: Path) -> None:
    """A server the host started before in a session of its own, and a process it starts
    during the run in its own session (as a local Batch job is), live on."""
    reaper = Reaper()
    server = subprocess.Popen(["sleep", "60"], start_new_session=True)
    job: list[subprocess.Popen[bytes]] = []
    body = 'touch "$OUT/started"\nuntil [ -e "$OUT/release" ]; do sleep 0.01; done\n' + (
        LEAVES_A_DAEMON
    )
    thread = threading.Thread(target=run_script, args=(reaper, tmp_path, body))
    try:
        reaper.enable()
        thread.start()
        wait_for(tmp_path / "started")
        job.append(subprocess.Popen(["sleep", "60"]))
        (tmp_path / "release").touch()
        thread.join(60)

        assert not alive(int((tmp_path / "daemon.pid").read_text()))
        assert server.poll() is None
        assert job[0].poll() is None
    finally:
        (tmp_path / "release").touch()
        for process in (server, *job):
            process.kill()
            process.wait()


def test_a_process_that_cannot_be_killed_is_named_and_the_run_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGKILL lost (an injected fault): the clean-up gives up after its timeout, saying so."""
    caplog.set_level(logging.WARNING, logger="supervisor.reaper")

    def send(pid: int, signum: int) -> None:
        if signum != signal.SIGKILL:
            os.kill(pid, signum)

    result = run_script(Reaper(timeout=0.5, send=send), tmp_path, LEAVES_A_DAEMON)
    daemon = int((tmp_path / "daemon.pid").read_text())
    try:
        assert result.succeeded
        assert alive(daemon)
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [
            f"processes [{daemon}] left behind by script {tmp_path / 'script.sh'} "
            "still alive 0.5 s after SIGKILL"
        ]
    finally:
        os.kill(daemon, signal.SIGKILL)
        os.waitpid(daemon, 0)


def test_the_children_file_and_the_scan_of_proc_agree() -> None:
    """Where ``/proc/PID/task/TID/children`` is missing, every process's parent is read."""
    processes = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        listed = set(_child_pids(Path("/proc")))
        scanned = set(_scan_children(Path("/proc"), os.getpid()))
        assert {process.pid for process in processes} <= listed
        assert listed == scanned
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_what_a_killed_job_leaves_comes_back_and_is_killed(tmp_path: Path) -> None:
    """A local Batch job (a child in this session, a supervisor itself) killed with SIGKILL
    while its script runs: the script and its daemon are re-parented here and killed by
    ``reap``, as the workflow runner does at the end of its run."""
    reaper = Reaper()
    reaper.enable()
    pidfile = tmp_path / "daemon.pid"
    job_body = (
        "import subprocess, sys\n"
        "script = subprocess.Popen(['/bin/sh', '-c', sys.argv[1]], start_new_session=True)\n"
        "print(script.pid, flush=True)\n"
        "script.wait()\n"
    )
    script = (
        f"setsid /bin/sh -c 'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; "
        "exec sleep 60' & sleep 60"
    )
    job = subprocess.Popen(
        [sys.executable, "-c", job_body, script], stdout=subprocess.PIPE, text=True
    )
    assert job.stdout is not None
    script_pid = int(job.stdout.readline())
    wait_for(pidfile)
    daemon = int(pidfile.read_text())

    job.kill()
    job.wait()
    job.stdout.close()
    assert alive(script_pid)
    assert alive(daemon)

    assert reaper.reap("the job") >= 2
    assert not alive(script_pid)
    assert not alive(daemon)
