"""``python -m supervisor`` run as a Batch job would run it, on the local storage provider.

The job gets what a job definition and a delegating Lambda give it (``FUNCTION_CONFIG``,
``SCRIPT``, ``EVENT``, ``AWS_BATCH_JOB_ID``) and reads and writes buckets as folders under
``SUPERVISOR_STORAGE_ROOT``: bucket ``B``, key ``K`` is the file ``storage/B/K``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).parent / "events"
INPUT_BUCKET, INPUT_FOLDER = "input-bucket", "incoming"
OUTPUT_BUCKET, OUTPUT_FOLDER = "output-bucket", "results"


@dataclass(frozen=True)
class LocalJob:
    result: subprocess.CompletedProcess[str]
    storage: Path
    job_id: str

    @property
    def log(self) -> str:
        return self.result.stdout + self.result.stderr

    @property
    def outputs(self) -> Path:
        return self.storage / OUTPUT_BUCKET / OUTPUT_FOLDER


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / "s3_put.json").read_text())
    s3 = event["Records"][0]["s3"]
    s3["bucket"]["name"] = bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    s3["object"]["key"] = key
    return event


def run_local_job(
    folder: Path,
    script: str,
    *,
    input_name: str,
    input_data: bytes,
    environ: Mapping[str, str],
    variables: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> LocalJob:
    """Put the input in the storage folder and run one job for its S3 event."""
    storage, work = folder / "storage", folder / "work"
    source = storage / INPUT_BUCKET / INPUT_FOLDER / input_name
    source.parent.mkdir(parents=True)
    source.write_bytes(input_data)
    work.mkdir()
    definition = {
        "name": "gpu-job",
        "execution_mode": "batch",
        "container": {"environment": {"Variables": dict(variables or {})}},
        "input": [{"storage_provider": "s3", "path": f"{INPUT_BUCKET}/{INPUT_FOLDER}"}],
        "output": [{"storage_provider": "s3", "path": f"{OUTPUT_BUCKET}/{OUTPUT_FOLDER}"}],
    }
    job_id = f"gpu-job-{uuid.uuid4().hex[:12]}"
    job_environment = {
        **environ,
        "FUNCTION_CONFIG": b64(json.dumps(definition)),
        "SCRIPT": b64(script),
        "EVENT": json.dumps(s3_event(INPUT_BUCKET, f"{INPUT_FOLDER}/{input_name}")),
        "AWS_BATCH_JOB_ID": job_id,
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "SUPERVISOR_STORAGE_ROOT": str(storage),
        "SUPERVISOR_WORK_DIR": str(work),
    }
    result = subprocess.run(
        [sys.executable, "-m", "supervisor"],
        env=job_environment,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return LocalJob(result, storage, job_id)
