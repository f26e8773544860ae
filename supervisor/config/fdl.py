"""The multi-function files of deployment tools: SCAR's FDL and OSCAR's.

``functions: {aws: [{lambda: ..., batch: ...}], oscar: [{CLUSTER: service}]}``:
``fdl_functions`` lists each function's definition as a mapping, ``select_function`` picks
one by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supervisor.errors import ConfigError

__all__ = ["fdl_functions", "select_function"]


def fdl_functions(data: Mapping[str, Any], origin: str) -> list[tuple[str, dict[str, Any]]]:
    """Each function of a multi-function file, as (where, its definition as a mapping).

    An ``aws`` entry is SCAR's: its ``lambda`` section, with its ``batch`` section merged
    into ``batch``; an ``oscar`` entry maps a cluster name to a service definition.  The
    file's top-level ``storage_providers`` apply to functions that have none of their own.
    """
    section = data.get("functions")
    if not isinstance(section, dict):
        raise ConfigError(f"{origin}: expected functions: {{aws: [...]}} or {{oscar: [...]}}")
    shared = data.get("storage_providers")
    found: list[tuple[str, dict[str, Any]]] = []
    for provider in ("aws", "oscar"):
        entries = section.get(provider)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise ConfigError(f"{origin}: functions.{provider} must be a list")
        for index, entry in enumerate(entries):
            where = f"{origin}: functions.{provider}[{index}]"
            definition = (
                _aws_entry(entry, where) if provider == "aws" else _oscar_entry(entry, where)
            )
            if shared is not None and "storage_providers" not in definition:
                definition["storage_providers"] = shared
            found.append((where, definition))
    if not found:
        raise ConfigError(f"{origin}: functions holds no function (expected aws: or oscar:)")
    return found


def select_function(
    data: Mapping[str, Any], name: str | None, origin: str
) -> tuple[dict[str, Any], str]:
    """The definition of function ``name`` (or the only one) of a multi-function file."""
    found = fdl_functions(data, origin)
    names = [str(definition.get("name")) for _, definition in found]
    if name is None:
        if len(found) > 1:
            raise ConfigError(
                f"{origin}: defines {len(found)} functions ({', '.join(names)}): "
                "pick one with --function NAME"
            )
        where, definition = found[0]
        return definition, where
    for where, definition in found:
        if definition.get("name") == name:
            return definition, where
    raise ConfigError(f"{origin}: no function named {name!r} (it defines {', '.join(names)})")


def _aws_entry(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("lambda"), dict):
        raise ConfigError(f"{where}: expected a mapping with a lambda section")
    definition = dict(entry["lambda"])
    batch = entry.get("batch")
    if batch is not None and not isinstance(batch, dict):
        raise ConfigError(f"{where}.batch: expected a mapping")
    inner = definition.get("batch")
    definition["batch"] = {**(inner if isinstance(inner, dict) else {}), **(batch or {})}
    return definition


def _oscar_entry(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"{where}: expected {{CLUSTER_NAME: service definition}}")
    (service,) = entry.values()
    if not isinstance(service, dict):
        raise ConfigError(f"{where}: expected a service definition mapping")
    return dict(service)
