"""A job that Batch stops (terminate, timeout) or whose pod Kubernetes deletes gets SIGTERM:
the script's processes go with it, and the job ends at once with 143."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.functional.test_execution import gone

SCRIPT = """\
sleep 300 &
echo $! > "$PIDS/child"
echo $$ > "$PIDS/script"
wait
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def wait_for(path: Path, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_sigterm_kills_the_script_and_ends_the_job_with_143(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    definition = {
        "name": "stoppable",
        "container": {"environment": {"Variables": {"PIDS": str(pids)}}},
    }
    environment = {
        "PATH": os.environ["PATH"],
        "FUNCTION_CONFIG": b64(json.dumps(definition)),
        "SCRIPT": b64(SCRIPT),
        "EVENT": json.dumps({"work": "long"}),
        "AWS_BATCH_JOB_ID": "job-to-stop",
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "SUPERVISOR_WORK_DIR": str(tmp_path / "work"),
    }
    job = subprocess.Popen(
        [sys.executable, "-m", "supervisor"],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        script, child = wait_for(pids / "script"), wait_for(pids / "child")

        job.send_signal(signal.SIGTERM)
        output, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()

    assert job.returncode == 128 + signal.SIGTERM, output.decode()
    assert b"Stopped by SIGTERM" in output
    for pid in (script, child):
        deadline = time.monotonic() + 30
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(pid), f"process {pid} outlived the job"
    assert not any((tmp_path / "work").glob("invocation-*"))
