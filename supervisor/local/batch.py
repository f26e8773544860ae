"""AWS Batch on one machine: the backend a local run and a local workflow submit to.

``LocalBatchBackend`` takes the ``JobRequest`` that ``supervisor.delegation.build_job``
builds for AWS Batch and runs it as ``python -m supervisor`` in a subprocess, with the
environment a Batch job would get: the job definition's variables
(``definition_environment``), the job's overrides and a job id.  Queues, slots and the
threads that watch the jobs live here, never on the Lambda path.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from supervisor.deadline import Deadline
from supervisor.delegation import JobRequest
from supervisor.environment import (
    AWS_CREDENTIAL_VARIABLES,
    AWS_REGION_VARIABLES,
    LOCAL_HOST_VARIABLES,
)
from supervisor.errors import DelegationError
from supervisor.local.notifications import STORAGE_EVENTS_VARIABLE

_NO_DEADLINE = Deadline.none()

__all__ = ["JobStatus", "LocalBatchBackend", "LocalJob", "definition_environment"]

logger = logging.getLogger(__name__)

JobStatus = Literal["RUNNABLE", "RUNNING", "SUCCEEDED", "FAILED"]


@dataclass
class LocalJob:
    """A job of the local backend, with the instants (``clock`` of the backend) of its states."""

    job_id: str
    request: JobRequest
    log_path: Path
    submitted_at: float
    status: JobStatus = "RUNNABLE"
    process: subprocess.Popen[bytes] | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    exit_code: int | None = None
    error: str = ""


class LocalBatchBackend:
    """AWS Batch on one machine: each job is ``python -m supervisor`` in a subprocess.

    The job's environment is what Batch would give it: the job definition's variables
    (``definition_environment``: the function definition, storage settings), the job's
    overrides and a job id, nothing else of this process.  Like a compute environment of
    ``slots`` hosts, at most that many jobs run at once; the others wait, ``RUNNABLE``, in
    the order they came (no limit when ``slots`` is None).  ``on_change`` is called, from
    the backend's threads, each time a job starts or stops.  ``clock`` (seconds) stamps the
    jobs' states and times the grace of ``stop``.
    """

    def __init__(
        self,
        definition_environment: Mapping[str, str],
        *,
        log_dir: Path,
        python: str = sys.executable,
        slots: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[LocalJob], None] | None = None,
    ) -> None:
        if slots is not None and slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self._definition = dict(definition_environment)
        self._log_dir = log_dir
        self._python = python
        self._slots = slots
        self._clock = clock
        self._on_change = on_change
        self._queue: deque[LocalJob] = deque()
        self._running = 0
        self._changed = threading.Condition()
        self._stopped = False
        self.jobs: dict[str, LocalJob] = {}

    def prepare(self) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)

    def submit(self, job: JobRequest, deadline: Deadline = _NO_DEADLINE) -> str:
        """Queue the job and start it when a slot is free; ``DelegationError`` if it cannot
        start now."""
        self.prepare()
        job_id = str(uuid.uuid4())
        local = LocalJob(job_id, job, self._log_dir / f"{job_id}.log", self._clock())
        with self._changed:
            if self._stopped:
                raise DelegationError(f"cannot submit job {job.job_name}: the backend is stopped")
            self.jobs[job_id] = local
            if self._slots is None or self._running < self._slots:
                self._start(local, raise_errors=True)
            else:
                self._queue.append(local)
                logger.info(
                    "Local Batch job %s (%s) is RUNNABLE: %d job(s) running, %d waiting",
                    job_id,
                    job.job_name,
                    self._running,
                    len(self._queue),
                )
        return job_id

    def _start(self, job: LocalJob, *, raise_errors: bool = False) -> None:
        """Start ``job`` (the lock held); a job that cannot start is FAILED."""
        environment = {**self._definition, **job.request.env, "SUPERVISOR_BATCH_JOB_ID": job.job_id}
        try:
            with job.log_path.open("wb") as log:
                job.process = subprocess.Popen(
                    [self._python, "-m", "supervisor"],
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._log_dir,
                )
        except OSError as exc:
            message = f"could not start local job {job.request.job_name}: {exc}"
            if raise_errors:
                del self.jobs[job.job_id]
                raise DelegationError(message) from exc
            job.status, job.error, job.exit_code = "FAILED", message, 127
            job.stopped_at = self._clock()
            logger.error("%s", message)
            self._changed.notify_all()
            self._notify(job)
            return
        job.status, job.started_at = "RUNNING", self._clock()
        self._running += 1
        logger.info(
            "Started local Batch job %s (%s), log %s",
            job.job_id,
            job.request.job_name,
            job.log_path,
        )
        self._notify(job)
        threading.Thread(
            target=self._watch, args=(job, job.process), name=f"job-{job.job_id[:8]}", daemon=True
        ).start()

    def _watch(self, job: LocalJob, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        with self._changed:
            job.exit_code, job.stopped_at = code, self._clock()
            job.status = "SUCCEEDED" if code == 0 else "FAILED"
            self._running -= 1
            while self._queue and (self._slots is None or self._running < self._slots):
                self._start(self._queue.popleft())
            self._changed.notify_all()
        logger.info("Local Batch job %s %s (exit code %d)", job.job_id, job.status, code)
        self._notify(job)

    def _notify(self, job: LocalJob) -> None:
        if self._on_change is not None:
            self._on_change(job)

    def wait(self, job_id: str, timeout: float | None = None) -> int:
        """Wait for a job to finish and return its exit code (``TimeoutExpired`` if it
        does not in ``timeout`` seconds)."""
        job = self.jobs[job_id]
        with self._changed:
            if not self._changed.wait_for(lambda: job.exit_code is not None, timeout):
                raise subprocess.TimeoutExpired([self._python, "-m", "supervisor"], timeout or 0)
        assert job.exit_code is not None
        return job.exit_code

    def stop(self, grace: float = 5.0) -> None:
        """Take no more jobs, fail the waiting ones and stop the running ones: SIGINT (the
        job kills its script's process group on the way out), then SIGKILL after ``grace``
        seconds."""
        with self._changed:
            self._stopped = True
            while self._queue:
                job = self._queue.popleft()
                job.status, job.error, job.exit_code = "FAILED", "stopped before it ran", 130
                job.stopped_at = self._clock()
                self._notify(job)
            running = [j.process for j in self.jobs.values() if j.status == "RUNNING"]
            self._changed.notify_all()
        for process in running:
            if process is not None:
                process.send_signal(signal.SIGINT)
        end = self._clock() + grace
        for process in running:
            if process is None:
                continue
            try:
                process.wait(max(0.0, end - self._clock()))
            except subprocess.TimeoutExpired:
                process.kill()


# What the job's supervisor needs to reach S3 when the data is there, as a job role and the
# compute environment would give it.
_ROLE_VARIABLES = (*AWS_CREDENTIAL_VARIABLES, *AWS_REGION_VARIABLES, "AWS_ENDPOINT_URL")


def definition_environment(
    config_text: str,
    *,
    script: str | None,
    storage_root: Path | None,
    storage_events: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The variables of a local job definition: the function definition, its script, the data
    (and where the local storage announces the objects the job writes).

    From ``environ`` (the supervisor's environment), the names a local run gives its script
    (``LOCAL_HOST_VARIABLES``), and the role's when the data is not local; the job's script
    gets what the Batch policy of ``supervisor.environment`` lets through.
    """
    names = LOCAL_HOST_VARIABLES + (_ROLE_VARIABLES if storage_root is None else ())
    environment = {name: environ[name] for name in names if name in environ}
    environment["FUNCTION_CONFIG"] = base64.b64encode(config_text.encode()).decode()
    if script:
        environment["SCRIPT"] = script
    if storage_root is not None:
        environment["SUPERVISOR_STORAGE_ROOT"] = str(storage_root)
        if storage_events is not None:
            environment[STORAGE_EVENTS_VARIABLE] = str(storage_events)
    return environment
