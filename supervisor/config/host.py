"""What the host tells the runtime through its environment: the platform, the folders.

``load_host_facts`` tells the Lambda zip runtime, the Lambda image runtime, a Batch job and
a local run apart; the runtime picks its parts from what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["HostFacts", "Platform", "load_host_facts"]

Platform = Literal["lambda-zip", "lambda-image", "batch", "oscar", "local"]


@dataclass(frozen=True)
class HostFacts:
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


def load_host_facts(environ: Mapping[str, str]) -> HostFacts:
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
    return HostFacts(
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
