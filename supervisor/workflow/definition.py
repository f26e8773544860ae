"""A workflow file: several functions linked by bucket folders, as deployment tools write it.

The format is the multi-function one of deployment tools (SCAR's FDL)::

    functions:
      aws:
      - lambda: {name, execution_mode, memory, timeout, container, init_script, input, output, ...}
        batch: {vcpus, memory, enable_gpu, compute_resources: {max_v_cpus, ...}}
    storage_providers: {...}   # optional, shared by every function

Each ``lambda`` section is a function definition (``supervisor.config``), validated as
``validate`` does (an unknown key is an error); the function-level ``batch`` section joins its
``batch`` settings.  ``memory`` and ``timeout`` are the Lambda function's (MB, seconds;
Lambda's limits apply).  ``max_v_cpus / vcpus`` of the Batch compute environment is how
many jobs of the function run at once.  Relative ``init_script`` paths are relative to
the workflow file.  A function whose outputs would come back to it, directly or through
the others, is refused: on a bucket that would never end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from supervisor.checks import fdl_problems
from supervisor.config import FunctionConfig, StorageLocation, parse_config
from supervisor.errors import ConfigError
from supervisor.models import Model
from supervisor.validation import describe, load_yaml

__all__ = ["BatchResources", "Workflow", "WorkflowFunction", "load_workflow", "parse_workflow"]

# What a deployment tool gives a function it is not told otherwise about.
DEFAULT_TIMEOUT = 300.0
DEFAULT_MEMORY = 512

_M = TypeVar("_M", bound="BaseModel")


class _LambdaLimits(Model):
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=900)
    memory: int = Field(default=DEFAULT_MEMORY, ge=128, le=10240)


class _ComputeResources(Model):
    max_v_cpus: float | None = Field(default=None, gt=0)


class _BatchSection(Model):
    vcpus: float = Field(default=1, gt=0)
    memory: int = Field(default=1024, gt=0)
    enable_gpu: bool = False
    compute_resources: _ComputeResources = Field(default_factory=_ComputeResources)


@dataclass(frozen=True)
class BatchResources:
    """What a function's Batch jobs ask for, and how many run at once (``slots``; None when
    the compute environment does not say)."""

    vcpus: float
    memory_mb: int
    gpu: bool
    slots: int | None


@dataclass(frozen=True)
class WorkflowFunction:
    name: str
    config: FunctionConfig
    timeout: float
    memory_mb: int
    batch: BatchResources

    def triggered_by(self, bucket: str, key: str) -> bool:
        """Whether writing ``bucket/key`` triggers this function (an object in one of its
        input folders, at any depth, as a bucket notification with that prefix)."""
        return any(_inside(location, bucket, key) for location in self.config.input)


@dataclass(frozen=True)
class Workflow:
    path: Path
    functions: tuple[WorkflowFunction, ...]

    def triggered_by(self, bucket: str, key: str) -> list[WorkflowFunction]:
        return [function for function in self.functions if function.triggered_by(bucket, key)]

    @property
    def entry(self) -> StorageLocation:
        """Where a user uploads: the first input no function of the workflow writes to."""
        written = [output for function in self.functions for output in function.config.output]
        for function in self.functions:
            for location in function.config.input:
                if not any(_overlap(location, output) for output in written):
                    return location
        return self.functions[0].config.input[0]

    def __iter__(self) -> Iterator[WorkflowFunction]:
        return iter(self.functions)


def load_workflow(path: Path) -> Workflow:
    """Read and check a workflow file; ``ConfigError`` names the function and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the workflow {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    return parse_workflow(text, origin=str(path), base=path.resolve().parent, path=path)


def parse_workflow(
    text: str, *, origin: str = "workflow", base: Path | None = None, path: Path | None = None
) -> Workflow:
    data = _load(text, origin)
    functions_section = data.get("functions")
    entries = functions_section.get("aws") if isinstance(functions_section, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"{origin}: expected functions: {{aws: [{{lambda: {{...}}}}, ...]}} with at least "
            "one function"
        )
    unknown = fdl_problems(data)
    if unknown:
        raise ConfigError(f"{origin}:\n" + "\n".join(f"  {problem}" for problem in unknown))
    shared = data.get("storage_providers")
    functions = [
        _function(entry, f"{origin}: functions.aws[{index}]", base, shared)
        for index, entry in enumerate(entries)
    ]
    names = [function.name for function in functions]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{origin}: two functions are named {name!r}")
    workflow = Workflow(path or Path(origin), tuple(functions))
    _check_loops(workflow, origin)
    return workflow


def _load(text: str, origin: str) -> dict[str, Any]:
    data = load_yaml(text, origin)
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping with a functions key")
    return data


def _function(entry: Any, where: str, base: Path | None, shared: Any) -> WorkflowFunction:
    if not isinstance(entry, dict) or not isinstance(entry.get("lambda"), dict):
        raise ConfigError(f"{where}: expected a mapping with a lambda section")
    section: dict[str, Any] = dict(entry["lambda"])
    name = section.get("name")
    where = f"{where} ({name})" if isinstance(name, str) and name else where
    batch_section = entry.get("batch") or {}
    if not isinstance(batch_section, dict):
        raise ConfigError(f"{where}.batch: expected a mapping")
    limits = _validate(_LambdaLimits, section, f"{where}.lambda")
    resources = _validate(_BatchSection, batch_section, f"{where}.batch")
    definition = dict(section)
    inner_batch = definition.get("batch")
    definition["batch"] = {
        **(inner_batch if isinstance(inner_batch, dict) else {}),
        **batch_section,
    }
    if shared is not None and "storage_providers" not in definition:
        definition["storage_providers"] = shared
    config = parse_config(json.dumps(definition), origin=f"{where}.lambda", base=base, strict=True)
    if not config.input:
        raise ConfigError(f"{where}.lambda.input: a function of a workflow needs an input folder")
    maximum = resources.compute_resources.max_v_cpus
    slots = None if maximum is None else max(1, int(maximum // resources.vcpus))
    return WorkflowFunction(
        name=config.name,
        config=config,
        timeout=limits.timeout,
        memory_mb=limits.memory,
        batch=BatchResources(resources.vcpus, resources.memory, resources.enable_gpu, slots),
    )


def _validate(model: type[_M], data: Mapping[str, Any], where: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {'; '.join(describe(exc))}") from None


def _inside(location: StorageLocation, bucket: str, key: str) -> bool:
    if location.bucket != bucket:
        return False
    folder = location.folder
    return not folder or key.startswith(folder + "/")


def _overlap(first: StorageLocation, second: StorageLocation) -> bool:
    """Whether an object can be in both folders (one folder holds the other)."""
    if first.bucket != second.bucket:
        return False
    a, b = _parts(first.folder), _parts(second.folder)
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _parts(folder: str) -> list[str]:
    return [part for part in folder.split("/") if part]


def _check_loops(workflow: Workflow, origin: str) -> None:
    """Refuse a function whose outputs reach its own inputs, directly or through others."""
    feeds: dict[str, list[str]] = {
        function.name: [
            other.name
            for other in workflow.functions
            if any(
                _overlap(output, location)
                for output in function.config.output
                for location in other.config.input
            )
        ]
        for function in workflow.functions
    }

    # A depth-first search that visits each function once (time linear in the links): a
    # link back to a function still on the current path closes a loop.
    done: set[str] = set()
    for function in workflow.functions:
        if function.name in done:
            continue
        path = [function.name]
        on_path = {function.name}
        pending = [iter(feeds[function.name])]
        while pending:
            successor = next(pending[-1], None)
            if successor is None:
                pending.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif successor in on_path:
                loop = " -> ".join([*path[path.index(successor) :], successor])
                raise ConfigError(
                    f"{origin}: the functions trigger themselves ({loop}): an output folder is "
                    "also an input folder on that path, so the workflow would never end"
                )
            elif successor not in done:
                path.append(successor)
                on_path.add(successor)
                pending.append(iter(feeds[successor]))
