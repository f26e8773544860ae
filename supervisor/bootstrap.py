"""Bootstrap: from a host's environment to a supervisor ready for its first invocation.

Every way in goes through the same two steps: the Lambda handler, a Batch job, an OSCAR
service, ``python -m supervisor run``, the workflow runner, and any tool that embeds the
supervisor.

- ``load`` finds the definition (an explicit path; OSCAR's ``/oscar/config``; the Lambda
  task root's ``function_config.yaml``; ``FUNCTION_CONFIG`` or ``FDL``), validates it once,
  reads what the host says of itself (``HostFacts``) and collects every secret that logs must
  hide.  It does not configure logging: each entry point logs its own way.  ``strict``
  refuses unknown keys (local runs); without it they are warnings (deployed functions).
- ``start`` builds the parts for the platform (storage clients, the executor, the Batch
  backend) and prepares them, so that the first invocation pays for none of it.  It logs
  the definition's warnings, once logging is configured.

In an OSCAR service (``/oscar/config``, or ``SUPERVISOR_OSCAR_DIR``) the platform is
``oscar``, the script is that folder's ``script.sh``, and the MinIO keys that the definition
names ``hidden`` are read from the files OSCAR mounts (``OSCAR_SECRETS_DIR``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.config import FunctionConfig, HostFacts, load_config, load_host_facts

if TYPE_CHECKING:
    from supervisor.config import Platform
    from supervisor.runtime import Supervisor

__all__ = ["OSCAR_DIR", "OSCAR_SECRETS_DIR", "Definition", "load", "start"]

OSCAR_DIR = Path("/oscar/config")
# Where OSCAR mounts the keys of the MinIO providers its definitions name as "hidden".
OSCAR_SECRETS_DIR = Path("/var/run/secrets/providers")
_OSCAR_CONFIG = "function_config.yaml"
_OSCAR_SCRIPT = "script.sh"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Definition:
    """A validated function definition, what the host says of itself, and the secrets
    (storage keys, the role's credentials) that no log line may show."""

    config: FunctionConfig
    host_facts: HostFacts
    secrets: tuple[str, ...]


def load(
    environ: Mapping[str, str],
    *,
    path: Path | None = None,
    function: str | None = None,
    strict: bool = False,
) -> Definition:
    """Find and validate the definition for this host; raise ``ConfigError`` naming the fault.

    ``function`` picks one function of a multi-function file (SCAR's FDL).  With ``strict``,
    an unknown key or a path starting with ``/`` is a ``ConfigError`` listing them all;
    without it (the default: deployed functions go on) they are in ``config.warnings``, and
    ``start`` logs them.
    """
    from supervisor import logs

    facts = load_host_facts(environ)
    oscar = _oscar_dir(environ)
    oscar_config = oscar / _OSCAR_CONFIG
    if path is None and not facts.in_lambda and oscar_config.is_file():
        config = load_config(environ, oscar_config, function=function, strict=strict)
        facts = dataclasses.replace(facts, platform="oscar")
        script = oscar / _OSCAR_SCRIPT
        if config.init_script is None and script.is_file():
            config = config.model_copy(update={"init_script": script})
        config = _with_mounted_minio_keys(config, _oscar_secrets_dir(environ))
    else:
        config = load_config(
            environ, path, default_path=_task_config(environ), function=function, strict=strict
        )
    secrets = (*config.storage_providers.secrets(), *logs.secrets_from_environ(environ))
    return Definition(config, facts, tuple(dict.fromkeys(secrets)))


def start(
    definition: Definition,
    environ: Mapping[str, str],
    *,
    platform: Platform | None = None,
    work_root: Path | None = None,
    storage_root: Path | None = None,
    **parts: Any,
) -> Supervisor:
    """Build the supervisor for ``platform`` (the host's own by default) and prepare it.

    ``parts`` replace the ones built by default: ``providers``, ``executor``, ``backend``,
    ``free_space``, ``idempotency``, ``storage_events`` (see
    ``supervisor.wiring.build_supervisor``).
    """
    from supervisor.wiring import build_supervisor

    for warning in definition.config.warnings:
        logger.warning("Function definition: %s", warning)
    facts = definition.host_facts
    supervisor = build_supervisor(
        definition.config,
        platform=platform or facts.platform,
        environ=environ,
        work_root=work_root or facts.work_root,
        storage_root=storage_root or facts.storage_root,
        **{"storage_events": facts.storage_events, **parts},
    )
    supervisor.prepare()
    return supervisor


def _oscar_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("SUPERVISOR_OSCAR_DIR", "").strip() or OSCAR_DIR)


def _oscar_secrets_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("SUPERVISOR_OSCAR_SECRETS_DIR", "").strip() or OSCAR_SECRETS_DIR)


def _with_mounted_minio_keys(config: FunctionConfig, secrets_dir: Path) -> FunctionConfig:
    """OSCAR writes ``hidden`` for the keys of its MinIO providers in the definition and
    mounts the real ones as files (``SECRETS_DIR/minio.ID/accessKey`` and ``secretKey``)."""
    from pydantic import SecretStr

    minio = dict(config.storage_providers.of("minio"))
    changed = False
    for ident, provider in minio.items():
        folder = secrets_dir / f"minio.{ident}"
        keys = [_read_secret(folder / name) for name in ("accessKey", "secretKey")]
        if not all(keys) or not _placeholder(provider.access_key, provider.secret_key):
            continue
        access, secret = (SecretStr(key) for key in keys if key)
        minio[ident] = provider.model_copy(update={"access_key": access, "secret_key": secret})
        changed = True
    if not changed:
        return config
    providers = config.storage_providers.model_copy(update={"minio": minio})
    return config.model_copy(update={"storage_providers": providers})


def _placeholder(*secrets: Any) -> bool:
    """Whether the definition holds no real key (absent, empty, or OSCAR's ``hidden``)."""
    values = [secret.get_secret_value() if secret is not None else "" for secret in secrets]
    return all(value in ("", "hidden") for value in values)


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _task_config(environ: Mapping[str, str]) -> Path:
    """``function_config.yaml`` in the Lambda task root (``/var/task`` unless the runtime
    says otherwise)."""
    root = environ.get("LAMBDA_TASK_ROOT", "").strip() or "/var/task"
    return Path(root) / "function_config.yaml"
