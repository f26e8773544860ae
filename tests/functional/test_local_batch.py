"""The local Batch backend stops its jobs: SIGINT first, SIGKILL once the grace has run out
on the backend's clock."""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

from supervisor.delegation import JobRequest
from supervisor.local.batch import LocalBatchBackend

# A job that ignores SIGINT, as one busy in a script that traps it would.
STUBBORN_JOB = """\
#!/bin/sh
trap '' INT
echo ready > "$READY"
exec sleep 600
"""


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {timeout} s"
        time.sleep(0.01)


def test_stop_kills_a_job_that_ignores_sigint_once_the_grace_is_over(tmp_path: Path) -> None:
    program = tmp_path / "stubborn"
    program.write_text(STUBBORN_JOB)
    program.chmod(0o755)
    ready = tmp_path / "ready"
    # An hour passes at each look: a grace of ten minutes is over by the next one.
    ticks = itertools.count(step=3600.0)
    backend = LocalBatchBackend(
        {"READY": str(ready), "PATH": os.environ["PATH"]},
        log_dir=tmp_path / "jobs",
        python=str(program),
        clock=lambda: next(ticks),
    )
    job_id = backend.submit(JobRequest("stubborn", "queue", "definition", ()))
    process = backend.jobs[job_id].process
    assert process is not None
    try:
        _wait_for(ready)

        backend.stop(grace=600)

        assert backend.wait(job_id, timeout=60) == -signal.SIGKILL
        assert backend.jobs[job_id].status == "FAILED"
    finally:
        if process.poll() is None:
            process.kill()
