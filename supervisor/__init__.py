"""serverless-supervisor: run a user's file-processing script for an event, in AWS Lambda,
in AWS Batch, in an OSCAR service or locally, with the data staged in and out and a
watchdog on the deadline.

The names below are the API for tools that embed the supervisor (see
``docs/embedding.md``); every other module's names may change between releases.  They are
imported on first use, so that ``import supervisor`` costs a Lambda cold start nothing::

    import supervisor

    definition = supervisor.load(os.environ, path=Path("function.yaml"))
    runtime = supervisor.start(definition, os.environ, platform="local")
    outcome = runtime.invoke(event, supervisor.InvocationContext.local(definition.config.name))

- Definitions: ``load`` (find, validate, collect secrets), ``parse_config`` (a definition
  given as text), ``Definition``, ``FunctionConfig``.
- Running: ``start`` (build and prepare for a platform), ``Supervisor`` (``invoke``),
  ``InvocationContext``, ``Outcome``, ``RecordOutcome``.
- Errors: ``SupervisorError`` and its subclasses (see ``supervisor.errors``).
- Extension points, passed to ``start``: ``providers=Stores(...)`` of
  ``StorageProvider``; ``backend=`` a ``Backend`` receiving ``JobRequest``; ``executor=``
  an ``Executor`` running a ``ScriptRun`` to an ``ExecutionResult``.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.bootstrap import Definition, load, start
    from supervisor.config import FunctionConfig, parse_config
    from supervisor.context import InvocationContext
    from supervisor.delegation import Backend, JobRequest
    from supervisor.errors import (
        ConfigError,
        DeadlineError,
        DelegationError,
        EventError,
        ExecutionError,
        InvocationError,
        StagingError,
        SupervisorError,
    )
    from supervisor.execution import ExecutionResult, Executor, ScriptRun
    from supervisor.outcome import Outcome, RecordOutcome
    from supervisor.runtime import Supervisor
    from supervisor.staging import Stores
    from supervisor.storage.base import StorageProvider, UploadItem

__version__ = "0.1.0"

# A library logs nowhere until its application says where (``supervisor.logs`` for ours).
logging.getLogger(__name__).addHandler(logging.NullHandler())

_EXPORTS = {
    "Definition": "supervisor.bootstrap",
    "load": "supervisor.bootstrap",
    "start": "supervisor.bootstrap",
    "FunctionConfig": "supervisor.config",
    "parse_config": "supervisor.config",
    "InvocationContext": "supervisor.context",
    "Backend": "supervisor.delegation",
    "JobRequest": "supervisor.delegation",
    "ConfigError": "supervisor.errors",
    "DeadlineError": "supervisor.errors",
    "DelegationError": "supervisor.errors",
    "EventError": "supervisor.errors",
    "ExecutionError": "supervisor.errors",
    "InvocationError": "supervisor.errors",
    "StagingError": "supervisor.errors",
    "SupervisorError": "supervisor.errors",
    "ExecutionResult": "supervisor.execution",
    "Executor": "supervisor.execution",
    "ScriptRun": "supervisor.execution",
    "Outcome": "supervisor.outcome",
    "RecordOutcome": "supervisor.outcome",
    "Supervisor": "supervisor.runtime",
    "StorageProvider": "supervisor.storage.base",
    "Stores": "supervisor.staging",
    "UploadItem": "supervisor.storage.base",
}

__all__ = [
    "Backend",
    "ConfigError",
    "DeadlineError",
    "Definition",
    "DelegationError",
    "EventError",
    "ExecutionError",
    "ExecutionResult",
    "Executor",
    "FunctionConfig",
    "InvocationContext",
    "InvocationError",
    "JobRequest",
    "Outcome",
    "RecordOutcome",
    "ScriptRun",
    "StagingError",
    "StorageProvider",
    "Stores",
    "Supervisor",
    "SupervisorError",
    "UploadItem",
    "__version__",
    "load",
    "parse_config",
    "start",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'supervisor' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
