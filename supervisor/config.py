"""The function definition: where it comes from, what it may hold, how it is checked.

``load_config`` is the only reader of the definition and of the environment variables
that override it (the sources and overrides are in ``docs/definition.md``).  It returns a
validated, frozen ``FunctionConfig`` or raises a ``ConfigError`` whose message names the
key, the value and what was expected.  ``load_settings`` reads the few facts about the host
(Lambda zip or image runtime, Batch, a local run) that the runtime needs to pick its parts.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from supervisor import storage
from supervisor.errors import ConfigError
from supervisor.models import Model as _Model
from supervisor.storage.s3 import DEFAULT_MINIO_ENDPOINT
from supervisor.validation import describe, load_yaml

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
    "IdempotencySettings",
    "OutputLocation",
    "Platform",
    "Settings",
    "StorageLocation",
    "StorageProviders",
    "UdockerSettings",
    "fdl_functions",
    "load_config",
    "load_definition_data",
    "load_settings",
    "parse_config",
    "select_function",
    "validate_definition",
]

DEFAULT_CONFIG_PATH = Path("/var/task/function_config.yaml")
# The storage types, as ``supervisor.storage`` registers them; no type is added afterwards.
_STORAGE_TYPES = storage.freeze()
PROVIDER_TYPES = tuple(kind.name for kind in _STORAGE_TYPES)
# Types an OSCAR definition may hold that no transfer here can use: a definition naming
# them is valid, and an invocation that routes an input or output to one fails.
UNSUPPORTED_PROVIDER_TYPES = tuple(kind.name for kind in _STORAGE_TYPES if kind.unsupported)

ExecutionMode = Literal["lambda", "batch", "lambda-batch"]
# timeout: ran past the deadline; failure: a non-zero exit; resources: the input does not fit
# in /tmp, or the script was killed by SIGKILL (out of memory), which is also a failure.
DelegateReason = Literal["timeout", "failure", "resources"]
Platform = Literal["lambda-zip", "lambda-image", "batch", "oscar", "local"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# udocker's execution modes: P proot, F fakechroot, R runc/crun, S singularity.
ExecMode = Literal["P1", "P2", "F1", "F2", "F3", "F4", "R1", "R2", "R3", "S1"]


def _to_text(value: object) -> object:
    """YAML turns `1`, `true` and `1.5` into numbers; the script's environment wants text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _log_level(value: object) -> object:
    """A Python logging level name, as OSCAR and faas-supervisor pass it, in our five names.

    OSCAR writes one of NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL (``""`` when unset);
    NOTSET, "no threshold", shows everything, like DEBUG; WARN and FATAL are Python's aliases.
    """
    if value is None:
        return "INFO"
    if not isinstance(value, str):
        return value
    name = value.strip().upper()
    return _LOG_LEVEL_ALIASES.get(name, name)


_LOG_LEVEL_ALIASES = {"": "INFO", "NOTSET": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}


def _as_tuple(value: object) -> object:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return value


# The JSON Schema (docs/schema/function.json) says what these accept before conversion.
Text = Annotated[
    str, BeforeValidator(_to_text), WithJsonSchema({"type": ["string", "number", "boolean"]})
]
Strings = Annotated[
    tuple[str, ...],
    BeforeValidator(_as_tuple),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class StorageLocation(_Model):
    """An input or output: ``storage_provider`` is ``TYPE`` or ``TYPE.ID``; ``path`` is
    ``bucket/folder``."""

    storage_provider: str = Field(
        default="s3",
        description="`TYPE` or `TYPE.ID` of a provider under `storage_providers` "
        "(`s3`, `minio.lab`...); a bare type is its `default` ID.",
    )
    path: str = Field(description="`bucket` or `bucket/folder`, without `s3://` or a leading `/`.")

    @field_validator("storage_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        # OSCAR and faas-supervisor read the type whatever its case; an ID may hold dots.
        kind, dot, ident = value.strip().partition(".")
        kind = kind.lower()
        if kind not in PROVIDER_TYPES or (dot and not ident):
            raise ValueError(f"expected one of {', '.join(PROVIDER_TYPES)}, optionally as TYPE.ID")
        return f"{kind}{dot}{ident}"

    @field_validator("path")
    @classmethod
    def _has_bucket(cls, value: str) -> str:
        scheme, separator, rest = value.strip().partition("://")
        if separator and scheme.isalnum():
            raise ValueError(f"write {rest.strip('/')!r} without '{scheme}://'")
        # A leading "/" is read as if it were not there (strict mode refuses it: see
        # ``supervisor.checks``).
        cleaned = value.strip().strip("/")
        if not cleaned:
            raise ValueError("expected 'bucket' or 'bucket/folder'")
        parts = cleaned.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError("expected 'bucket/folder' without empty, '.' or '..' parts")
        return cleaned

    @property
    def provider_type(self) -> str:
        return self.storage_provider.partition(".")[0]

    @property
    def provider_id(self) -> str:
        return self.storage_provider.partition(".")[2] or "default"

    @property
    def bucket(self) -> str:
        return self.path.partition("/")[0]

    @property
    def folder(self) -> str:
        """The key prefix inside the bucket, no slash at either end ('' for the bucket root)."""
        return self.path.partition("/")[2]


class OutputLocation(StorageLocation):
    """An output; a file goes here when any prefix and any suffix match (empty lists match all)."""

    prefix: Strings = Field(
        default=(),
        description="File name prefixes (relative to the output folder); any one matches. "
        "Empty: every file.",
    )
    suffix: Strings = Field(
        default=(),
        description="File name suffixes such as `.txt`; any one matches. Empty: every file.",
    )


class _StorageSections(_Model):
    """``storage_providers``: one section per storage type (the fields of ``StorageProviders``,
    derived from the registry), each mapping a provider ID to its settings."""

    def of(self, kind: str) -> dict[str, Any]:
        """The providers of type ``kind``, by ID."""
        providers: dict[str, Any] = getattr(self, kind)
        return providers

    def secrets(self) -> tuple[str, ...]:
        """Every credential value held here, for the log redaction filter."""
        found: list[str] = []
        for kind in type(self).model_fields:
            for provider in self.of(kind).values():
                for field in type(provider).model_fields:
                    secret = getattr(provider, field)
                    value = secret.get_secret_value() if isinstance(secret, SecretStr) else ""
                    if value and value not in _PLACEHOLDERS:
                        found.append(value)
        return tuple(dict.fromkeys(found))

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: object) -> object:
        """``null`` for a type, or for an ID, is an empty mapping (YAML's ``webdav:`` alone)."""
        if not isinstance(data, Mapping):
            return data
        return {
            key: _empty_if_null(value) if key in cls.model_fields else value
            for key, value in data.items()
        }


def _empty_if_null(value: object) -> object:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {key: {} if item is None else item for key, item in value.items()}
    return value


# What OSCAR writes for the keys of its own MinIO, whose real keys it mounts as a secret:
# no credential, and redacting the word from every log line would only garble them.
_PLACEHOLDERS = ("hidden",)

if TYPE_CHECKING:
    StorageProviders = _StorageSections
else:
    StorageProviders = create_model(
        "StorageProviders",
        __base__=_StorageSections,
        __module__=__name__,
        **{
            kind.name: (
                dict[str, kind.settings],
                Field(default_factory=dict, description=kind.description),
            )
            for kind in _STORAGE_TYPES
        },
    )


class ContainerEnvironment(_Model):
    variables: dict[str, Text] = Field(
        default_factory=dict,
        alias="Variables",
        description="Environment variables for the script; numbers and booleans become text.",
    )


class ContainerSettings(_Model):
    image: str | None = Field(
        default=None,
        description="Image to run the script in with udocker (Lambda zip runtime only).",
    )
    image_file: str | None = Field(
        default=None,
        description="Local image tarball (`docker save` or a root filesystem) instead of "
        "`image`, relative to the definition file. Env `IMAGE_FILE` overrides it.",
    )
    timeout_threshold: float = Field(
        default=2.0,
        ge=0,
        le=900,
        description="Seconds kept before the deadline: the script is killed at the deadline "
        "less this, leaving time to hand the work to Batch. Env `TIMEOUT_THRESHOLD` overrides it.",
    )
    environment: ContainerEnvironment = Field(
        default_factory=ContainerEnvironment,
        description="Variables for the script, under `Variables`.",
    )
    # The script gets the supervisor's AWS credentials (and region) only when this says so.
    pass_aws_credentials: bool = Field(
        default=False,
        description="Give the script the function's own AWS credentials and region.",
    )


class UdockerSettings(_Model):
    """How udocker runs ``container.image`` (the Lambda zip runtime).

    ``execmode`` ``None`` lets the runtime choose: F1 in Lambda, where ptrace (and so
    proot, the P modes) is not allowed, else P1.
    """

    execmode: Annotated[ExecMode, BeforeValidator(_upper)] | None = Field(
        default=None,
        description="udocker execution mode; unset: F1 in Lambda (no ptrace there), else P1.",
    )


class MultiNodeSettings(_Model):
    enabled: bool = Field(
        default=False,
        description="Submit multi-node parallel jobs (the environment goes to nodes `0:`).",
    )


class BatchSettings(_Model):
    job_queue: str | None = Field(
        default=None, description="Job queue; unset: the function's name."
    )
    job_definition: str | None = Field(
        default=None, description="Job definition; unset: the function's name."
    )
    multi_node_parallel: MultiNodeSettings = Field(
        default_factory=MultiNodeSettings, description="Multi-node parallel jobs."
    )
    delegate_on: tuple[DelegateReason, ...] = Field(
        default=("timeout", "failure", "resources"),
        description="In `lambda-batch` mode, when a record goes to Batch: the script ran past "
        "the deadline, failed, or ran out of space or memory.",
    )
    timeout: float | None = Field(
        default=None, gt=0, description="Seconds a Batch job may run the script; unset: no limit."
    )
    event_store: str | None = Field(
        default=None,
        description="Where events too large for a job request are kept: `bucket/folder` on the "
        "default S3 provider, or `TYPE.ID://bucket/folder` on another provider of the function; "
        "unset: the first S3 output's (or input's) bucket, under `.supervisor-events/`.",
    )
    log_group: str | None = Field(
        default=None,
        description="CloudWatch Logs group for a Batch job's log (the stream is the job id).",
    )
    # The job's attempts (its retry strategy), sent with each job; unset, the job
    # definition's own apply and a failed job keeps its stored event (it may be retried).
    attempts: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Attempts of each job, sent as its retry strategy; unset: the job "
        "definition's, and a failed job keeps its stored event.",
    )


_DYNAMODB_TABLE = r"[A-Za-z0-9_.-]{3,255}"
# A table name, or its ARN.
_TABLE_PATTERN = (
    rf"{_DYNAMODB_TABLE}|arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{{12}}:table/{_DYNAMODB_TABLE}"
)


class IdempotencySettings(_Model):
    """Hand each delivery of an invocation to Batch once, with records in a DynamoDB table.

    ``table`` (a name or an ARN; partition key ``id``, a string) turns it on; a record keeps
    a delivery's job id for ``expires_after_seconds``.  Used in Lambda, where retries reuse
    the request id; see ``supervisor.idempotency``.
    """

    table: str | None = Field(
        default=None,
        description="DynamoDB table (name or ARN; partition key `id`, a string) recording "
        "each delegation, so that a retried delivery submits no second job.",
    )
    expires_after_seconds: int = Field(
        default=3600, ge=60, description="How long a delivery's record is kept."
    )

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_TABLE_PATTERN, value):
            raise ValueError(
                "expected a DynamoDB table name (3 to 255 letters, digits, '_', '-', '.') "
                "or a table ARN"
            )
        return value


# A user and an optional group, each a name or a number.
_SCRIPT_USER = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$"


class FunctionConfig(_Model):
    """One function's definition, as deployment tools write it."""

    name: str = Field(
        min_length=1,
        description="The function's name; also the default Batch job queue and job definition.",
    )
    execution_mode: ExecutionMode = Field(
        default="lambda",
        description="`lambda`: run in Lambda; `batch`: hand every event to AWS Batch; "
        "`lambda-batch`: run in Lambda, hand to Batch on timeout, failure or lack of resources. "
        "Env `EXECUTION_MODE` overrides it.",
    )
    log_level: Annotated[LogLevel, BeforeValidator(_log_level)] = Field(
        default="INFO",
        description="Log level; `NOTSET` reads as `DEBUG`, empty as `INFO`. "
        "Env `LOG_LEVEL` overrides it.",
    )
    init_script: Path | None = Field(
        default=None,
        description="The script to run, relative to the definition file.",
    )
    allow_event_script: bool = Field(
        default=True,
        description="Accept a caller's `script` (and `cmd_args` for an image) in a direct "
        "invocation.",
    )
    # False: an object record must lie under one of ``input`` (when there is any).
    allow_any_input: bool = Field(
        default=False,
        description="Accept objects outside the `input` locations.",
    )
    file_stage_in: bool = Field(default=False, description="`true`: do not download the input.")
    # Who runs the script where the supervisor runs as root: ``root``, or a user (``nobody``,
    # a name, ``UID``, ``UID:GID``); unset, ``nobody`` in a Batch job or an OSCAR service.
    script_user: str | None = Field(
        default=None,
        pattern=_SCRIPT_USER,
        description="Who runs the script where the supervisor runs as root (Batch, OSCAR): "
        "`root`, a name, `UID` or `UID:GID`; unset: `nobody`. "
        "Env `SUPERVISOR_SCRIPT_USER` overrides it.",
    )
    container: ContainerSettings = Field(
        default_factory=ContainerSettings,
        description="The script's image, variables and time reserve.",
    )
    input: tuple[StorageLocation, ...] = Field(
        default=(), description="Where input files come from; objects elsewhere are refused."
    )
    output: tuple[OutputLocation, ...] = Field(
        default=(),
        description="Where output files go: each file to every output whose prefix and suffix "
        "match.",
    )
    storage_providers: StorageProviders = Field(
        default_factory=StorageProviders, description="Credentials and endpoints, by type and ID."
    )
    batch: BatchSettings = Field(
        default_factory=BatchSettings, description="Delegation to AWS Batch."
    )
    udocker: UdockerSettings = Field(
        default_factory=UdockerSettings, description="How udocker runs `container.image`."
    )
    idempotency: IdempotencySettings = Field(
        default_factory=IdempotencySettings,
        description="One Batch job per delivery, even when Lambda retries.",
    )
    _data: Any = PrivateAttr(default=None)
    _warnings: tuple[str, ...] = PrivateAttr(default=())

    @property
    def warnings(self) -> tuple[str, ...]:
        """The definition's mistakes that a lenient ``parse_config`` let pass (unknown
        keys, a path starting with ``/``), each naming where the definition came from."""
        return self._warnings

    @property
    def source_text(self) -> str:
        """The definition as it was given (with the environment's overrides applied)."""
        if self._data is None:
            return ""
        import yaml

        return yaml.safe_dump(self._data, sort_keys=False)

    @property
    def job_queue(self) -> str:
        return self.batch.job_queue or self.name

    @property
    def job_definition(self) -> str:
        return self.batch.job_definition or self.name

    @property
    def timeout_threshold(self) -> float:
        return self.container.timeout_threshold


# Beyond these a JSON definition goes to PyYAML (see ``_as_json``): it refuses keys of over
# 1,024 characters, and nesting a few hundred deep.
_JSON_MAX_KEY = 1000
_JSON_MAX_BRACKETS = 100

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

    data = _parse_text(text, origin)
    around: list[str] = []
    file_origin = origin
    if isinstance(data.get("functions"), dict):
        around = checks.fdl_problems(data)
        data, origin = select_function(data, function, origin)
    elif function is not None and data.get("name") != function:
        raise ConfigError(f"{origin}: defines function {data.get('name')!r}, not {function!r}")
    for variable, keys in _OVERRIDES.items():
        value = (environ or {}).get(variable, "").strip()
        if value:
            _set_nested(data, keys, value)
    mistakes = checks.definition_problems(data)
    config, problems = _validate(data, base)
    if strict:
        problems = [*problems, *around, *mistakes]
    if config is None or problems:
        raise ConfigError(
            f"{origin}: invalid function definition:\n" + "\n".join(f"  {p}" for p in problems)
        )
    config._warnings = (
        *(f"{file_origin}: {mistake}" for mistake in around),
        *(f"{origin}: {mistake}" for mistake in mistakes),
    )
    return config


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
    data: Any = _as_json(text)
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


def _as_json(text: str) -> dict[str, Any] | None:
    """The definition read by the json module, where YAML would read it alike; else None.

    JSON is YAML, but PyYAML reads a few JSON texts otherwise (an escape, a number with an
    exponent, NaN, a tab, a character it does not print, a key of over 1,024 characters,
    deep nesting): those, and anything that is not a JSON object, go to PyYAML, which is
    not even imported for the others.
    """
    if not text.isascii() or any(char in text for char in "\\\t\x7f"):
        return None
    if text.count("{") + text.count("[") > _JSON_MAX_BRACKETS:
        return None
    try:
        data = json.loads(
            text,
            parse_float=_plain_float,
            parse_constant=_no_constant,
            object_pairs_hook=_short_keys,
        )
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _plain_float(literal: str) -> float:
    if "e" in literal or "E" in literal:
        raise ValueError(f"YAML 1.1 reads {literal} as text")
    return float(literal)


def _no_constant(literal: str) -> Any:
    raise ValueError(f"YAML reads {literal} as text")


def _short_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if any(len(key) > _JSON_MAX_KEY for key, _ in pairs):
        raise ValueError("PyYAML refuses a key this long")
    return dict(pairs)


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


@dataclass(frozen=True)
class Settings:
    """What the host tells the runtime through its environment."""

    platform: Platform
    storage_root: Path | None
    work_root: Path
    batch_job_id: str | None
    log_group: str | None
    # Which attempt of its Batch job this is (AWS_BATCH_JOB_ATTEMPT, from 1), when known.
    batch_job_attempt: int | None = None
    # Where the local storage announces the objects it writes (a local workflow's jobs).
    storage_events: Path | None = None

    @property
    def in_lambda(self) -> bool:
        return self.platform in ("lambda-zip", "lambda-image")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Tell the Lambda zip runtime, the Lambda image runtime, a Batch job and a local run apart."""
    execution_env = environ.get("AWS_EXECUTION_ENV", "")
    platform: Platform
    if execution_env.startswith("AWS_Lambda_Image"):
        platform = "lambda-image"
    elif execution_env.startswith("AWS_Lambda_"):
        platform = "lambda-zip"
    elif environ.get("AWS_BATCH_JOB_ID") or environ.get("SUPERVISOR_BATCH_JOB_ID"):
        platform = "batch"
    else:
        platform = "local"
    root = environ.get("SUPERVISOR_STORAGE_ROOT", "").strip()
    events = environ.get("SUPERVISOR_STORAGE_EVENTS", "").strip()
    return Settings(
        platform=platform,
        storage_root=Path(root) if root else None,
        work_root=Path(environ.get("SUPERVISOR_WORK_DIR", "").strip() or "/tmp"),
        batch_job_id=environ.get("AWS_BATCH_JOB_ID") or environ.get("SUPERVISOR_BATCH_JOB_ID"),
        log_group=environ.get("SUPERVISOR_LOG_GROUP") or None,
        storage_events=Path(events) if root and events else None,
        batch_job_attempt=_attempt(environ.get("AWS_BATCH_JOB_ATTEMPT", "")),
    )


def _attempt(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdecimal() and int(value) > 0 else None
