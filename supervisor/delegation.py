"""Handing an invocation to AWS Batch: the job request, and the backends that take it.

``build_job`` is pure: it turns the function definition, the invocation context and the
raw event into the SubmitJob request that deployment tools and the Batch side agree on
(``EVENT``, ``CONTEXT``, ``AWS_LAMBDA_REQUEST_ID`` and ``SCRIPT`` in the container's
environment; queue and definition named after the function unless configured).  An event
too large for the 30 KiB request limit is stored first and passed as ``EVENT_URI``.

``BatchBackend`` submits to AWS Batch with a client created before it is needed, so that
a submission at the deadline costs one API call.  ``LocalBatchBackend`` runs the job as
``python -m supervisor`` in a subprocess with the environment a Batch job would get.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from supervisor.errors import DelegationError

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

    from supervisor.config import FunctionConfig
    from supervisor.context import InvocationContext

__all__ = [
    "MAX_REQUEST_BYTES",
    "Backend",
    "BatchBackend",
    "JobRequest",
    "LocalBatchBackend",
    "LocalJob",
    "build_job",
    "definition_environment",
]

MAX_REQUEST_BYTES = 30 * 1024
_log = logging.getLogger(__name__)
_JOB_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class JobRequest:
    """A SubmitJob request, kept as plain data so it can be inspected, sized and replayed."""

    job_name: str
    job_queue: str
    job_definition: str
    environment: tuple[tuple[str, str], ...]
    multi_node: bool = False

    def submit_kwargs(self) -> dict[str, Any]:
        overrides = [{"name": name, "value": value} for name, value in self.environment]
        request: dict[str, Any] = {
            "jobName": self.job_name,
            "jobQueue": self.job_queue,
            "jobDefinition": self.job_definition,
        }
        if self.multi_node:
            request["nodeOverrides"] = {
                "nodePropertyOverrides": [
                    {"targetNodes": "0:", "containerOverrides": {"environment": overrides}}
                ]
            }
        else:
            request["containerOverrides"] = {"environment": overrides}
        return request

    def size(self) -> int:
        return len(json.dumps(self.submit_kwargs(), separators=(",", ":")).encode())

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)


def build_job(
    config: FunctionConfig,
    context: InvocationContext,
    event_json: str,
    *,
    script: str | None = None,
    store_event: Callable[[str], str] | None = None,
) -> JobRequest:
    """The job that finishes this invocation on Batch; ``store_event`` keeps an oversized event."""
    environment = [("EVENT", event_json)]
    environment += [
        ("CONTEXT", context.to_json()),
        ("AWS_LAMBDA_REQUEST_ID", context.request_id),
    ]
    if script:
        environment.append(("SCRIPT", script))
    job = JobRequest(
        job_name=_job_name(config.name, context.request_id),
        job_queue=config.job_queue,
        job_definition=config.job_definition,
        environment=tuple(environment),
        multi_node=config.batch.multi_node_parallel.enabled,
    )
    if job.size() <= MAX_REQUEST_BYTES:
        return job
    if store_event is None:
        raise DelegationError(
            f"the job request is {job.size()} bytes, over the {MAX_REQUEST_BYTES} byte limit of "
            "SubmitJob, and there is nowhere to store the event (set batch.event_store)"
        )
    uri = store_event(event_json)
    _log.info("The event is too large for the job request; stored it as %s", uri)
    smaller = JobRequest(
        job_name=job.job_name,
        job_queue=job.job_queue,
        job_definition=job.job_definition,
        environment=(("EVENT_URI", uri), *environment[1:]),
        multi_node=job.multi_node,
    )
    if smaller.size() > MAX_REQUEST_BYTES:
        raise DelegationError(
            f"the job request is {smaller.size()} bytes even without the event "
            f"(limit {MAX_REQUEST_BYTES}): the script passed in the event is too large"
        )
    return smaller


def _job_name(function_name: str, request_id: str) -> str:
    """Batch wants `[A-Za-z0-9][A-Za-z0-9_-]{0,127}`; a Lambda name may start with - or _."""
    name = _JOB_NAME.sub("-", f"{function_name}-{request_id}").lstrip("-_") or "job"
    return name[:128]


class Backend(Protocol):
    def prepare(self) -> None:
        """Get ready to submit in one call (create clients, connections)."""

    def submit(self, job: JobRequest) -> str:
        """Submit the job and return its id; raise ``DelegationError`` when it cannot."""


class BatchBackend:
    """AWS Batch through boto3."""

    def __init__(self, client: BatchClient | None = None) -> None:
        self._client = client

    def prepare(self) -> None:
        self.client()

    def client(self) -> BatchClient:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "batch", config=Config(retries={"mode": "standard", "max_attempts": 3})
            )
        return self._client

    def submit(self, job: JobRequest) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client().submit_job(**job.submit_kwargs())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DelegationError(
                f"AWS Batch refused job {job.job_name} on queue {job.job_queue} "
                f"(definition {job.job_definition}): {error.get('Code')}: {error.get('Message')}"
            ) from exc
        except BotoCoreError as exc:
            raise DelegationError(
                f"could not reach AWS Batch to submit job {job.job_name}: {exc}"
            ) from exc
        job_id = response["jobId"]
        _log.info("Submitted Batch job %s (%s) to queue %s", job_id, job.job_name, job.job_queue)
        return job_id


@dataclass
class LocalJob:
    job_id: str
    request: JobRequest
    log_path: Path
    process: subprocess.Popen[bytes]
    exit_code: int | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)


class LocalBatchBackend:
    """AWS Batch on one machine: each job is ``python -m supervisor`` in a subprocess.

    The job's environment is what Batch would give it: the job definition's variables
    (``definition_environment``: the function definition, storage settings), the job's
    overrides and a job id, nothing else of this process.
    """

    def __init__(
        self,
        definition_environment: Mapping[str, str],
        *,
        log_dir: Path,
        python: str = sys.executable,
    ) -> None:
        self._definition = dict(definition_environment)
        self._log_dir = log_dir
        self._python = python
        self.jobs: dict[str, LocalJob] = {}

    def prepare(self) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)

    def submit(self, job: JobRequest) -> str:
        job_id = str(uuid.uuid4())
        environment = {**self._definition, **job.env, "SUPERVISOR_BATCH_JOB_ID": job_id}
        self.prepare()
        log_path = self._log_dir / f"{job_id}.log"
        try:
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [self._python, "-m", "supervisor"],
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._log_dir,
                )
        except OSError as exc:
            raise DelegationError(f"could not start local job {job.job_name}: {exc}") from exc
        self.jobs[job_id] = LocalJob(job_id, job, log_path, process)
        _log.info("Started local Batch job %s (%s), log %s", job_id, job.job_name, log_path)
        return job_id

    def wait(self, job_id: str, timeout: float | None = None) -> int:
        """Wait for a job to finish and return its exit code."""
        job = self.jobs[job_id]
        job.exit_code = job.process.wait(timeout=timeout)
        return job.exit_code

    def wait_all(self, timeout: float | None = None) -> dict[str, int]:
        return {job_id: self.wait(job_id, timeout) for job_id in self.jobs}


_HOST_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "HOME",
    "TZ",
    "PYTHONPATH",
    "LD_LIBRARY_PATH",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
)
# What the job role and the compute environment give a real job; only used when the data is in S3.
_ROLE_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
)


def definition_environment(
    config_text: str,
    *,
    script: str | None,
    storage_root: Path | None,
    host: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The variables of a local job definition: the function definition, its script, the data."""
    names = _HOST_VARIABLES if storage_root is not None else _HOST_VARIABLES + _ROLE_VARIABLES
    environment = {name: host[name] for name in names if name in host}
    environment["FUNCTION_CONFIG"] = base64.b64encode(config_text.encode()).decode()
    if script:
        environment["SCRIPT"] = script
    if storage_root is not None:
        environment["SUPERVISOR_STORAGE_ROOT"] = str(storage_root)
    return environment
