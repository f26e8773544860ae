"""SIGTERM and SIGINT reaching ``python -m supervisor run``, ``workflow run`` and a Batch job
while the script runs, as Batch stopping a job, ``kill`` or Ctrl-C send them: the script and
what it started are gone, the work folders are gone, the exit code is 128 + the signal and
no traceback is printed, not even when a second signal comes during the clean-up."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.functional.test_execution import gone

ROOT = Path(__file__).resolve().parents[2]

# Starts a child that would outlive a kill of the script's process alone, says both pids,
# then waits: only a signal ends it.
SCRIPT = """\
sleep 300 &
echo $! > "$PIDS/child.tmp" && mv "$PIDS/child.tmp" "$PIDS/child"
echo $$ > "$PIDS/script.tmp" && mv "$PIDS/script.tmp" "$PIDS/script"
wait
"""

STOP_SIGNALS = [
    pytest.param(signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGINT, id="SIGINT"),
]


def wait_for_pid(path: Path, process: subprocess.Popen[str], timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            return int(path.read_text())
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"ended before the script started:\n{out}\n{err}")
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def wait_gone(pid: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone(pid)


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(
    process: subprocess.Popen[str], pids: Path, signum: int, *, twice: bool = False
) -> tuple[int, int, str, str]:
    """Wait for the script, send ``signum`` (twice: again at once, during the clean-up),
    and return the script's and its child's pids and what the process printed."""
    try:
        script = wait_for_pid(pids / "script", process)
        child = wait_for_pid(pids / "child", process)
        process.send_signal(signum)
        if twice:
            process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return script, child, out, err


def check_stopped(
    process: subprocess.Popen[str], signum: int, script: int, child: int, out: str, err: str
) -> None:
    assert process.returncode == 128 + signum, f"{out}\n{err}"
    assert "Traceback" not in out + err
    assert f"{signal.Signals(signum).name}" in out + err
    for pid in (script, child):
        assert wait_gone(pid), f"process {pid} outlived the stop"


@pytest.fixture
def function(tmp_path: Path) -> Path:
    pids = tmp_path / "pids"
    pids.mkdir()
    (tmp_path / "wait.sh").write_text(SCRIPT)
    path = tmp_path / "function.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: waits
            init_script: wait.sh
            container:
              environment:
                Variables: {{PIDS: {pids}}}
            """
        )
    )
    (tmp_path / "event.json").write_text("{}")
    return path


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_run_stopped_removes_its_temporary_work_folder(
    function: Path, tmp_path: Path, signum: int
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    process = start(
        ["run", "--config", str(function), "--event", "event.json"],
        tmp_path,
        {"TMPDIR": str(temporary)},
    )

    script, child, out, err = stop(process, tmp_path / "pids", signum)

    check_stopped(process, signum, script, child, out, err)
    assert list(temporary.iterdir()) == []


def test_run_stopped_during_a_delegated_job_leaves_nothing_behind(
    function: Path, tmp_path: Path
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    process = start(
        ["run", "--config", str(function), "--event", "event.json", "--mode", "batch"],
        tmp_path,
        {"TMPDIR": str(temporary)},
    )

    script, child, out, err = stop(process, tmp_path / "pids", signal.SIGTERM)

    check_stopped(process, signal.SIGTERM, script, child, out, err)
    assert list(temporary.iterdir()) == []


def test_run_stopped_twice_still_cleans_up(function: Path, tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    process = start(
        ["run", "--config", str(function), "--event", "event.json"],
        tmp_path,
        {"TMPDIR": str(temporary)},
    )

    script, child, out, err = stop(process, tmp_path / "pids", signal.SIGINT, twice=True)

    check_stopped(process, signal.SIGINT, script, child, out, err)
    assert list(temporary.iterdir()) == []


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_run_stopped_keeps_the_given_work_folder_but_not_the_invocation(
    function: Path, tmp_path: Path, signum: int
) -> None:
    work = tmp_path / "work"
    process = start(
        ["run", "--config", str(function), "--event", "event.json", "--work-dir", str(work)],
        tmp_path,
    )

    script, child, out, err = stop(process, tmp_path / "pids", signum)

    check_stopped(process, signum, script, child, out, err)
    assert work.is_dir()
    assert list(work.glob("invocation-*")) == []


def test_run_without_signal_leaves_no_temporary_folder(function: Path, tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    (tmp_path / "quick.sh").write_text("echo done\n")
    function.write_text(function.read_text().replace("wait.sh", "quick.sh"))
    process = start(
        ["run", "--config", str(function), "--event", "event.json", "--json"],
        tmp_path,
        {"TMPDIR": str(temporary)},
    )
    out, err = process.communicate(timeout=120)

    assert process.returncode == 0, err
    assert json.loads(out)["output"] == "done\n"
    assert list(temporary.iterdir()) == []


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_batch_job_stopped(tmp_path: Path, signum: int) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    definition = {
        "name": "stoppable",
        "container": {"environment": {"Variables": {"PIDS": str(pids)}}},
    }
    work = tmp_path / "work"
    process = start(
        [],
        tmp_path,
        {
            "FUNCTION_CONFIG": base64.b64encode(json.dumps(definition).encode()).decode(),
            "SCRIPT": base64.b64encode(SCRIPT.encode()).decode(),
            "EVENT": json.dumps({"work": "long"}),
            "AWS_BATCH_JOB_ID": "job-to-stop",
            # pytest's folders are root's alone: the script runs as the test's user.
            "SUPERVISOR_SCRIPT_USER": "root",
            "SUPERVISOR_WORK_DIR": str(work),
        },
    )

    script, child, out, err = stop(process, pids, signum, twice=True)

    check_stopped(process, signum, script, child, out, err)
    assert list(work.glob("invocation-*")) == []


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_workflow_run_stopped(tmp_path: Path, signum: int) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    (tmp_path / "wait.sh").write_text(SCRIPT)
    (tmp_path / "a.txt").write_text("input\n")
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(
        textwrap.dedent(
            f"""\
            functions:
              aws:
              - lambda:
                  name: waits
                  timeout: 600
                  init_script: wait.sh
                  container:
                    environment:
                      Variables: {{PIDS: {pids}}}
                  input: [{{storage_provider: s3, path: media/start}}]
                  output: [{{storage_provider: s3, path: media/result}}]
            """
        )
    )
    work = tmp_path / "work"
    process = start(
        [
            "workflow",
            "run",
            str(workflow),
            "--upload",
            "a.txt",
            "--work-dir",
            str(work),
            "--no-chart",
        ],
        tmp_path,
    )

    script, child, out, err = stop(process, pids, signum)

    check_stopped(process, signum, script, child, out, err)
    # The run's logs and timeline stay; the invocation's folder does not.
    assert (work / "timeline.json").is_file()
    assert list(work.glob("lambda/*/invocation-*")) == []
