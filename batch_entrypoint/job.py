"""What a Batch job container and an OSCAR service run: ``python -m supervisor`` (or the
self-contained ``supervisor`` binary) with the event.

The event comes from, in this order: ``EVENT`` (the raw event JSON; a Batch job's, and an
OSCAR asynchronous job's), ``EVENT_URI`` (where a delegating Lambda stored an event too
large for the job request), or standard input (``echo $EVENT | supervisor``, and OSCAR's
synchronous calls, whose request body arrives on stdin only).  The same
pipeline as in Lambda runs with the plain-process executor; the process exits with the
script's exit code.  Logs go to standard output and, when a log group is configured, to
CloudWatch Logs in a stream named after the job id, flushed before the process exits.
The first lines say which GPUs the job was given (one line per GPU, or why there is none).
SIGTERM (Batch terminating the job or ending it at its timeout, Kubernetes deleting the
pod) or SIGINT kills the script's process group, removes the invocation's work folder,
uploads nothing and exits with 143 (SIGTERM) or 130 (SIGINT) (``supervisor.signals``).
An event read from ``EVENT_URI`` is deleted when the job succeeded, or when it failed on its
last attempt (``AWS_BATCH_JOB_ATTEMPT`` reaching ``batch.attempts``); a job that may still
be retried keeps it.  A deletion that fails is a warning, never the job's failure.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from supervisor import bootstrap, gpu, logs, signals, staging
from supervisor.context import InvocationContext
from supervisor.errors import ConfigError, EventError, SupervisorError

if TYPE_CHECKING:
    from supervisor.config import HostFacts, Platform
    from supervisor.runtime import Supervisor

__all__ = ["EXIT_CONFIG", "EXIT_ERROR", "EXIT_STOPPED", "run_job"]

logger = logging.getLogger(__name__)

EXIT_ERROR = 1
EXIT_CONFIG = 2
# A job stopped by SIGTERM (Batch's stop); one stopped by SIGINT ends with 130.
EXIT_STOPPED = 128 + signal.SIGTERM


def run_job(
    environ: Mapping[str, str] = os.environ,
    stdin: TextIO | None = None,
    *,
    config_path: Path | None = None,
    gpu_inventory: Callable[[Mapping[str, str]], gpu.GpuInventory] = gpu.inventory,
    stdout: BinaryIO | None = None,
) -> int:
    """Run one delegated invocation as a Batch job (or an OSCAR service's invocation);
    return the process exit code.

    On OSCAR, standard output is the response of a synchronous call: the logs go to standard
    error and the script's output is written to ``stdout`` (``sys.stdout``'s bytes by
    default) at the end.  On Batch the logs go to standard output.
    """
    try:
        definition = bootstrap.load(environ, path=config_path)
    except ConfigError as exc:
        logs.configure_cli("INFO", secrets=logs.secrets_from_environ(environ), stream=sys.stdout)
        logger.error("%s", exc)
        return EXIT_CONFIG
    config, facts, secrets = definition.config, definition.host_facts, definition.secrets
    oscar = facts.platform == "oscar"
    logs.configure_cli(
        config.log_level, secrets=secrets, stream=sys.stderr if oscar else sys.stdout
    )
    log_group = config.batch.log_group or facts.log_group
    job_id = facts.batch_job_id or ("" if oscar else "job")
    cloudwatch = logs.attach_cloudwatch(log_group, job_id, secrets=secrets) if log_group else None
    code = EXIT_ERROR
    try:
        with signals.stopping() as stop:
            _log_gpus(gpu_inventory(environ), job_id)
            code = _run(definition, environ, stdin, job_id, stdout)
        if stop.stopped:
            logger.warning(
                "Stopped by %s: the script's processes were killed, nothing uploaded", stop.name
            )
            return stop.exit_code
        return code
    finally:
        if cloudwatch is not None:
            cloudwatch.close()


def _run(
    definition: bootstrap.Definition,
    environ: Mapping[str, str],
    stdin: TextIO | None,
    job_id: str,
    stdout: BinaryIO | None,
) -> int:
    config, facts = definition.config, definition.host_facts
    platform: Platform = "oscar" if facts.platform == "oscar" else "batch"
    what = f"OSCAR service {config.name}" if platform == "oscar" else f"Batch job {job_id}"
    supervisor: Supervisor | None = None
    # What the job ends with when a stop signal (``signals.Stopped``) unwinds it.
    code = EXIT_STOPPED
    try:
        supervisor = bootstrap.start(definition, environ, platform=platform)
        event = _event_text(environ, stdin, supervisor, facts)
        context = InvocationContext.from_json(
            environ.get("CONTEXT", ""), function_name=config.name, timeout=config.batch.timeout
        )
        logger.info("%s: running request %s", what, context.request_id)
        outcome = supervisor.invoke(event, context)
        code = outcome.exit_code
    except SupervisorError as exc:
        logger.error("%s failed: %s", what, exc)
        code = EXIT_ERROR
        return code
    finally:
        if supervisor is not None:
            _forget_event(environ, supervisor, definition, code)
    logger.info("%s finished: %s", what, outcome.summary())
    if platform == "oscar":
        out = stdout or sys.stdout.buffer
        out.write(outcome.output)
        out.flush()
    return code


def _forget_event(
    environ: Mapping[str, str], supervisor: Supervisor, definition: bootstrap.Definition, code: int
) -> None:
    """Delete the event stored for this job (``EVENT_URI``) once no attempt will read it."""
    uri = _event_uri(environ)
    if uri is None:
        return
    attempts = definition.config.batch.attempts
    attempt = definition.host_facts.batch_job_attempt or 1
    if code != 0 and (attempts is None or attempt < attempts):
        logger.info(
            "The stored event %s is kept for a retry (attempt %d of %s)",
            uri,
            attempt,
            attempts or "the job definition's",
        )
        return
    try:
        staging.delete_bytes(supervisor.providers, uri)
    except SupervisorError as exc:
        logger.warning("The stored event was not deleted: %s", exc)
        return
    logger.info("Deleted the stored event %s", uri)


def _log_gpus(inventory: gpu.GpuInventory, job_id: str) -> None:
    for line in inventory.describe():
        logger.info("Batch job %s: %s", job_id, line)


def _event_text(
    environ: Mapping[str, str], stdin: TextIO | None, supervisor: Supervisor, facts: HostFacts
) -> str:
    if environ.get("EVENT", "").strip():
        return environ["EVENT"]
    uri = _event_uri(environ)
    if uri is not None:
        data = staging.get_bytes(supervisor.providers, uri, facts.work_root)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(
                f"the event at EVENT_URI {uri} is not UTF-8 text (byte {exc.start} of "
                f"{len(data)}): expected the event JSON"
            ) from None
    if stdin is not None and not stdin.isatty():
        text = stdin.read()
        if text.strip():
            return text
    raise EventError("no event: set EVENT (the event JSON) or EVENT_URI, or pipe it on stdin")


def _event_uri(environ: Mapping[str, str]) -> str | None:
    """Where the event was stored, when the job reads it from there (no ``EVENT``)."""
    if environ.get("EVENT", "").strip():
        return None
    return environ.get("EVENT_URI", "").strip() or None
