"""One function's definition: its models, with what each key accepts and means.

``FunctionConfig`` holds the sections (``ContainerSettings``, ``BatchSettings``,
``UdockerSettings``, ``IdempotencySettings``) and the locations of
``supervisor.config.locations``; ``docs/hooks/reference.py`` generates the reference page
and the JSON Schema from them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, WithJsonSchema, field_validator

from supervisor.config.locations import OutputLocation, StorageLocation, StorageProviders
from supervisor.models import Model as _Model

__all__ = [
    "BatchSettings",
    "ContainerSettings",
    "DelegateReason",
    "ExecMode",
    "ExecutionMode",
    "FunctionConfig",
    "IdempotencySettings",
    "MultiNodeSettings",
    "UdockerSettings",
]

ExecutionMode = Literal["lambda", "batch", "lambda-batch"]
# timeout: ran past the deadline; failure: a non-zero exit; resources: the input does not fit
# in /tmp, or the script was killed by SIGKILL (out of memory), which is also a failure.
DelegateReason = Literal["timeout", "failure", "resources"]
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


# The JSON Schema (docs/schema/function.json) says what this accepts before conversion.
Text = Annotated[
    str, BeforeValidator(_to_text), WithJsonSchema({"type": ["string", "number", "boolean"]})
]


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
