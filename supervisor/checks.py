"""Mistakes in a function definition, found before they cost a run.

``definition_problems`` walks a definition as it was written against the models of
``supervisor.config`` and names every key that none of them reads, with the closest valid
key (``output[0]: unknown key 'sufix' (did you mean 'suffix'?)``), and every ``path`` that
starts with ``/``.  Keys that SCAR and OSCAR write into definitions for their own use
(``FOREIGN_KEYS``) are known.  ``parse_config`` turns these problems into a ``ConfigError``
in strict mode (``validate``, local runs) and into warnings otherwise (the deployed entry
points, where a key added by a later SCAR or OSCAR must not stop a function).

``check_file`` and ``check_workflow`` are what ``python -m supervisor validate`` and
``workflow validate`` print: for each function of a definition, a SCAR FDL file or a
workflow, its name or every problem found (schema, unknown keys, paths, a missing script).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from supervisor.config import (
    BatchSettings,
    ContainerSettings,
    FunctionConfig,
    MultiNodeSettings,
    OutputLocation,
    StorageLocation,
    fdl_functions,
    load_definition_data,
    validate_definition,
)
from supervisor.errors import ConfigError

__all__ = [
    "FDL_KEYS",
    "FOREIGN_KEYS",
    "Report",
    "check_file",
    "check_workflow",
    "definition_problems",
    "fdl_problems",
    "unknown_keys",
]

# Keys that deployment tools write into a function definition for their own use: a walk
# over the definition knows them, and neither warns nor fails for them.
_OSCAR_STORAGE_IO = frozenset(
    # OSCAR 4.1.2, pkg/types/storage.go, StorageIOConfig (input, output and mount).
    {"options"}
)
FOREIGN_KEYS: dict[type[BaseModel], frozenset[str]] = {
    FunctionConfig: frozenset(
        {
            # SCAR 4.3.1 writes its whole lambda section into function_config.yaml and FDL:
            # scar/parser/cfgfile.py (_DEFAULT_CFG["aws"]["lambda"]),
            "boto_profile",
            "region",
            "timeout",
            "memory",
            "description",
            "runtime",
            "layers",
            "invocation_type",
            "asynchronous",
            "log_type",
            "environment",
            "deployment",
            "supervisor",
            # scar/parser/cli/__init__.py (_parse_lambda_args),
            "run_script",
            "c_args",
            "timeout_threshold",
            "image",
            "image_file",
            "lambda_role",
            "extra_payload",
            "list_layers",
            "preheat",
            # scar/providers/aws/controller.py (_add_tags, _add_handler, _add_config_file_path),
            "tags",
            "handler",
            "config_path",
            # scar/providers/aws/lambdafunction.py and functioncode.py (create_function_config).
            "arn",
            "architectures",
            "vpc",
            "file_system",
            "payload",
            "ecr",
            # OSCAR writes its service whole (Service.ToYAML, the json names of the Service
            # struct in pkg/types/service.go) at /oscar/config/function_config.yaml;
            # the fields of 3.0.0, 3.7.1 and 4.1.2:
            "cluster_id",
            "cpu",
            "total_memory",
            "total_cpu",
            "ephemeral_storage_request",
            "enable_gpu",
            "enable_sgx",
            "image_prefetch",
            "synchronous",
            "replicas",
            "delegation",
            "rescheduler_threshold",
            "federation",
            "alpine",
            "token",
            "script",
            "image_pull_secrets",
            "expose",
            "annotations",
            "vo",
            "labels",
            "clusters",
            "owner",
            "namespace",
            "interlink_node_name",
            "visibility",
            "allowed_users",
            "isolation_level",
            "bucket_list",
            "mount",
            "volume",
            "volume_status",
            "kserve",
            # SCAR 4.3.1's defaults for an oscar function (scar/parser/cfgfile.py,
            # _DEFAULT_CFG["oscar"]["my_oscar"]).
            "endpoint",
            "auth_user",
            "auth_password",
            "ssl_verify",
        }
    ),
    ContainerSettings: frozenset(
        # SCAR 4.3.1: scar/parser/cli/__init__.py (_get_lambda_environment_variables),
        # scar/providers/aws/containerimage.py (alpine), lambdafunction.py (create_image).
        {"extra_payload", "init_script", "alpine", "create_image"}
    ),
    BatchSettings: frozenset(
        # SCAR 4.3.1's batch section of an FDL function (scar/parser/cfgfile.py,
        # _DEFAULT_CFG["aws"]["batch"]; scar/providers/aws/batchfunction.py).
        {
            "boto_profile",
            "region",
            "vcpus",
            "memory",
            "enable_gpu",
            "state",
            "type",
            "environment",
            "compute_resources",
            "service_role",
        }
    ),
    MultiNodeSettings: frozenset(
        # SCAR 4.3.1, _DEFAULT_CFG["aws"]["batch"]["multi_node_parallel"].
        {"number_nodes", "main_node_index"}
    ),
    StorageLocation: _OSCAR_STORAGE_IO,
    OutputLocation: _OSCAR_STORAGE_IO,
}

# The keys of a multi-function file (SCAR's FDL, OSCAR's FDL, a workflow) around the
# function definitions: SCAR 4.3.1 scar/parser/fdl.py (functions, storage_providers, scar)
# and scar/parser/cfgfile.py (the sections of an aws function: _DEFAULT_CFG["aws"]).
FDL_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({"functions", "storage_providers", "scar"}),
    "functions": frozenset({"aws", "oscar"}),
    "functions.aws[]": frozenset(
        {"lambda", "batch", "iam", "s3", "api_gateway", "cloudwatch", "ecr"}
    ),
}


def unknown_keys(
    data: object, model: type[BaseModel] = FunctionConfig, where: str = ""
) -> list[str]:
    """Every key of ``data`` that ``model`` (and the models under it) does not read, with
    its dotted path and the closest valid key."""
    if not isinstance(data, Mapping):
        return []
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        fields[name] = field.annotation
        if field.alias:
            fields[field.alias] = field.annotation
    foreign = FOREIGN_KEYS.get(model, frozenset())
    found: list[str] = []
    for key, value in data.items():
        name = str(key)
        if name in fields:
            found.extend(_descend(fields[name], value, _join(where, name)))
        elif name not in foreign:
            found.append(_unknown(where, name, list(fields), foreign))
    return found


def fdl_problems(data: Mapping[str, Any]) -> list[str]:
    """The unknown keys of a multi-function file outside its function definitions."""
    found = _unknown_among(data, "", FDL_KEYS[""])
    functions = data.get("functions")
    if isinstance(functions, Mapping):
        found.extend(_unknown_among(functions, "functions", FDL_KEYS["functions"]))
        entries = functions.get("aws")
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                if isinstance(entry, Mapping):
                    where = f"functions.aws[{index}]"
                    found.extend(_unknown_among(entry, where, FDL_KEYS["functions.aws[]"]))
    return found


def definition_problems(data: Mapping[str, Any]) -> list[str]:
    """What strict mode refuses in one function's definition as written: unknown keys,
    and paths that start with ``/`` (read as if the ``/`` were not there)."""
    return [*unknown_keys(data), *_path_problems(data)]


@dataclass(frozen=True)
class Report:
    """What was found in one function of a checked file (``part``: where in a
    multi-function file, ``""`` for a file of one function): its definition when it is
    valid, else every problem found."""

    origin: str
    part: str
    config: FunctionConfig | None
    problems: tuple[str, ...]
    name: str = ""

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.problems

    def lines(self) -> list[str]:
        """What ``validate`` prints for this function."""
        where = f" ({self.part})" if self.part else ""
        if self.config is not None and not self.problems:
            config = self.config
            return [f"OK: function {config.name}, execution_mode {config.execution_mode}{where}"]
        header = f"{self.origin}: {self.part}" if self.part else self.origin
        if self.part and self.name:
            header = f"{header} ({self.name})"
        return [f"{header}:", *(f"  {problem}" for problem in self.problems)]


def check_file(path: Path, function: str | None = None) -> list[Report]:
    """Check a function definition, or every function of a SCAR FDL file (``function`` only).

    A file that cannot be read or parsed is one report with that problem.
    """
    origin = str(path)
    try:
        data = load_definition_data(path)
    except ConfigError as exc:
        return [Report(origin, "", None, (str(exc).removeprefix(f"{origin}: "),))]
    base = path.resolve().parent
    if not isinstance(data.get("functions"), Mapping):
        if function is not None and data.get("name") != function:
            problem = f"defines function {data.get('name')!r}, not {function!r}"
            return [Report(origin, "", None, (problem,))]
        return [_check_function(data, origin, "", base)]
    return _check_fdl(data, origin, base, function)


def check_workflow(path: Path) -> list[Report]:
    """Check a workflow file: each function as ``check_file`` does, then the workflow as a
    whole (two functions of one name, a loop, a function without an input)."""
    from supervisor.workflow import load_workflow

    reports = check_file(path)
    if all(report.ok for report in reports):
        try:
            load_workflow(path)
        except ConfigError as exc:
            problem = str(exc).removeprefix(f"{path}: ")
            reports.append(Report(str(path), "", None, (problem,)))
    return reports


def _check_fdl(
    data: Mapping[str, Any], origin: str, base: Path, function: str | None
) -> list[Report]:
    try:
        found = fdl_functions(data, origin)
    except ConfigError as exc:
        return [Report(origin, "", None, (str(exc).removeprefix(f"{origin}: "),))]
    reports = []
    outside = fdl_problems(data)
    if outside:
        reports.append(Report(origin, "", None, tuple(outside)))
    if function is not None:
        names = ", ".join(str(definition.get("name")) for _, definition in found)
        found = [(where, data) for where, data in found if data.get("name") == function]
        if not found:
            problem = f"no function named {function!r} (it defines {names})"
            return [*reports, Report(origin, "", None, (problem,))]
    for where, definition in found:
        part = where.removeprefix(f"{origin}: ")
        reports.append(_check_function(definition, origin, part, base))
    return reports


def _check_function(data: Mapping[str, Any], origin: str, part: str, base: Path) -> Report:
    name = data.get("name")
    config, problems = validate_definition(dict(data), base=base)
    problems.extend(_script_problems(data, base))
    valid = config if not problems else None
    return Report(origin, part, valid, tuple(problems), name if isinstance(name, str) else "")


def _script_problems(data: Mapping[str, Any], base: Path) -> list[str]:
    """Whether ``init_script`` (relative to the definition's folder) is a file."""
    written = data.get("init_script")
    if not isinstance(written, str) or not written.strip():
        return []
    script = base / written
    if not script.exists():
        return [f"init_script: {written!r} not found (looked for {script})"]
    if not script.is_file():
        return [f"init_script: {written!r} is not a file ({script})"]
    return []


def _path_problems(data: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for section in ("input", "output"):
        locations = data.get(section)
        if not isinstance(locations, list):
            continue
        for index, location in enumerate(locations):
            path = location.get("path") if isinstance(location, Mapping) else None
            if isinstance(path, str) and path.strip().startswith("/"):
                found.append(
                    f"{section}[{index}].path: {path!r} starts with '/': "
                    f"write {path.strip().strip('/')!r}"
                )
    return found


def _descend(annotation: Any, value: object, where: str) -> list[str]:
    """The unknown keys of ``value``, read as ``annotation`` says (a model, a mapping of
    models, a tuple of models, or an optional or annotated one of those)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _descend(args[0], value, where)
    if origin is typing.Union or origin is types.UnionType:
        models = [arg for arg in args if _is_model(arg)]
        return _descend(models[0], value, where) if models else []
    if _is_model(annotation):
        return unknown_keys(value, annotation, where)
    if origin is dict and isinstance(value, Mapping) and len(args) == 2:
        return [
            problem
            for key, item in value.items()
            for problem in _descend(args[1], item, _join(where, str(key)))
        ]
    if origin in (tuple, list) and isinstance(value, list) and args:
        return [
            problem
            for index, item in enumerate(value)
            for problem in _descend(args[0], item, f"{where}[{index}]")
        ]
    return []


# An unknown key longer than this is shown by its start.
_KEY_SHOWN = 60


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _unknown_among(data: Mapping[str, Any], where: str, known: frozenset[str]) -> list[str]:
    return [_unknown(where, str(key), sorted(known)) for key in data if str(key) not in known]


def _unknown(where: str, key: str, valid: list[str], foreign: frozenset[str] = frozenset()) -> str:
    close = difflib.get_close_matches(key, valid, n=1) or difflib.get_close_matches(
        key, sorted(foreign), n=1
    )
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = key if len(key) <= _KEY_SHOWN else key[: _KEY_SHOWN - 3] + "..."
    message = f"unknown key {shown!r}{hint}"
    return f"{where}: {message}" if where else message
