"""The script's environment: one policy for every platform, and the names it is made of.

``script_environment`` is a pure function from the platform, ``environ`` (the environment
of the process that hosts the supervisor), the invocation's facts and the definition's
settings to the whole environment of the user's script, as a fresh dict.  The named lists
below are also where the log redaction (``logs.secrets_from_environ``) and the local Batch job
(``local.batch.definition_environment``) take their names from.

Layers, later ones winning: the variables of ``environ`` the platform lets through
(``HOST_VARIABLES`` in Lambda, ``LOCAL_HOST_VARIABLES`` locally, the container's own less
``WITHHELD_VARIABLES`` and ``WITHHELD_PREFIXES`` on Batch and OSCAR), the definition's
``container.environment.Variables``, then the contract variables (``CONTRACT_VARIABLES``,
``CONT_VAR_<name>``).  The role's credentials (``AWS_CREDENTIAL_VARIABLES``) only with
``pass_aws_credentials``.  The table per platform, and what the script can reach by other
ways than its environment, are in docs/script-environment.md.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from supervisor.errors import ExecutionError

if TYPE_CHECKING:
    from supervisor.config import Platform
    from supervisor.events import Record
    from supervisor.workspace import InvocationPaths

__all__ = [
    "AWS_CREDENTIAL_VARIABLES",
    "AWS_REGION_VARIABLES",
    "CONTRACT_VARIABLES",
    "DEFAULT_PATH",
    "DEFINITION_VARIABLES",
    "EVENT_LIMIT",
    "FROZEN",
    "FROZEN_BINARY_VARIABLES",
    "HOST_VARIABLES",
    "IMAGE_OWN_VARIABLES",
    "LOCAL_HOST_VARIABLES",
    "SECRET_VARIABLES",
    "SUPERVISOR_SETTINGS",
    "WITHHELD_PREFIXES",
    "WITHHELD_VARIABLES",
    "InvocationFacts",
    "ScriptSettings",
    "event_fits",
    "local_environ",
    "script_environment",
]

logger = logging.getLogger(__name__)

# Whether this process is a PyInstaller binary: a fact of the process, read once here and
# handed to ``script_environment`` as an argument.
FROZEN: Final = bool(getattr(sys, "frozen", False))

DEFAULT_PATH: Final = "/usr/local/bin:/usr/bin:/bin"

# What programs need to run, the only host variables a script gets in Lambda.
HOST_VARIABLES: Final = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "HOME",
    "LD_LIBRARY_PATH",
    "TMPDIR",
    # The GPUs the NVIDIA container runtime gave the job, so that CUDA in the script sees them.
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
)
# A local run, and the host part of a local Batch job's definition: the job's
# ``python -m supervisor`` may find its packages only through PYTHONPATH.
LOCAL_HOST_VARIABLES: Final = (*HOST_VARIABLES, "PYTHONPATH")

# The function's own AWS identity: the role's keys (Lambda, a developer's machine), the task
# role's endpoint (ECS, so Batch), the pod's (EKS Pod Identity, IRSA), a profile.
AWS_CREDENTIAL_VARIABLES: Final = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)
# Given with the credentials in Lambda; elsewhere part of the container's environment.
AWS_REGION_VARIABLES: Final = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Values that are secrets in themselves, redacted from every log line.
SECRET_VARIABLES: Final = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "OSCAR_SERVICE_TOKEN",
)

# The definition (storage keys included) and what a job carries for the supervisor.
DEFINITION_VARIABLES: Final = ("FUNCTION_CONFIG", "FDL", "SCRIPT", "EVENT_URI", "CONTEXT")
# The supervisor's settings (``config.load_host_facts``, the definition's overrides) and the
# Lambda Runtime API, through which a process could answer for the invocation.
SUPERVISOR_SETTINGS: Final = (
    "LOG_LEVEL",
    "EXECUTION_MODE",
    "TIMEOUT_THRESHOLD",
    "IMAGE_FILE",
    "SUPERVISOR_SCRIPT_USER",
    "AWS_LAMBDA_RUNTIME_API",
)
# What a PyInstaller one-file binary (and staticx around it) sets for itself.
FROZEN_BINARY_VARIABLES: Final = ("LD_LIBRARY_PATH_ORIG", "_MEIPASS2")
WITHHELD_VARIABLES: Final = frozenset(
    DEFINITION_VARIABLES + SUPERVISOR_SETTINGS + FROZEN_BINARY_VARIABLES + AWS_CREDENTIAL_VARIABLES
)
# CONT_VAR_ names are the query parameters of this invocation, never the host's.
WITHHELD_PREFIXES: Final = ("SUPERVISOR_", "_PYI_", "STATICX_", "CONT_VAR_")

# What the supervisor sets for each invocation, whatever the host or the definition says.
CONTRACT_VARIABLES: Final = (
    "INPUT_FILE_PATH",
    "TMP_INPUT_DIR",
    "TMP_OUTPUT_DIR",
    "STORAGE_OBJECT_KEY",
    "EVENT_TIME",
    "EVENT",
    "EVENT_FILE",
    "REQUEST_ID",
    "AWS_LAMBDA_REQUEST_ID",
    "INSTANCE_IP",
)
# The most bytes (UTF-8) of the record's event that ``EVENT`` holds: well under the 128 KiB
# Linux allows one variable, leaving room for the rest of the environment.
EVENT_LIMIT: Final = 64 * 1024

# Host values a udocker container leaves out: the image and udocker set their own.
IMAGE_OWN_VARIABLES: Final = ("PATH", "HOME", "LD_LIBRARY_PATH", "TMPDIR")

_QUERY_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class InvocationFacts:
    """What the supervisor tells the script about one record of one invocation."""

    input_file: Path | None
    input_dir: Path
    output_dir: Path
    object_key: str
    event_time: str
    event_json: str
    request_id: str
    instance_ip: str
    query: Mapping[str, str] = field(default_factory=dict)
    # A folder of the invocation, removed with it, given as TMPDIR.
    tmp_dir: Path | None = None
    # The file that holds ``event_json``, given as EVENT_FILE.
    event_file: Path | None = None

    @classmethod
    def for_record(
        cls,
        paths: InvocationPaths,
        record: Record,
        *,
        input_file: Path | None,
        event_json: str,
        request_id: str,
        instance_ip: str,
    ) -> InvocationFacts:
        """The facts of ``record`` run in the folders of ``paths``."""
        return cls(
            input_file=input_file,
            input_dir=paths.input_dir,
            output_dir=paths.output_dir,
            object_key=record.key,
            event_time=record.event_time,
            event_json=event_json,
            request_id=request_id,
            instance_ip=instance_ip,
            query=record.query,
            tmp_dir=paths.scratch,
            event_file=paths.event_file,
        )


@dataclass(frozen=True)
class ScriptSettings:
    """What the function's definition says about the script's environment."""

    variables: Mapping[str, str] = field(default_factory=dict)
    pass_aws_credentials: bool = False


def script_environment(
    platform: Platform,
    environ: Mapping[str, str],
    facts: InvocationFacts,
    settings: ScriptSettings,
    *,
    frozen: bool = False,
) -> dict[str, str]:
    """The script's whole environment, as a fresh dict (see the module's docstring).

    ``frozen`` says whether this process is a PyInstaller binary (``FROZEN``).  NUL
    characters, which no environment can hold, are removed from values; a name in the
    definition's variables that cannot be a variable raises ``ExecutionError`` naming it.
    """
    environment = _passed_through(platform, environ, settings.pass_aws_credentials)
    if frozen:
        # The binary put its own folder first in LD_LIBRARY_PATH and kept the value it was
        # started with; an empty value would make the loader search the working folder.
        environment.pop("LD_LIBRARY_PATH", None)
        original = environ.get("LD_LIBRARY_PATH_ORIG", "")
        if original:
            environment["LD_LIBRARY_PATH"] = original
    environment.setdefault("PATH", DEFAULT_PATH)
    if facts.tmp_dir is not None:
        environment["TMPDIR"] = str(facts.tmp_dir)
    for name, value in settings.variables.items():
        if not name or "=" in name or "\0" in name:
            raise ExecutionError(
                f"container.environment.Variables: invalid environment variable name {name!r}"
            )
        environment[name] = value
    environment.pop("EVENT", None)
    environment.update(_contract(facts))
    environment.update(_query_variables(facts.query))
    return {name: value.replace("\0", "") for name, value in environment.items()}


def event_fits(event_json: str) -> bool:
    """Whether the event is small enough for ``EVENT`` (``EVENT_LIMIT`` bytes in UTF-8)."""
    # Four bytes at most per character: most events are told apart without encoding them.
    if len(event_json) * 4 <= EVENT_LIMIT:
        return True
    return len(event_json) <= EVENT_LIMIT and (
        len(event_json.encode("utf-8", errors="surrogatepass")) <= EVENT_LIMIT
    )


def _query_variables(query: Mapping[str, str]) -> dict[str, str]:
    """``CONT_VAR_<name>`` per query parameter, each character of the name that cannot be
    in a variable's name turned into ``_``.  Where names collapse into one variable
    (``a-b`` and ``a.b``), the last parameter's value is kept, with a warning naming them."""
    variables: dict[str, str] = {}
    parameters: dict[str, list[str]] = {}
    for name, value in query.items():
        if name:
            variable = f"CONT_VAR_{_QUERY_NAME.sub('_', name)}"
            variables[variable] = value
            parameters.setdefault(variable, []).append(name)
    for variable, names in parameters.items():
        if len(names) > 1:
            logger.warning(
                "The query parameters %s all become %s: the script gets the value of %r",
                ", ".join(repr(name) for name in names),
                variable,
                names[-1],
            )
    return variables


def local_environ(environ: Mapping[str, str], executable: str) -> dict[str, str]:
    """The supervisor's environment in a local run: ``environ`` with the folder of
    ``executable`` (the Python that runs the supervisor) first on ``PATH``, so that a
    script's ``python3`` is that one, with its packages."""
    local = dict(environ)
    folder = str(Path(executable).parent)
    path = local.get("PATH", DEFAULT_PATH)
    if path.split(":")[0] != folder:
        local["PATH"] = f"{folder}:{path}"
    return local


def _passed_through(
    platform: Platform, environ: Mapping[str, str], credentials: bool
) -> dict[str, str]:
    """The variables of the supervisor's environment that ``platform`` lets through."""
    if platform in ("batch", "oscar"):
        return {
            name: value
            for name, value in environ.items()
            if _container_passes(name) or (credentials and name in AWS_CREDENTIAL_VARIABLES)
        }
    names = LOCAL_HOST_VARIABLES if platform == "local" else HOST_VARIABLES
    if credentials:
        names = (*names, *AWS_CREDENTIAL_VARIABLES, *AWS_REGION_VARIABLES)
    return {name: environ[name] for name in names if name in environ}


def _container_passes(name: str) -> bool:
    return name not in WITHHELD_VARIABLES and not name.startswith(WITHHELD_PREFIXES)


def _contract(facts: InvocationFacts) -> dict[str, str]:
    contract = {
        "INPUT_FILE_PATH": "" if facts.input_file is None else str(facts.input_file),
        "TMP_INPUT_DIR": str(facts.input_dir),
        "TMP_OUTPUT_DIR": str(facts.output_dir),
        "STORAGE_OBJECT_KEY": facts.object_key,
        "EVENT_TIME": facts.event_time,
        "EVENT_FILE": "" if facts.event_file is None else str(facts.event_file),
        "REQUEST_ID": facts.request_id,
        "AWS_LAMBDA_REQUEST_ID": facts.request_id,
        "INSTANCE_IP": facts.instance_ip,
    }
    if event_fits(facts.event_json):
        contract["EVENT"] = facts.event_json
    return contract
