"""Delegation to AWS Batch against a real moto server over HTTP, and the Batch side of it.

The Lambda side goes through ``handlers.lambda_handler.handler`` with a fake Lambda
context (the clock); the Batch side runs ``python -m supervisor`` in a subprocess with the
environment a Batch job gets: the job's overrides as ``describe_jobs`` shows them, what the
job definition would hold (``FUNCTION_CONFIG``, ``SCRIPT``) and the job role's credentials.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

import handlers.lambda_handler
from supervisor.errors import DelegationError, InvocationError
from tests.functional.lambda_support import FakeLambdaContext

KIB = 1024
JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")

# Leaves a mark of each run, copies the input to the outputs and records the request id.
COPY_SCRIPT = """\
: > "$ATTEMPTS_DIR/run-$$"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
printf '%s' "$AWS_LAMBDA_REQUEST_ID" > "$TMP_OUTPUT_DIR/request-id.txt"
echo "processed $STORAGE_OBJECT_KEY"
exit "${EXIT_CODE:-0}"
"""
# The first run anywhere (the one in "Lambda") writes an output of its own, then sleeps past
# any deadline; every later run (the one on "Batch") is the plain copy.
SLOW_FIRST_SCRIPT = (
    """\
if mkdir "$ATTEMPTS_DIR/first" 2>/dev/null; then
  echo "written by the run that was killed" > "$TMP_OUTPUT_DIR/lambda-run.txt"
  cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
  sleep 30
fi
"""
    + COPY_SCRIPT
)


def b64(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode("ascii")


@dataclass
class Function:
    """A deployed function: its definition, script, buckets, queue and one input object."""

    name: str
    definition: dict[str, Any]
    script: Path
    input_bucket: str
    output_bucket: str
    input_key: str
    data: bytes
    attempts: Path

    @property
    def event(self) -> dict[str, Any]:
        """An S3 notification for the input object: the key URL-encoded, as S3 sends it."""
        return s3_event(self.input_bucket, quote_plus(self.input_key))

    def config_text(self) -> str:
        return json.dumps(self.definition)


MakeFunction = Callable[..., Function]


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    path = Path(__file__).parent.parent / "events" / "s3_put.json"
    event: dict[str, Any] = json.loads(path.read_text())
    s3 = event["Records"][0]["s3"]
    s3["bucket"]["name"] = bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    s3["object"]["key"] = key
    return event


@pytest.fixture
def make_function(s3: Any, make_bucket: Callable[[str], str], tmp_path: Path) -> MakeFunction:
    def make(
        mode: str,
        script: str = COPY_SCRIPT,
        *,
        variables: dict[str, str] | None = None,
        batch: dict[str, Any] | None = None,
        threshold: float = 1,
    ) -> Function:
        name = f"fn-{uuid.uuid4().hex[:12]}"
        folder = tmp_path / name
        attempts = folder / "attempts"
        attempts.mkdir(parents=True)
        script_path = folder / "process.sh"
        script_path.write_text(script)
        input_bucket, output_bucket = make_bucket("input"), make_bucket("output")
        data = os.urandom(4096) + b"\x00\r\n end"
        s3.put_object(Bucket=input_bucket, Key="incoming/photo one.jpg", Body=data)
        definition: dict[str, Any] = {
            "name": name,
            "execution_mode": mode,
            "init_script": str(script_path),
            "container": {
                "timeout_threshold": threshold,
                "environment": {"Variables": {"ATTEMPTS_DIR": str(attempts), **(variables or {})}},
            },
            "input": [{"storage_provider": "s3", "path": f"{input_bucket}/incoming"}],
            "output": [{"storage_provider": "s3", "path": f"{output_bucket}/results"}],
        }
        if batch is not None:
            definition["batch"] = batch
        return Function(
            name,
            definition,
            script_path,
            input_bucket,
            output_bucket,
            "incoming/photo one.jpg",
            data,
            attempts,
        )

    return make


@pytest.fixture
def invoke(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., dict[str, Any]]:
    """Deploy ``function`` to "Lambda" (a cold start) and invoke the handler with ``event``."""

    def call(
        function: Function, event: Any, context: FakeLambdaContext | None = None
    ) -> dict[str, Any]:
        monkeypatch.setenv("FDL", b64(function.config_text()))
        monkeypatch.setenv("SUPERVISOR_WORK_DIR", str(tmp_path / "lambda-tmp"))
        monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
        handlers.lambda_handler.reset()
        context = context or FakeLambdaContext(function.name)
        return handlers.lambda_handler.handler(event, context)

    return call


def body(response: dict[str, Any]) -> str:
    assert response["isBase64Encoded"] is True
    return base64.b64decode(response["body"]).decode()


def objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listing
    }


def jobs_in(batch: Any, queue: str) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for status in JOB_STATUSES:
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]:
            found[summary["jobId"]] = summary
    return list(found.values())


def the_job(batch: Any, queue: str) -> dict[str, Any]:
    """The one job submitted to ``queue``, as ``describe_jobs`` shows it."""
    (summary,) = jobs_in(batch, queue)
    (job,) = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"]
    return dict(job)


def job_environment(job: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job["container"]["environment"]}


def run_as_batch(
    function: Function,
    job_env: dict[str, str],
    aws_env: dict[str, str],
    cwd: Path,
    *args: str,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m supervisor`` with what a Batch job container gets, and nothing else."""
    environment = {
        "FUNCTION_CONFIG": b64(function.config_text()),
        "SCRIPT": b64(function.script.read_bytes()),
        **job_env,
        **aws_env,
        "PATH": os.environ["PATH"],
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
    }
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        env=environment,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("exit_code", [0, 3])
def test_batch_mode_submits_the_event_and_the_job_finishes_it(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
    exit_code: int,
) -> None:
    function = make_function("batch", variables={"EXIT_CODE": str(exit_code)})
    queue = batch_queue(function.name)
    context = FakeLambdaContext(function.name)

    response = invoke(function, function.event, context)

    assert response["statusCode"] == 202
    job = the_job(batch, queue)
    assert job["jobId"] in body(response)
    assert job["jobDefinition"].split("/")[-1].split(":")[0] == function.name
    env = job_environment(job)
    assert set(env) == {"EVENT", "CONTEXT", "AWS_LAMBDA_REQUEST_ID", "AWS_BATCH_JOB_ID"}
    assert json.loads(env["EVENT"]) == function.event
    assert json.loads(env["CONTEXT"])["aws_request_id"] == context.aws_request_id
    assert json.loads(env["CONTEXT"])["function_name"] == function.name
    assert env["AWS_LAMBDA_REQUEST_ID"] == context.aws_request_id
    assert objects(s3, function.output_bucket) == {}
    assert list(function.attempts.iterdir()) == [], "the script ran in Lambda"

    result = run_as_batch(function, env, aws_env, tmp_path / "job")

    assert result.returncode == exit_code, result.stdout + result.stderr
    assert len(list(function.attempts.iterdir())) == 1
    outputs = objects(s3, function.output_bucket)
    if exit_code == 0:
        assert outputs == {
            "results/photo one.jpg": function.data,
            "results/request-id.txt": context.aws_request_id.encode(),
        }
    else:
        assert outputs == {}
        assert "exited with 3" in result.stdout + result.stderr


def test_batch_mode_submits_no_job_for_an_object_outside_the_inputs(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    make_bucket: Callable[[str], str],
) -> None:
    """The refusal comes before the hand-over: no job ever holds the foreign object."""
    function = make_function("batch")
    queue = batch_queue(function.name)
    private = make_bucket("private")

    alone = invoke(function, s3_event(private, "payroll.csv"))

    assert alone["statusCode"] == 400
    assert f"the object {private}/payroll.csv (s3) is outside" in body(alone)
    assert jobs_in(batch, queue) == []

    mixed = {"Records": [*s3_event(private, "payroll.csv")["Records"], *function.event["Records"]]}
    with pytest.raises(InvocationError, match=f"refused: the object {private}/payroll.csv"):
        invoke(function, mixed)

    job = the_job(batch, queue)
    assert json.loads(job_environment(job)["EVENT"]) == function.event


def test_lambda_batch_timeout_hands_the_record_to_batch_without_partial_outputs(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
) -> None:
    function = make_function("lambda-batch", SLOW_FIRST_SCRIPT, threshold=1)
    queue = batch_queue(function.name)
    context = FakeLambdaContext(function.name, timeout_s=3.0)

    response = invoke(function, function.event, context)
    returned_at = time.monotonic()

    assert returned_at < context.deadline, "the handler answered after the Lambda deadline"
    assert response["statusCode"] == 202
    assert (function.attempts / "first").is_dir(), "the script did not run in Lambda"
    job = the_job(batch, queue)
    assert job["jobId"] in body(response)
    env = job_environment(job)
    assert json.loads(env["EVENT"]) == function.event
    assert env["AWS_LAMBDA_REQUEST_ID"] == context.aws_request_id
    time.sleep(0.3)  # a killed script that escaped the group would still be writing
    assert objects(s3, function.output_bucket) == {}

    result = run_as_batch(function, env, aws_env, tmp_path / "job")

    assert result.returncode == 0, result.stdout + result.stderr
    assert objects(s3, function.output_bucket) == {
        "results/photo one.jpg": function.data,
        "results/request-id.txt": context.aws_request_id.encode(),
    }


def test_lambda_batch_failure_is_delegated(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
) -> None:
    function = make_function("lambda-batch", variables={"EXIT_CODE": "4"})
    queue = batch_queue(function.name)
    context = FakeLambdaContext(function.name)

    response = invoke(function, function.event, context)

    assert response["statusCode"] == 202
    job = the_job(batch, queue)
    assert job["jobId"] in body(response)
    env = job_environment(job)
    assert json.loads(env["EVENT"]) == function.event
    assert env["AWS_LAMBDA_REQUEST_ID"] == context.aws_request_id
    assert len(list(function.attempts.iterdir())) == 1, "the script did not run in Lambda"
    assert objects(s3, function.output_bucket) == {}


def test_lambda_batch_failure_not_in_delegate_on_fails_the_invocation(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
) -> None:
    function = make_function(
        "lambda-batch", variables={"EXIT_CODE": "4"}, batch={"delegate_on": ["timeout"]}
    )
    queue = batch_queue(function.name)

    with pytest.raises(InvocationError):
        invoke(function, function.event)

    assert len(list(function.attempts.iterdir())) == 1, "the script did not run in Lambda"
    assert jobs_in(batch, queue) == []
    assert objects(s3, function.output_bucket) == {}


def test_a_refused_submission_fails_the_invocation_naming_the_queue(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
) -> None:
    missing = f"no-such-queue-{uuid.uuid4().hex[:8]}"
    function = make_function("batch", batch={"job_queue": missing})
    batch_queue(function.name)  # the job definition exists: only the queue is wrong

    with pytest.raises((InvocationError, DelegationError)) as raised:
        invoke(function, function.event)

    assert missing in str(raised.value)
    assert jobs_in(batch, function.name) == []


def test_an_event_over_the_request_limit_goes_by_reference(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
    s3: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
) -> None:
    function = make_function("batch")
    queue = batch_queue(function.name)
    event = function.event
    event["Records"][0]["padding"] = "p" * (40 * KIB)
    assert len(json.dumps(event)) > 40 * KIB
    context = FakeLambdaContext(function.name)

    response = invoke(function, event, context)

    assert response["statusCode"] == 202
    env = job_environment(the_job(batch, queue))
    assert "EVENT" not in env
    prefix = f"s3://{function.output_bucket}/.supervisor-events/"
    assert env["EVENT_URI"].startswith(prefix)
    stored_key = env["EVENT_URI"].removeprefix(f"s3://{function.output_bucket}/")
    stored = s3.get_object(Bucket=function.output_bucket, Key=stored_key)["Body"].read()
    assert json.loads(stored) == event
    assert objects(s3, function.output_bucket, "results/") == {}

    result = run_as_batch(function, env, aws_env, tmp_path / "job")

    assert result.returncode == 0, result.stdout + result.stderr
    assert objects(s3, function.output_bucket, "results/") == {
        "results/photo one.jpg": function.data,
        "results/request-id.txt": context.aws_request_id.encode(),
    }


def test_a_job_reads_the_event_from_stdin(
    make_function: MakeFunction, s3: Any, aws_env: dict[str, str], tmp_path: Path
) -> None:
    function = make_function("batch")
    event = {"message": "from stdin", "values": [1, 2, 3]}
    job_env = {"AWS_BATCH_JOB_ID": str(uuid.uuid4())}

    result = run_as_batch(
        function, job_env, aws_env, tmp_path / "job", "job", stdin=json.dumps(event)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    outputs = objects(s3, function.output_bucket)
    assert set(outputs) == {"results/event_file", "results/request-id.txt"}
    assert json.loads(outputs["results/event_file"]) == event


def test_a_batch_job_logs_to_cloudwatch_in_a_stream_named_after_the_job(
    make_function: MakeFunction, s3: Any, aws_env: dict[str, str], tmp_path: Path
) -> None:
    secret = aws_env["AWS_SECRET_ACCESS_KEY"]
    group = f"/aws/batch/supervisor-test-{uuid.uuid4().hex[:12]}"
    function = make_function(
        "batch",
        COPY_SCRIPT.replace("exit ", 'echo "the key is $LEAK"\nexit ', 1),
        variables={"LEAK": secret},
        batch={"log_group": group},
    )
    job_id = str(uuid.uuid4())
    request_id = str(uuid.uuid4())
    job_env = {
        "EVENT": json.dumps(function.event),
        "CONTEXT": json.dumps({"aws_request_id": request_id, "function_name": function.name}),
        "AWS_LAMBDA_REQUEST_ID": request_id,
        "AWS_BATCH_JOB_ID": job_id,
    }

    result = run_as_batch(function, job_env, aws_env, tmp_path / "job")

    assert result.returncode == 0, result.stdout + result.stderr
    assert set(objects(s3, function.output_bucket)) == {
        "results/photo one.jpg",
        "results/request-id.txt",
    }
    client = boto3.client("logs")
    streams = client.describe_log_streams(logGroupName=group)["logStreams"]
    assert [stream["logStreamName"] for stream in streams] == [job_id]
    lines = [
        event["message"]
        for event in client.get_log_events(
            logGroupName=group, logStreamName=job_id, startFromHead=True
        )["events"]
    ]
    assert any(function.input_key in line for line in lines), lines
    assert any("the key is ***" in line for line in lines), lines
    assert [line for line in lines if secret in line] == []
    assert secret not in result.stdout + result.stderr


def test_local_run_hands_a_timed_out_record_to_a_local_batch_job(
    tmp_path: Path, clean_environ: dict[str, str]
) -> None:
    root, work = tmp_path / "storage", tmp_path / "work"
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    data = os.urandom(2048)
    (root / "input-bucket" / "incoming").mkdir(parents=True)
    (root / "input-bucket" / "incoming" / "photo.jpg").write_bytes(data)
    (tmp_path / "process.sh").write_text(SLOW_FIRST_SCRIPT)
    definition = {
        "name": "local-fn",
        "execution_mode": "lambda",
        "init_script": "process.sh",
        "container": {
            "timeout_threshold": 1,
            "environment": {"Variables": {"ATTEMPTS_DIR": str(attempts)}},
        },
        "input": [{"storage_provider": "s3", "path": "input-bucket/incoming"}],
        "output": [{"storage_provider": "s3", "path": "output-bucket/results"}],
    }
    (tmp_path / "function.json").write_text(json.dumps(definition))
    (tmp_path / "event.json").write_text(json.dumps(s3_event("input-bucket", "incoming/photo.jpg")))
    command = [sys.executable, "-m", "supervisor", "run", "--config", "function.json"]
    command += ["--event", "event.json", "--storage-root", str(root), "--timeout", "3"]
    command += ["--mode", "lambda-batch", "--work-dir", str(work), "--json"]

    result = subprocess.run(
        command, env=clean_environ, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "delegated"
    (record,) = report["records"]
    assert record["status"] == "delegated"
    (job,) = report["jobs"]
    assert job["job_id"] == record["job_id"]
    assert job["exit_code"] == 0, Path(job["log"]).read_text()
    assert (attempts / "first").is_dir(), "the script did not run in 'Lambda'"
    results = root / "output-bucket" / "results"
    assert sorted(path.name for path in results.iterdir()) == ["photo.jpg", "request-id.txt"]
    assert (results / "photo.jpg").read_bytes() == data
    assert (results / "request-id.txt").read_text() == report["request_id"]
    assert list(root.rglob("lambda-run.txt")) == []


def test_a_batch_job_honours_batch_timeout(
    make_function: MakeFunction, aws_env: dict[str, str], s3: Any, tmp_path: Path
) -> None:
    """On Batch there is no deadline unless ``batch.timeout`` sets one; then the group dies."""
    function = make_function(
        "batch",
        'echo started; echo early > "$TMP_OUTPUT_DIR/early.txt"; sleep 30 & wait\n',
        batch={"timeout": 2},
        threshold=0.5,
    )
    job_env = {"EVENT": json.dumps(function.event), "AWS_BATCH_JOB_ID": "job-timeout"}

    started = time.monotonic()
    done = run_as_batch(function, job_env, aws_env, tmp_path / "job")

    assert time.monotonic() - started < 20
    assert done.returncode == 128 + 15, done.stdout + done.stderr
    assert "ran past the deadline" in done.stdout
    assert objects(s3, function.output_bucket) == {}


def test_a_script_in_the_event_is_refused_when_the_definition_says_so(
    make_function: MakeFunction, invoke: Callable[..., dict[str, Any]]
) -> None:
    function = make_function("lambda", "echo from the init script\n")
    function.definition["allow_event_script"] = False
    event = {"script": b64("echo from the event\n"), "greeting": "hi"}

    refused = invoke(function, event)

    assert refused["statusCode"] == 400
    assert "allow_event_script" in body(refused)


def test_a_script_in_the_event_runs_by_default_and_travels_to_batch(
    make_function: MakeFunction,
    invoke: Callable[..., dict[str, Any]],
    batch_queue: Callable[[str], str],
    batch: Any,
) -> None:
    """What `scar run -s script.sh` sends: `{"script": base64}` at the top level."""
    function = make_function("lambda", "echo from the init script\n")
    script = b64('echo "from the event: $(cat "$INPUT_FILE_PATH")"\n')

    ran = invoke(function, {"script": script, "greeting": "hi"})

    assert ran["statusCode"] == 200
    assert body(ran) == 'from the event: {"greeting": "hi"}\n'

    function.definition["execution_mode"] = "batch"
    batch_queue(function.name)
    delegated = invoke(function, {"script": script, "greeting": "hi"})
    assert delegated["statusCode"] == 202
    assert job_environment(the_job(batch, function.name))["SCRIPT"] == script


def test_cmd_args_reach_the_script_as_its_arguments(
    make_function: MakeFunction, invoke: Callable[..., dict[str, Any]]
) -> None:
    """What `scar run ARG...` sends: `{"cmd_args": "<JSON list>"}`."""
    function = make_function("lambda", 'printf "[%s]" "$@"; echo " input=[$INPUT_FILE_PATH]"\n')

    ran = invoke(function, {"cmd_args": json.dumps(["-v", "two words", "$HOME"])})

    assert ran["statusCode"] == 200
    assert body(ran) == "[-v][two words][$HOME] input=[]\n"


def test_a_batch_job_never_runs_a_script_from_its_event(
    make_function: MakeFunction,
    aws_env: dict[str, str],
    s3: Any,
    tmp_path: Path,
) -> None:
    """A job runs the SCRIPT its submitter set, or the definition's: a `script` that reached
    the job's EVENT (planted in a record, or refused in Lambda) does not run."""
    function = make_function("batch", COPY_SCRIPT)
    function.definition["allow_event_script"] = False
    planted = {**function.event, "script": b64('echo pwned > "$TMP_OUTPUT_DIR/pwned"\n')}

    done = run_as_batch(function, {"EVENT": json.dumps(planted)}, aws_env, tmp_path / "job")

    assert done.returncode == 0, done.stdout + done.stderr
    landed = objects(s3, function.output_bucket)
    assert "results/pwned" not in landed
    assert landed["results/photo one.jpg"] == function.data
    assert "ignored" in done.stdout
