"""Reading a function definition: its sources, its text, the environment's overrides.

``load_config`` is the only reader of the definition and of the environment variables
that override it (the sources and overrides are in ``docs/definition.md``).  It returns a
validated, frozen ``FunctionConfig`` or raises a ``ConfigError`` whose message names the
key, the value and what was expected.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from supervisor.config.definition import FunctionConfig
from supervisor.config.fdl import select_function
from supervisor.errors import ConfigError
from supervisor.shortcuts import plain_json_mapping
from supervisor.validation import describe, load_yaml

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "load_config",
    "load_definition_data",
    "parse_config",
    "validate_definition",
]

DEFAULT_CONFIG_PATH = Path("/var/task/function_config.yaml")

_OVERRIDES = {
    "LOG_LEVEL": ("log_level",),
    "EXECUTION_MODE": ("execution_mode",),
    "TIMEOUT_THRESHOLD": ("container", "timeout_threshold"),
    "IMAGE_FILE": ("container", "image_file"),
    # Where the definition cannot say it (an OSCAR service's is written by OSCAR).
    "SUPERVISOR_SCRIPT_USER": ("script_user",),
}


def load_config(
    environ: Mapping[str, str],
    path: Path | None = None,
    *,
    default_path: Path = DEFAULT_CONFIG_PATH,
    function: str | None = None,
    strict: bool = False,
) -> FunctionConfig:
    """Find, parse and validate the function definition; raise ``ConfigError`` on any fault.

    ``function`` picks one function of a multi-function file and ``strict`` refuses unknown
    keys (see ``parse_config``).
    """
    if path is not None:
        text, origin, base = _read(path), str(path), path.resolve().parent
    elif default_path.is_file():
        text, origin, base = _read(default_path), str(default_path), default_path.parent
    else:
        name = next((n for n in ("FUNCTION_CONFIG", "FDL") if environ.get(n, "").strip()), None)
        if name is None:
            raise ConfigError(
                f"no function definition: pass --config PATH, create {default_path}, "
                "or set FUNCTION_CONFIG or FDL (YAML or JSON, plain or base64)"
            )
        text, origin, base = _decode(environ[name]), f"env {name}", Path.cwd()
    return parse_config(
        text, origin=origin, base=base, environ=environ, function=function, strict=strict
    )


def parse_config(
    text: str,
    *,
    origin: str = "definition",
    base: Path | None = None,
    environ: Mapping[str, str] | None = None,
    function: str | None = None,
    strict: bool = False,
) -> FunctionConfig:
    """Validate a definition given as text; a relative ``init_script`` resolves against ``base``.

    The text is one function's definition, or a deployment tool's multi-function file (SCAR's
    FDL, ``functions: {aws: [{lambda: ..., batch: ...}], oscar: [{CLUSTER: ...}]}``), of which
    ``function`` names the one to take (the only one when ``None``).

    A key that no part of the definition reads (``outputs`` for ``output``) and a ``path``
    that starts with ``/`` are, with ``strict``, a ``ConfigError`` that lists every one with
    the closest valid key; without it (the deployed entry points, where a key added by a
    later deployment tool must not stop a function) they are in ``FunctionConfig.warnings``.
    Keys that SCAR and OSCAR write are known (``supervisor.checks.FOREIGN_KEYS``).
    """
    from supervisor import checks

    file_data = _parse_text(text, origin)
    data, function_origin, around = _one_function(file_data, function, origin)
    _override(data, environ or {})
    mistakes = checks.definition_problems(data)
    config, problems = _validate(data, base)
    if strict:
        problems = [*problems, *around, *mistakes]
    if config is None or problems:
        raise ConfigError(
            f"{function_origin}: invalid function definition:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    config._warnings = (
        *(f"{origin}: {mistake}" for mistake in around),
        *(f"{function_origin}: {mistake}" for mistake in mistakes),
    )
    return config


def _one_function(
    data: dict[str, Any], function: str | None, origin: str
) -> tuple[dict[str, Any], str, list[str]]:
    """The definition of ``function`` (the only one when None) in what a file holds, where
    it is, and the mistakes of a multi-function file around it."""
    from supervisor import checks

    if isinstance(data.get("functions"), dict):
        around = checks.fdl_problems(data)
        definition, where = select_function(data, function, origin)
        return definition, where, around
    if function is not None and data.get("name") != function:
        raise ConfigError(f"{origin}: defines function {data.get('name')!r}, not {function!r}")
    return data, origin, []


def _override(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Set the keys that the environment's variables override (``_OVERRIDES``)."""
    for variable, keys in _OVERRIDES.items():
        value = environ.get(variable, "").strip()
        if value:
            _set_nested(data, keys, value)


def validate_definition(
    data: dict[str, Any], *, base: Path | None = None
) -> tuple[FunctionConfig | None, list[str]]:
    """One function's definition, as a mapping, checked as strictly as ``validate`` does:
    the definition (None when its values are invalid) and every problem found in it."""
    from supervisor import checks

    mistakes = checks.definition_problems(data)
    config, problems = _validate(data, base)
    return config, [*problems, *mistakes]


def load_definition_data(path: Path) -> dict[str, Any]:
    """The definition file at ``path`` (YAML or JSON, plain or base64) as a mapping."""
    return _parse_text(_read(path), str(path))


def _parse_text(text: str, origin: str) -> dict[str, Any]:
    # ConfigError is raised "from None" here and below: PyYAML's and pydantic's errors quote
    # the values, credentials included, and a traceback would print them.
    data: Any = plain_json_mapping(text)
    if data is None:
        data = load_yaml(text, origin, kind="YAML or JSON")
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys, got {type(data).__name__}")
    return data


def _validate(data: dict[str, Any], base: Path | None) -> tuple[FunctionConfig | None, list[str]]:
    """The definition (None when invalid) and its schema errors, one line each."""
    try:
        config = FunctionConfig.model_validate(data)
    except ValidationError as exc:
        return None, describe(exc)
    if config.init_script is not None and not config.init_script.is_absolute() and base:
        config = config.model_copy(update={"init_script": base / config.init_script})
    image_file = config.container.image_file
    if image_file and not Path(image_file).is_absolute() and base:
        container = config.container.model_copy(update={"image_file": str(base / image_file)})
        config = config.model_copy(update={"container": container})
    config._data = data
    return config, []


def _read(path: Path) -> str:
    try:
        return _decode(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the function definition {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc


def _decode(text: str) -> str:
    """Plain YAML/JSON stays as it is; base64 of it is decoded."""
    compact = "".join(text.split())
    if not compact or ":" in compact or "{" in compact:
        return text
    try:
        return base64.b64decode(compact, validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error, a character outside ASCII), or not UTF-8
        return text


def _set_nested(data: dict[str, Any], keys: tuple[str, ...], value: str) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value
