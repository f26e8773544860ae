"""The function definition: where it comes from, what it may hold, how it is checked; and
what the host tells the runtime of itself.

- ``definition``: the models of one function's definition (``FunctionConfig`` and its
  sections); ``locations``: its inputs, outputs and storage providers.
- ``reading``: ``load_config``, the only reader of the definition and of the environment
  variables that override it, and ``parse_config`` for a definition given as text.  Both
  return a validated, frozen ``FunctionConfig`` or raise a ``ConfigError`` whose message
  names the key, the value and what was expected.
- ``fdl``: the multi-function files of SCAR and OSCAR.
- ``host``: ``load_host_facts``, the few facts about the host (Lambda zip or image runtime,
  Batch, a local run) that the runtime needs to pick its parts.

Every name is importable from ``supervisor.config`` itself.
"""

from __future__ import annotations

from supervisor.config.definition import (
    BatchSettings,
    ContainerSettings,
    DelegateReason,
    ExecMode,
    ExecutionMode,
    FunctionConfig,
    IdempotencySettings,
    MultiNodeSettings,
    UdockerSettings,
)
from supervisor.config.fdl import fdl_functions, select_function
from supervisor.config.host import HostFacts, Platform, load_host_facts
from supervisor.config.locations import (
    PROVIDER_TYPES,
    UNSUPPORTED_PROVIDER_TYPES,
    OutputLocation,
    StorageLocation,
    StorageProviders,
)
from supervisor.config.reading import (
    DEFAULT_CONFIG_PATH,
    load_config,
    load_definition_data,
    parse_config,
    validate_definition,
)
from supervisor.storage.s3 import DEFAULT_MINIO_ENDPOINT

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_MINIO_ENDPOINT",
    "PROVIDER_TYPES",
    "UNSUPPORTED_PROVIDER_TYPES",
    "BatchSettings",
    "ContainerSettings",
    "DelegateReason",
    "ExecMode",
    "ExecutionMode",
    "FunctionConfig",
    "HostFacts",
    "IdempotencySettings",
    "MultiNodeSettings",
    "OutputLocation",
    "Platform",
    "StorageLocation",
    "StorageProviders",
    "UdockerSettings",
    "fdl_functions",
    "load_config",
    "load_definition_data",
    "load_host_facts",
    "parse_config",
    "select_function",
    "validate_definition",
]
