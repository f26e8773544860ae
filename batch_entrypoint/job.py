"""What a Batch job container runs: ``python -m supervisor`` with the delegated event.

The event comes from ``EVENT`` (the raw event JSON), ``EVENT_URI`` (where a delegating
Lambda stored an event too large for the job request), or standard input.  The same
pipeline as in Lambda runs with the plain-process executor; the process exits with the
script's exit code.  Logs go to standard output and, when a log group is configured, to
CloudWatch Logs in a stream named after the job id, flushed before the process exits.
The first lines say which GPUs the job was given (one line per GPU, or why there is none).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from supervisor import gpu, logs, staging
from supervisor.config import FunctionConfig, Settings, load_config, load_settings
from supervisor.context import InvocationContext
from supervisor.errors import ConfigError, EventError, SupervisorError
from supervisor.runtime import Supervisor, build_supervisor

__all__ = ["EXIT_CONFIG", "EXIT_ERROR", "run_job"]

_log = logging.getLogger(__name__)

EXIT_ERROR = 1
EXIT_CONFIG = 2


def run_job(
    environ: Mapping[str, str] = os.environ,
    stdin: TextIO | None = None,
    *,
    config_path: Path | None = None,
    gpu_inventory: Callable[[Mapping[str, str]], gpu.GpuInventory] = gpu.inventory,
) -> int:
    """Run one delegated invocation as a Batch job; return the process exit code."""
    secrets = logs.secrets_from_environ(environ)
    try:
        config = load_config(environ, config_path)
    except ConfigError as exc:
        logs.configure_cli("INFO", secrets=secrets, stream=sys.stdout)
        _log.error("%s", exc)
        return EXIT_CONFIG
    secrets = (*secrets, *config.storage_providers.secrets())
    logs.configure_cli(config.log_level, secrets=secrets, stream=sys.stdout)
    settings = load_settings(environ)
    log_group = config.batch.log_group or settings.log_group
    job_id = settings.batch_job_id or "job"
    cloudwatch = logs.attach_cloudwatch(log_group, job_id, secrets=secrets) if log_group else None
    try:
        _log_gpus(gpu_inventory(environ), job_id)
        return _run(config, settings, environ, stdin, job_id)
    finally:
        if cloudwatch is not None:
            cloudwatch.close()


def _run(
    config: FunctionConfig,
    settings: Settings,
    environ: Mapping[str, str],
    stdin: TextIO | None,
    job_id: str,
) -> int:
    try:
        supervisor = build_supervisor(
            config,
            platform="batch",
            environ=environ,
            work_root=settings.work_root,
            storage_root=settings.storage_root,
            storage_events=settings.storage_events,
        )
        supervisor.prepare()
        event = _event_text(environ, stdin, supervisor, settings)
        context = InvocationContext.from_json(
            environ.get("CONTEXT", ""), function_name=config.name, timeout=config.batch.timeout
        )
        _log.info("Batch job %s: running request %s", job_id, context.request_id)
        outcome = supervisor.invoke(event, context)
    except SupervisorError as exc:
        _log.error("Batch job %s failed: %s", job_id, exc)
        return EXIT_ERROR
    _log.info("Batch job %s finished: %s", job_id, outcome.summary())
    return outcome.exit_code


def _log_gpus(inventory: gpu.GpuInventory, job_id: str) -> None:
    for line in inventory.describe():
        _log.info("Batch job %s: %s", job_id, line)


def _event_text(
    environ: Mapping[str, str], stdin: TextIO | None, supervisor: Supervisor, settings: Settings
) -> str:
    if environ.get("EVENT", "").strip():
        return environ["EVENT"]
    uri = environ.get("EVENT_URI", "").strip()
    if uri:
        return staging.get_bytes(supervisor.providers, uri, settings.work_root).decode("utf-8")
    if stdin is not None and not stdin.isatty():
        text = stdin.read()
        if text.strip():
            return text
    raise EventError("no event: set EVENT (the event JSON) or EVENT_URI, or pipe it on stdin")
