"""A workflow's function deployed on this machine, the way a deployment tool would deploy it
to a cloud account: its supervisor, built by the same bootstrap as a deployed function's,
and its Batch backend, a local one whose jobs run ``python -m supervisor`` with the
function's definition in their job definition's environment.

Buckets are folders of the local storage (``storage_root``); what a function or a job
writes there is announced in the run's notification folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor import bootstrap, logs
from supervisor.config import HostFacts
from supervisor.local.batch import LocalBatchBackend, LocalJob, definition_environment
from supervisor.runtime import Supervisor
from supervisor.wiring import read_script
from supervisor.workflow.definition import Workflow, WorkflowFunction

__all__ = ["Deployment", "Site", "deploy", "workflow_secrets"]


@dataclass(frozen=True)
class Site:
    """This machine as the account the functions are deployed to.

    ``environ`` is the environment of the process that hosts the supervisor (for a local
    run: its Python first on ``PATH``); ``secrets`` are what the logs must never show.
    """

    environ: Mapping[str, str]
    storage_root: Path
    work_dir: Path
    notifications: Path
    secrets: tuple[str, ...]


def workflow_secrets(workflow: Workflow, environ: Mapping[str, str]) -> tuple[str, ...]:
    """What the logs of a run must never show: the credentials in ``environ`` and those of every
    function's storage providers."""
    found = logs.secrets_from_environ(environ)
    for function in workflow:
        found += function.config.storage_providers.secrets()
    return found


@dataclass(frozen=True)
class Deployment:
    """One function as deployed: its supervisor, and the Batch backend it hands jobs to."""

    supervisor: Supervisor
    backend: LocalBatchBackend


def deploy(
    function: WorkflowFunction,
    site: Site,
    *,
    slots: int,
    clock: Callable[[], float],
    on_change: Callable[[LocalJob], None],
) -> Deployment:
    """Build ``function``'s supervisor and its local Batch backend of ``slots`` jobs at once
    (``clock`` times the jobs, ``on_change`` hears of each change of a job's state)."""
    job_environment = definition_environment(
        function.config.source_text,
        script=read_script(function.config, site.environ),
        storage_root=site.storage_root,
        storage_events=site.notifications,
        environ=site.environ,
    )
    job_environment["SUPERVISOR_WORK_DIR"] = str(site.work_dir / "batch-work" / function.name)
    backend = LocalBatchBackend(
        job_environment,
        log_dir=site.work_dir / "batch-jobs" / function.name,
        slots=slots,
        clock=clock,
        on_change=on_change,
    )
    supervisor = bootstrap.start(
        _definition(function, site),
        site.environ,
        work_root=site.work_dir / "lambda" / function.name,
        backend=backend,
    )
    return Deployment(supervisor, backend)


def _definition(function: WorkflowFunction, site: Site) -> bootstrap.Definition:
    """What a deployed function's bootstrap would load, on this machine's storage."""
    facts = HostFacts(
        platform="local",
        storage_root=site.storage_root,
        work_root=site.work_dir,
        batch_job_id=None,
        log_group=None,
        storage_events=site.notifications,
    )
    return bootstrap.Definition(function.config, facts, site.secrets)
