"""What a script run by a Batch job finds in its environment, read back from the script itself.

The job runs in-process (``batch_entrypoint.job.run_job``) with the environment a Batch
container has: the image's, the job definition's (SCAR puts the definition, the script and
``batch.environment.Variables`` there), the job's overrides, Batch's own ``AWS_BATCH_*`` and
the task role's credentials.  The script copies its environment, as the kernel gave it to
its shell, into the output folder; the test reads the uploaded copy.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from batch_entrypoint.job import run_job
from supervisor.environment import AWS_CREDENTIAL_VARIABLES
from tests.local_job import s3_event

# /proc/$$/environ is exactly what the supervisor handed to the script's shell.
ENV_SCRIPT = 'cat "/proc/$$/environ" > "$TMP_OUTPUT_DIR/environ.bin"\n'

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIAJOBROLEKEY000001",
    "AWS_SECRET_ACCESS_KEY": "job-role-secret-do-not-leak",
    "AWS_SESSION_TOKEN": "job-role-session-token-do-not-leak",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/0c4f8e7a-task-role",
}


def run_batch_job(tmp_path: Path, *, pass_aws_credentials: bool) -> dict[str, str]:
    """Run one job on the local storage provider; return the environment its script saw."""
    storage = tmp_path / "storage"
    (storage / "in" / "data").mkdir(parents=True)
    (storage / "in" / "data" / "photo.jpg").write_bytes(b"jpeg")
    definition = {
        "name": "env-job",
        "container": {
            "environment": {"Variables": {"FROM_DEFINITION": "definition value"}},
            "pass_aws_credentials": pass_aws_credentials,
        },
        "input": [{"storage_provider": "s3", "path": "in/data"}],
        "output": [{"storage_provider": "s3", "path": "out/results"}],
    }
    environ = {
        # The image's.
        **{name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ},
        "HOME": str(tmp_path),
        # The job definition's, as SCAR writes it.
        "FUNCTION_CONFIG": base64.b64encode(json.dumps(definition).encode()).decode(),
        "SCRIPT": base64.b64encode(ENV_SCRIPT.encode()).decode(),
        "AWS_LAMBDA_FUNCTION_NAME": "env-job",
        "MODEL_SIZE": "large",
        # The job's overrides, as a delegating Lambda sends them.
        "EVENT": json.dumps(s3_event("in", "data/photo.jpg")),
        "CONTEXT": json.dumps({"aws_request_id": "req-7", "function_name": "env-job"}),
        "AWS_LAMBDA_REQUEST_ID": "req-7",
        # Batch's and ECS's.
        "AWS_BATCH_JOB_ID": "job-env-1",
        "AWS_BATCH_JOB_NODE_INDEX": "0",
        "AWS_BATCH_JOB_ATTEMPT": "1",
        "AWS_REGION": "eu-west-1",
        **CREDENTIALS,
        # This test's deployment.
        "SUPERVISOR_STORAGE_ROOT": str(storage),
        "SUPERVISOR_WORK_DIR": str(tmp_path / "work"),
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "LOG_LEVEL": "DEBUG",
    }

    assert run_job(environ) == 0

    raw = (storage / "out" / "results" / "environ.bin").read_bytes()
    pairs = (entry.split("=", 1) for entry in raw.decode().split("\0") if entry)
    return {name: value for name, value in pairs}


@pytest.mark.parametrize("pass_aws_credentials", [False, True])
def test_a_batch_script_gets_the_containers_environment_and_not_the_supervisors(
    tmp_path: Path, pass_aws_credentials: bool
) -> None:
    seen = run_batch_job(tmp_path, pass_aws_credentials=pass_aws_credentials)

    assert seen["AWS_BATCH_JOB_ID"] == "job-env-1"
    assert seen["AWS_BATCH_JOB_NODE_INDEX"] == "0"
    assert seen["MODEL_SIZE"] == "large"
    assert seen["FROM_DEFINITION"] == "definition value"
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "env-job"
    assert seen["AWS_REGION"] == "eu-west-1"
    assert seen["HOME"] == str(tmp_path)
    assert Path(seen["INPUT_FILE_PATH"]).name == "photo.jpg"
    assert seen["AWS_LAMBDA_REQUEST_ID"] == seen["REQUEST_ID"] == "req-7"
    assert json.loads(seen["EVENT"]) == s3_event("in", "data/photo.jpg")
    withheld = {"FUNCTION_CONFIG", "SCRIPT", "CONTEXT", "LOG_LEVEL"}
    withheld |= {"SUPERVISOR_STORAGE_ROOT", "SUPERVISOR_WORK_DIR"}
    assert withheld.isdisjoint(seen)
    role = {name: seen.get(name) for name in CREDENTIALS}
    if pass_aws_credentials:
        assert role == CREDENTIALS
    else:
        assert role == dict.fromkeys(CREDENTIALS)
        assert set(AWS_CREDENTIAL_VARIABLES).isdisjoint(seen)
        assert set(CREDENTIALS.values()).isdisjoint(seen.values())
