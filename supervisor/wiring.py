"""The wiring: the parts of a function's runtime, built once per process.

``build_supervisor`` picks the executor (a plain process, or udocker for an image in the
Lambda zip runtime), the storage providers, the Batch backend, the idempotency table and
who runs the script, for this host and platform; their AWS clients share one botocore
session (``Sessions``).  ``read_script`` reads the script once.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import staging
from supervisor.deadline import attempt_timeouts
from supervisor.delegation import Backend, BatchBackend, RetryPolicy
from supervisor.errors import ConfigError
from supervisor.execution import Executor, ProcessExecutor
from supervisor.runtime import Supervisor
from supervisor.sessions import Sessions
from supervisor.users import script_user

if TYPE_CHECKING:
    from supervisor.config import FunctionConfig, Platform
    from supervisor.idempotency import Idempotency

__all__ = ["build_supervisor", "read_script"]


def build_supervisor(
    config: FunctionConfig,
    *,
    platform: Platform,
    environ: Mapping[str, str],
    work_root: Path,
    storage_root: Path | None = None,
    storage_events: Path | None = None,
    backend: Backend | None = None,
    providers: staging.Stores | None = None,
    executor: Executor | None = None,
    free_space: staging.FreeSpace = staging.disk_free,
    idempotency: Idempotency | None = None,
    euid: int | None = None,
) -> Supervisor:
    """The wiring: pick the executor, the storage and the Batch backend for this host, and
    who runs the script (``script_user``; ``euid`` is this process's effective user id).

    ``environ`` is the environment of the process that hosts the supervisor.  The AWS
    clients of the parts share one botocore session (``Sessions``), created when the first
    of them is.
    """
    sessions = Sessions()
    return Supervisor(
        config,
        platform=platform,
        providers=providers or _providers(config, storage_root, storage_events, sessions),
        executor=executor or _executor(config, platform, environ, work_root),
        backend=backend
        or BatchBackend(
            policy=RetryPolicy.for_reserve(config.timeout_threshold), session=sessions.botocore
        ),
        script=read_script(config, environ),
        environ=environ,
        work_root=work_root,
        free_space=free_space,
        idempotency=idempotency or _idempotency(config, platform, sessions),
        script_user=script_user(config, platform, environ, os.geteuid() if euid is None else euid),
    )


def _providers(
    config: FunctionConfig,
    storage_root: Path | None,
    storage_events: Path | None,
    sessions: Sessions,
) -> staging.Stores:
    """The storage providers of the definition; with ``storage_events``, a job of a local
    workflow, its local storage announces what it writes there."""
    announce = None
    if storage_events is not None:
        from supervisor.local.notifications import announcer

        announce = announcer(storage_events)
    return staging.build_providers(
        config, storage_root=storage_root, announce=announce, session_factory=sessions.boto3
    )


def _executor(
    config: FunctionConfig, platform: Platform, environ: Mapping[str, str], work_root: Path
) -> Executor:
    """udocker for a function with an image in the Lambda zip runtime, else a plain process
    (the image is the runtime itself, or there is none)."""
    container = config.container
    if platform != "lambda-zip" or not (container.image or container.image_file):
        return ProcessExecutor()
    from supervisor.container import UdockerExecutor

    return UdockerExecutor.for_host(
        container.image,
        image_file=container.image_file,
        # No ptrace in Lambda, so no proot (P modes): fakechroot unless told.
        execmode=config.udocker.execmode or "F1",
        environ=environ,
        work_root=work_root,
    )


def _idempotency(
    config: FunctionConfig, platform: Platform, sessions: Sessions
) -> Idempotency | None:
    """DynamoDB records when the definition names a table and this is Lambda, where retries
    reuse the request id (elsewhere each run has a request id of its own)."""
    settings = config.idempotency
    if settings.table is None or platform not in ("lambda-zip", "lambda-image"):
        return None
    from supervisor.idempotency import DynamoDBIdempotency

    connect_timeout, read_timeout = attempt_timeouts(config.timeout_threshold)
    return DynamoDBIdempotency(
        settings.table,
        key_prefix=config.name,
        expires_after_seconds=settings.expires_after_seconds,
        session=sessions.botocore,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


def read_script(config: FunctionConfig, environ: Mapping[str, str]) -> str | None:
    """The script as base64: the job's ``SCRIPT``, else the ``init_script`` file, read once."""
    if environ.get("SCRIPT", "").strip():
        script = environ["SCRIPT"].strip()
        try:
            base64.b64decode(script, validate=True)
        except ValueError as exc:  # binascii.Error, or a character outside ASCII
            raise ConfigError("SCRIPT: expected the script encoded in base64") from exc
        return script
    if config.init_script is None:
        return None
    try:
        return base64.b64encode(config.init_script.read_bytes()).decode("ascii")
    except OSError as exc:
        raise ConfigError(
            f"init_script: cannot read {str(config.init_script)!r}: {exc.strerror}"
        ) from exc
