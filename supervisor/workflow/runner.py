"""Running a workflow on one machine, the way a cloud account would run it.

Buckets are folders of the local storage provider (``storage_root/BUCKET/KEY``).  Every
object written there, by an upload or by a function, is announced as an S3
``ObjectCreated`` notification (``local.notifications.notify``) in the run's notification
folder; the runner turns each into an invocation of every function whose input folder
holds the object, with that event, as a bucket notification would.

Each function runs through the supervisor pipeline (``runtime.Supervisor``), deployed once
for the run (``workflow.deployment``): ``lambda`` and ``lambda-batch`` invocations run
here, in threads, under a deadline of the function's ``timeout``, at most
``lambda_concurrency`` at once (Lambda's concurrency limit; the others wait their turn);
what they hand to Batch, and every ``batch`` invocation, becomes a job of the function's
local Batch backend: ``python -m supervisor`` in a subprocess, at most ``slots`` at once
(the compute environment's size), the others pending in its queue.  The run ends when no
upload, event, invocation or job is left.  Container images are not pulled: scripts run as
plain processes on this machine, which must have the tools they call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from supervisor import events, signals
from supervisor.context import InvocationContext
from supervisor.deadline import Deadline
from supervisor.environment import local_environ
from supervisor.errors import SupervisorError
from supervisor.gpu import GpuInventory, inventory
from supervisor.local.batch import LocalBatchBackend, LocalJob
from supervisor.local.notifications import announcer
from supervisor.reaper import process_reaper
from supervisor.runtime import Supervisor
from supervisor.storage.local import LocalStorage
from supervisor.watchdog import kill_group
from supervisor.workflow import progress
from supervisor.workflow.definition import Workflow, WorkflowFunction
from supervisor.workflow.deployment import Site, deploy, workflow_secrets
from supervisor.workflow.invocation_logs import InvocationLogs
from supervisor.workflow.schedule import Upload, schedule_uploads
from supervisor.workflow.timeline import Invocation, Timeline

__all__ = [
    "DEFAULT_BATCH_SLOTS",
    "DEFAULT_LAMBDA_CONCURRENCY",
    "RunResult",
    "Upload",
    "WorkflowRunner",
    "schedule_uploads",
    "workflow_secrets",
]

logger = logging.getLogger(__name__)

DEFAULT_LAMBDA_CONCURRENCY = 4
# Jobs of one function running at once when its compute environment does not say.
DEFAULT_BATCH_SLOTS = 2
_POLL = 0.05
# Seconds the scripts of an interrupted run have to end after SIGTERM.
_STOP_GRACE = 1.0


@dataclass(frozen=True)
class RunResult:
    timeline: Timeline
    duration: float
    failed: int
    unfinished: int
    timeline_json: Path
    timeline_png: Path | None
    log: Path
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.unfinished == 0


class WorkflowRunner:
    """Runs the functions of ``workflow`` on the objects that land in their input folders."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        storage_root: Path,
        work_dir: Path,
        lambda_concurrency: int = DEFAULT_LAMBDA_CONCURRENCY,
        batch_slots: int | None = None,
        environ: Mapping[str, str] = os.environ,
        out: TextIO = sys.stdout,
        draw: bool = True,
    ) -> None:
        if lambda_concurrency < 1:
            raise ValueError(f"lambda_concurrency must be at least 1, got {lambda_concurrency}")
        self.workflow = workflow
        self.storage_root = storage_root
        self.work_dir = work_dir
        self.notifications = work_dir / "notifications"
        self.lambda_concurrency = lambda_concurrency
        self._batch_slots = batch_slots
        self._environ = local_environ(environ, sys.executable)
        self._out = out
        self._draw = draw
        self._storage = LocalStorage(storage_root, announce=announcer(self.notifications))
        self._started = time.time()
        self.timeline = Timeline(self._started)
        self._wake = threading.Event()
        self._supervisors: dict[str, Supervisor] = {}
        self._backends: dict[str, LocalBatchBackend] = {}
        self._seen: set[str] = set()
        self._reported: dict[int, set[str]] = {}
        self._secrets = workflow_secrets(workflow, environ)
        self._logs = InvocationLogs(self._secrets)
        self._reaper = process_reaper()

    def _now(self) -> float:
        return time.time() - self._started

    # -- set up ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Build each function's supervisor and Batch backend, as a deployment would.

        This process becomes a subreaper first: what a killed local Batch job leaves behind
        comes back here, and is killed at the end of the run."""
        self._reaper.enable()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.notifications.mkdir(exist_ok=True)
        site = Site(
            self._environ, self.storage_root, self.work_dir, self.notifications, self._secrets
        )
        gpus: GpuInventory | None = None
        for function in self.workflow:
            slots = self._batch_slots or function.batch.slots or DEFAULT_BATCH_SLOTS
            deployed = deploy(
                function, site, slots=slots, clock=self._now, on_change=self._job_changed
            )
            self._supervisors[function.name] = deployed.supervisor
            self._backends[function.name] = deployed.backend
            gpus = self._describe(function, slots, gpus)

    def _describe(
        self, function: WorkflowFunction, slots: int, gpus: GpuInventory | None
    ) -> GpuInventory | None:
        """Say where ``function`` runs; return this machine's GPUs, found when the first
        function that asks for one is described."""
        where = f"{function.config.execution_mode}, timeout {function.timeout:g} s"
        if function.config.execution_mode != "lambda":
            where += f", Batch: {slots} job(s) at once"
        if function.batch.gpu:
            gpus = gpus or inventory(self._environ)
            where += ", asks for a GPU" + (
                f" ({len(gpus.gpus)} here)" if gpus.gpus else ": none here, runs on the CPU"
            )
        inputs = ", ".join(location.path for location in function.config.input)
        self._say(f"function {function.name}: {inputs} ({where})")
        return gpus

    # -- the run ---------------------------------------------------------------------

    def run(self, uploads: Sequence[Upload]) -> RunResult:
        """Upload on schedule and run every invocation they lead to; return when all is done."""
        self.prepare()
        self._started = time.time()
        self.timeline = Timeline(self._started)
        waiting = sorted(uploads, key=lambda upload: upload.at)
        futures: list[Future[None]] = []
        root = logging.getLogger()
        root.addHandler(self._logs)
        interrupted = False
        try:
            with ThreadPoolExecutor(self.lambda_concurrency, thread_name_prefix="lambda") as pool:
                try:
                    self._loop(waiting, futures, pool)
                except (KeyboardInterrupt, signals.Stopped):
                    interrupted = True
                    self._say("interrupted: stopping the invocations and the Batch jobs")
                    self._stop(futures)
        finally:
            root.removeHandler(self._logs)
            self._reaper.reap(f"the local Batch jobs of workflow {self.workflow.path}")
        return self._finish(interrupted)

    def _loop(
        self, waiting: list[Upload], futures: list[Future[None]], pool: ThreadPoolExecutor
    ) -> None:
        while True:
            self._wake.clear()
            while waiting and waiting[0].at <= self._now():
                self._upload(waiting.pop(0))
            for event, path in self._poll():
                for invocation, function in self._route(event, path):
                    futures.append(pool.submit(self._invoke, function, invocation, event))
            self._sync()
            busy = bool(waiting) or any(not future.done() for future in futures)
            busy = busy or any(
                job.exit_code is None
                for backend in self._backends.values()
                for job in backend.jobs.values()
            )
            if not busy and not self._unseen():
                return
            timeout = _POLL if not waiting else min(_POLL, max(0.0, waiting[0].at - self._now()))
            self._wake.wait(timeout)

    def _stop(self, futures: Sequence[Future[None]]) -> None:
        """Cancel the waiting invocations, end the Batch jobs, then kill the process groups
        of the running scripts (what they left outside their groups is killed when the last
        of them ends)."""
        for future in futures:
            future.cancel()
        for backend in self._backends.values():
            backend.stop()
        running = self._reaper.running()
        for pgid in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        for pgid in running:
            kill_group(pgid, _STOP_GRACE)

    def _upload(self, upload: Upload) -> None:
        self._storage.put(upload.file, upload.bucket, upload.key)
        self._say(f"uploaded {upload.file.name} to {upload.bucket}/{upload.key}")

    def _unseen(self) -> list[str]:
        try:
            names = os.listdir(self.notifications)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if not name.startswith(".") and name not in self._seen)

    def _poll(self) -> Iterator[tuple[dict[str, Any], Path]]:
        for name in self._unseen():
            self._seen.add(name)
            path = self.notifications / name
            try:
                event = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                self._say(f"cannot read the notification {path}: {exc}")
                continue
            yield event, path

    def _route(
        self, event: dict[str, Any], path: Path
    ) -> Iterator[tuple[Invocation, WorkflowFunction]]:
        record = events.parse(event).records[0]
        written = int(path.name.partition("-")[0]) / 1e9 - self._started
        functions = self.workflow.triggered_by(record.bucket, record.key)
        if not functions:
            logger.info("%s/%s triggers no function", record.bucket, record.key)
        for function in functions:
            invocation = self.timeline.add(
                function=function.name,
                mode=function.config.execution_mode,
                bucket=record.bucket,
                key=record.key,
                triggered=max(0.0, written),
                gpu=function.batch.gpu,
            )
            self._say(f"{function.name} #{invocation.number}: triggered by {record.key}")
            yield invocation, function

    def _invoke(self, function: WorkflowFunction, invocation: Invocation, event: Any) -> None:
        """One Lambda invocation, in a thread of the pool (a Lambda concurrency slot)."""
        request_id = str(uuid.uuid4())
        log_dir = self.work_dir / "logs" / function.name
        log_dir.mkdir(parents=True, exist_ok=True)
        invocation.request_id = request_id
        invocation.log = str(log_dir / f"{invocation.number:04d}-{request_id}.log")
        invocation.lambda_start = self._now()
        invocation.status = "running"
        self._wake.set()
        context = InvocationContext(
            request_id=request_id,
            function_name=function.name,
            memory_limit_in_mb=function.memory_mb,
            log_group_name=f"/aws/lambda/{function.name}",
            log_stream_name=request_id,
            deadline=Deadline.after(function.timeout),
        )
        try:
            with self._logs.capture(Path(invocation.log)):
                outcome = self._supervisors[function.name].invoke(event, context)
        except SupervisorError as exc:
            invocation.status, invocation.error = "failed", str(exc)
        except Exception as exc:
            logger.exception("invocation %s of %s", request_id, function.name)
            invocation.status, invocation.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            if outcome.output:
                with open(invocation.log, "ab") as log:
                    log.write(b"--- the script's output ---\n" + outcome.output)
            invocation.status = outcome.status
            invocation.uploaded = list(outcome.uploaded)
            invocation.job_id = next(iter(outcome.job_ids), None)
            if outcome.status == "failed":
                invocation.error = "; ".join(
                    record.reason for record in outcome.records if record.status == "failed"
                )
        invocation.lambda_end = self._now()
        self._wake.set()

    def _job_changed(self, job: LocalJob) -> None:
        self._wake.set()

    def _sync(self) -> None:
        """Copy each Batch job's state into its invocation and report what changed."""
        for invocation in self.timeline.invocations:
            if invocation.job_id is not None:
                job = self._backends[invocation.function].jobs.get(invocation.job_id)
                if job is not None:
                    invocation.job_status = job.status
                    invocation.batch_submitted = job.submitted_at
                    invocation.batch_started = job.started_at
                    invocation.batch_ended = job.stopped_at
                    invocation.exit_code = job.exit_code
                    invocation.job_log = str(job.log_path)
                    if job.error:
                        invocation.error = job.error
            self._report(invocation)

    def _report(self, invocation: Invocation) -> None:
        """Say each step of an invocation once, in the order they happened."""
        said = self._reported.setdefault(invocation.number, set())
        for step, message in progress.steps(invocation):
            if step not in said:
                said.add(step)
                self._say(message)

    def _finish(self, interrupted: bool) -> RunResult:
        self._sync()
        now = self._now()
        items = self.timeline.invocations
        json_path = self.work_dir / "timeline.json"
        names = [function.name for function in self.workflow]
        self.timeline.to_json(
            json_path,
            now=now,
            extra={
                "workflow": str(self.workflow.path),
                "storage_root": str(self.storage_root),
                "lambda_concurrency": self.lambda_concurrency,
                "interrupted": interrupted,
            },
            functions=names,
        )
        png_path = self._chart(now, names) if self._draw else None
        self._out.write("\n" + self.timeline.report(names) + "\n")
        self._out.flush()
        return RunResult(
            self.timeline,
            now,
            sum(item.failed for item in items),
            sum(not item.finished for item in items),
            json_path,
            png_path,
            self.work_dir / "workflow.log",
            interrupted,
        )

    def _chart(self, now: float, functions: list[str]) -> Path | None:
        """Draw the timeline into timeline.png; None when matplotlib is not installed."""
        png_path = self.work_dir / "timeline.png"
        count = len(self.timeline.invocations)
        try:
            self.timeline.draw(
                png_path,
                now=now,
                title=f"{self.workflow.path.name}: {count} invocations",
                functions=functions,
            )
        except ImportError:
            self._say("matplotlib is not installed: no timeline.png (pip install matplotlib)")
            return None
        return png_path

    def _say(self, message: str) -> None:
        self._out.write(f"[{self._now():8.2f} s] {message}\n")
        self._out.flush()
