"""Events of any size Lambda accepts reach the script, in every mode; SQS batches report the
messages that failed; events stored for Batch are deleted once no attempt needs them.

Lambda runs through ``handlers.lambda_handler.handler`` against a moto server; the Batch side
is ``python -m supervisor`` in a subprocess with what a Batch job container gets.  The script
is what a user would write: it copies ``$EVENT_FILE`` to its outputs and says whether
``EVENT`` was set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import handlers.lambda_handler
from batch_entrypoint import job
from supervisor import staging
from supervisor.errors import InvocationError
from tests.functional.lambda_support import FakeLambdaContext
from tests.functional.test_delegation import b64, body, job_environment, objects, s3_event, the_job

KIB = 1024
MB = 1000 * 1000

# Keeps the event it was given and says whether EVENT held the same; fails where told to.
EVENT_SCRIPT = """\
name=$(basename "${STORAGE_OBJECT_KEY:-direct}")
: > "$RUNS_DIR/$name-$$"
cp "$EVENT_FILE" "$TMP_OUTPUT_DIR/$name.event.json"
if [ -n "${EVENT+set}" ]; then
  printf "%s" "$EVENT" | cmp -s - "$EVENT_FILE" && echo "EVENT=file" || echo "EVENT differs"
else
  echo "EVENT unset"
fi
case "$STORAGE_OBJECT_KEY" in *"${FAIL_KEY:-no such key}"*) exit 5 ;; esac
if [ -n "$FAIL_FIRST" ] && mkdir "$RUNS_DIR/first" 2>/dev/null; then exit 6; fi
exit "${EXIT_CODE:-0}"
"""


@dataclass
class Function:
    name: str
    definition: dict[str, Any]
    input_bucket: str
    output_bucket: str
    runs: Path

    def runs_of(self, name: str) -> int:
        return len(list(self.runs.glob(f"{name}-*")))


@pytest.fixture
def make_function(make_bucket: Callable[[str], str], tmp_path: Path) -> Callable[..., Function]:
    def make(
        mode: str,
        *,
        variables: dict[str, str] | None = None,
        batch: dict[str, Any] | None = None,
    ) -> Function:
        name = f"fn-{uuid.uuid4().hex[:12]}"
        runs = tmp_path / name / "runs"
        runs.mkdir(parents=True)
        script = tmp_path / name / "process.sh"
        script.write_text(EVENT_SCRIPT)
        input_bucket, output_bucket = make_bucket("input"), make_bucket("output")
        definition: dict[str, Any] = {
            "name": name,
            "execution_mode": mode,
            "init_script": str(script),
            "container": {
                "timeout_threshold": 1,
                "environment": {"Variables": {"RUNS_DIR": str(runs), **(variables or {})}},
            },
            "input": [{"storage_provider": "s3", "path": f"{input_bucket}/incoming"}],
            "output": [{"storage_provider": "s3", "path": f"{output_bucket}/results"}],
            "batch": batch or {},
        }
        return Function(name, definition, input_bucket, output_bucket, runs)

    return make


@pytest.fixture
def invoke(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., dict[str, Any]]:
    """Invoke ``function`` in "Lambda" (a cold start) with ``event``."""

    def call(function: Function, event: Any, *, timeout_s: float = 60.0) -> dict[str, Any]:
        monkeypatch.setenv("FDL", b64(json.dumps(function.definition)))
        monkeypatch.setenv("SUPERVISOR_WORK_DIR", str(tmp_path / "lambda-tmp"))
        monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
        handlers.lambda_handler.reset()
        return handlers.lambda_handler.handler(
            event, FakeLambdaContext(function.name, timeout_s=timeout_s)
        )

    return call


def run_job(
    function: Function, job_env: dict[str, str], aws_env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -m supervisor`` with what a Batch job container gets, and nothing else."""
    script = Path(function.definition["init_script"]).read_bytes()
    environment = {
        "FUNCTION_CONFIG": b64(json.dumps(function.definition)),
        "SCRIPT": b64(script),
        "AWS_BATCH_JOB_ID": str(uuid.uuid4()),
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        **job_env,
        **aws_env,
        "PATH": os.environ["PATH"],
    }
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "supervisor"],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def direct_event(size: int) -> dict[str, Any]:
    return {"payload": "d" * size, "note": "caf\u00e9 \u2603"}


def api_event(body_size: int) -> dict[str, Any]:
    path = Path(__file__).parent.parent / "events" / "apigw_v1.json"
    event: dict[str, Any] = json.loads(path.read_text())
    event["body"] = "b" * body_size
    event["isBase64Encoded"] = False
    return event


def sqs_batch(bucket: str, keys: list[str]) -> dict[str, Any]:
    records = []
    for key in keys:
        message = {**s3_event(bucket, key), "padding": "s" * 600}
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": json.dumps(message),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def put_inputs(s3: Any, bucket: str, count: int) -> list[str]:
    keys = [f"incoming/file-{index:03d}.txt" for index in range(count)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return keys


@pytest.mark.parametrize(
    ("event", "output"),
    [
        pytest.param(api_event(100 * KIB), "direct", id="api-body-100KiB"),
        pytest.param(direct_event(150 * KIB), "direct", id="direct-150KiB"),
        pytest.param(direct_event(5 * MB), "direct", id="direct-5MB"),
    ],
)
def test_a_big_event_runs_in_lambda_and_its_script_reads_it_from_event_file(
    make_function: Callable[..., Function],
    invoke: Callable[..., dict[str, Any]],
    s3: Any,
    event: dict[str, Any],
    output: str,
) -> None:
    function = make_function("lambda")

    response = invoke(function, event)

    assert response["statusCode"] == 200, body(response)
    assert body(response) == "EVENT unset\n"
    landed = objects(s3, function.output_bucket)
    assert json.loads(landed[f"results/{output}.event.json"]) == event


def test_a_small_event_is_in_event_and_in_event_file(
    make_function: Callable[..., Function], invoke: Callable[..., dict[str, Any]], s3: Any
) -> None:
    function = make_function("lambda")
    event = direct_event(60 * KIB)

    response = invoke(function, event)

    assert body(response) == "EVENT=file\n"
    assert json.loads(objects(s3, function.output_bucket)["results/direct.event.json"]) == event


def test_each_record_of_an_sqs_batch_of_200_runs_with_its_own_message(
    make_function: Callable[..., Function],
    invoke: Callable[..., dict[str, Any]],
    s3: Any,
) -> None:
    function = make_function("lambda")
    keys = put_inputs(s3, function.input_bucket, 200)
    event = sqs_batch(function.input_bucket, keys)
    assert len(json.dumps(event)) > 200 * KIB

    response = invoke(function, event, timeout_s=600.0)

    assert response["statusCode"] == 200, body(response)
    assert body(response) == "EVENT=file\n" * 200
    landed = objects(s3, function.output_bucket)
    for key, message in zip(keys, event["Records"], strict=True):
        name = key.rsplit("/", 1)[1]
        assert json.loads(landed[f"results/{name}.event.json"]) == {"Records": [message]}
        assert function.runs_of(name) == 1


def test_an_sqs_batch_reports_only_the_message_that_failed(
    make_function: Callable[..., Function],
    invoke: Callable[..., dict[str, Any]],
    s3: Any,
) -> None:
    function = make_function("lambda", variables={"FAIL_KEY": "file-001"})
    keys = put_inputs(s3, function.input_bucket, 3)
    event = sqs_batch(function.input_bucket, keys)

    response = invoke(function, event)

    second = event["Records"][1]["messageId"]
    assert response["batchItemFailures"] == [{"itemIdentifier": second}]
    assert "file-001.txt: failed" in body(response)
    assert set(objects(s3, function.output_bucket)) == {
        "results/file-000.txt.event.json",
        "results/file-002.txt.event.json",
    }
    assert [function.runs_of(key.rsplit("/", 1)[1]) for key in keys] == [1, 1, 1]


def test_an_unreadable_sqs_message_is_reported_and_the_others_run(
    make_function: Callable[..., Function],
    invoke: Callable[..., dict[str, Any]],
    s3: Any,
) -> None:
    function = make_function("lambda")
    keys = put_inputs(s3, function.input_bucket, 2)
    event = sqs_batch(function.input_bucket, keys)
    event["Records"][0]["body"] = "not json {"

    response = invoke(function, event)

    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert set(objects(s3, function.output_bucket)) == {"results/file-001.txt.event.json"}


def test_an_sqs_batch_that_wholly_failed_raises_so_that_every_message_comes_back(
    make_function: Callable[..., Function],
    invoke: Callable[..., dict[str, Any]],
    s3: Any,
) -> None:
    function = make_function("lambda", variables={"EXIT_CODE": "3"})
    event = sqs_batch(function.input_bucket, put_inputs(s3, function.input_bucket, 2))

    with pytest.raises(InvocationError, match="exited with 3"):
        invoke(function, event)


@pytest.mark.parametrize("size", [150 * KIB, 5 * MB], ids=["150KiB", "5MB"])
def test_lambda_batch_hands_a_big_event_to_batch_by_reference_and_deletes_it_after(
    make_function: Callable[..., Function],
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
    size: int,
) -> None:
    function = make_function("lambda-batch", variables={"FAIL_FIRST": "1"})
    queue = batch_queue(function.name)
    event = direct_event(size)

    response = invoke(function, event)

    assert response["statusCode"] == 202, body(response)
    env = job_environment(the_job(batch, queue))
    assert "EVENT" not in env
    stored = env["EVENT_URI"].removeprefix(f"s3://{function.output_bucket}/")
    assert stored.startswith(".supervisor-events/")
    assert objects(s3, function.output_bucket, "results/") == {}

    done = run_job(function, env, aws_env, tmp_path / "job")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "EVENT unset" in done.stdout
    landed = objects(s3, function.output_bucket)
    assert json.loads(landed["results/direct.event.json"]) == event
    assert stored not in landed, "the stored event outlived the job"


@pytest.mark.parametrize(
    ("attempts", "attempt", "exit_code", "kept"),
    [
        pytest.param(None, "1", 0, False, id="succeeded"),
        pytest.param(2, "1", 4, True, id="failed-attempt-1-of-2"),
        pytest.param(2, "2", 4, False, id="failed-last-attempt"),
        pytest.param(None, "1", 4, True, id="failed-attempts-unknown"),
        pytest.param(1, "", 4, False, id="failed-only-attempt"),
    ],
)
def test_a_job_deletes_its_stored_event_once_no_attempt_needs_it(
    make_function: Callable[..., Function],
    s3: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
    attempts: int | None,
    attempt: str,
    exit_code: int,
    kept: bool,
) -> None:
    batch = {} if attempts is None else {"attempts": attempts}
    function = make_function("batch", variables={"EXIT_CODE": str(exit_code)}, batch=batch)
    event = direct_event(200 * KIB)
    key = f".supervisor-events/{uuid.uuid4()}.json"
    s3.put_object(Bucket=function.output_bucket, Key=key, Body=json.dumps(event).encode())
    job_env = {"EVENT_URI": f"s3://{function.output_bucket}/{key}"}
    if attempt:
        job_env["AWS_BATCH_JOB_ATTEMPT"] = attempt

    done = run_job(function, job_env, aws_env, tmp_path / "job")

    assert done.returncode == exit_code, done.stdout + done.stderr
    assert function.runs_of("direct") == 1
    assert (key in objects(s3, function.output_bucket, ".supervisor-events/")) is kept


def test_a_big_event_goes_to_the_provider_that_batch_event_store_names_and_back(
    make_function: Callable[..., Function],
    make_bucket: Callable[[str], str],
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """``batch.event_store: minio.lab://bucket/folder``: the event is kept on that MinIO (the
    moto server, reached with MinIO's path-style requests), the job reads it back from
    ``EVENT_URI`` through the same provider and deletes it."""
    events = make_bucket("events")
    function = make_function(
        "lambda-batch",
        variables={"FAIL_FIRST": "1"},
        batch={"event_store": f"minio.lab://{events}/kept"},
    )
    function.definition["storage_providers"] = {
        "minio": {
            "lab": {
                "endpoint": aws_env["AWS_ENDPOINT_URL"],
                "region": aws_env["AWS_REGION"],
                "access_key": aws_env["AWS_ACCESS_KEY_ID"],
                "secret_key": aws_env["AWS_SECRET_ACCESS_KEY"],
            }
        }
    }
    queue = batch_queue(function.name)
    event = direct_event(150 * KIB)

    response = invoke(function, event)

    assert response["statusCode"] == 202, body(response)
    env = job_environment(the_job(batch, queue))
    assert env["EVENT_URI"].startswith(f"minio.lab://{events}/kept/"), env["EVENT_URI"]
    stored = env["EVENT_URI"].removeprefix(f"minio.lab://{events}/")
    assert json.loads(objects(s3, events)[stored]) == event
    assert objects(s3, function.output_bucket) == {}

    done = run_job(function, env, aws_env, tmp_path / "job")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "EVENT unset" in done.stdout
    landed = objects(s3, function.output_bucket)
    assert json.loads(landed["results/direct.event.json"]) == event
    assert objects(s3, events) == {}, "the stored event outlived the job"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        pytest.param("nfs://events/one.json", "'nfs' is not a storage type", id="unknown-type"),
        pytest.param("s3://events", "expected TYPE://bucket/key", id="no-key"),
        pytest.param("events/one.json", "expected TYPE://bucket/", id="no-scheme"),
        pytest.param("minio.lab://events/one.json", "'minio.lab' is not defined", id="undefined"),
    ],
)
def test_a_job_whose_event_uri_names_no_object_it_can_read_fails_saying_why(
    make_function: Callable[..., Function],
    aws_env: dict[str, str],
    tmp_path: Path,
    uri: str,
    problem: str,
) -> None:
    function = make_function("batch")

    done = run_job(function, {"EVENT_URI": uri}, aws_env, tmp_path / "job")

    assert done.returncode != 0
    assert problem in done.stdout + done.stderr
    assert function.runs_of("direct") == 0


def test_a_deletion_that_fails_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The store cannot be reached when the job deletes its event (a closed port)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    providers = staging.Stores({("s3", "default"): lambda: staging.S3Storage(client)})
    definition = SimpleNamespace(
        config=SimpleNamespace(batch=SimpleNamespace(attempts=None)),
        host_facts=SimpleNamespace(batch_job_attempt=1),
    )
    environ = {"EVENT_URI": "s3://events/.supervisor-events/one.json"}

    job._forget_event(environ, SimpleNamespace(providers=providers), definition, 0)

    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "was not deleted" in warning.getMessage()
    assert "s3://events/.supervisor-events/one.json" in warning.getMessage()
