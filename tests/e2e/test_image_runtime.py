"""The Lambda container-image runtime: ``python -m supervisor`` under a Lambda Runtime API.

Each test deploys a function as a container image would run it: ``python -m supervisor`` in
a subprocess with ``AWS_LAMBDA_RUNTIME_API`` pointing at a Runtime API served by the test
(``runtime_api.RuntimeAPI``), the definition in ``FDL``, the variables Lambda sets, and the
moto server as S3 and Batch.  awslambdaric, in that subprocess, fetches the events, calls
the handler and posts the outcomes; the test checks what Lambda would see and what landed.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runtime_api import Invocation, RuntimeAPI

JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")

# A key with "fail" fails, one with "slow" outlasts any deadline; any other is copied.
# $PPID tells which process started the script: the supervisor itself, not a container.
SCRIPT = """\
set -eu
case "$STORAGE_OBJECT_KEY" in
  *fail*) echo "cannot process $STORAGE_OBJECT_KEY" >&2; exit 3 ;;
  *slow*) sleep 30 ;;
esac
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
echo "processed $STORAGE_OBJECT_KEY in process $PPID"
"""


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-28T10:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 5}},
    }
    return {"Records": [record]}


def body(invocation: Invocation) -> dict[str, Any]:
    response: dict[str, Any] = invocation.json()
    assert response["isBase64Encoded"] is True
    response["text"] = base64.b64decode(response["body"]).decode()
    return response


@dataclass
class ImageFunction:
    """A function deployed as a container image: its process, Runtime API and buckets."""

    name: str
    api: RuntimeAPI
    process: subprocess.Popen[bytes]
    log: Path
    input_bucket: str
    output_bucket: str

    def event(self, key: str) -> dict[str, Any]:
        return s3_event(self.input_bucket, f"incoming/{key}")

    def invoke(self, event: Any, timeout_s: float = 20.0) -> Invocation:
        """Send ``event`` and wait for the function to answer it."""
        invocation = self.api.invoke(event, timeout_s)
        give_up = time.monotonic() + timeout_s + 10
        while not invocation.done.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > give_up:
                pytest.fail(
                    f"no answer (exit code {self.process.poll()}); the function's log:\n"
                    + self.log.read_text(errors="replace")
                )
        return invocation

    def output(self, s3: Any) -> dict[str, bytes]:
        listing = s3.list_objects_v2(Bucket=self.output_bucket).get("Contents", [])
        return {
            item["Key"]: s3.get_object(Bucket=self.output_bucket, Key=item["Key"])["Body"].read()
            for item in listing
        }


Deploy = Callable[..., ImageFunction]


@pytest.fixture
def deploy(
    aws_env: dict[str, str],
    clean_environ: dict[str, str],
    make_bucket: Callable[[str], str],
    s3: Any,
    tmp_path: Path,
) -> Iterator[Deploy]:
    """Start ``python -m supervisor`` as Lambda starts a container image's entry point."""
    started: list[ImageFunction] = []

    def start(
        mode: str = "lambda", *, definition: dict[str, Any] | None = None, **env: str
    ) -> ImageFunction:
        name = f"img-{uuid.uuid4().hex[:10]}"
        task_root = tmp_path / name / "task"
        task_root.mkdir(parents=True)
        (task_root / "process.sh").write_text(SCRIPT)
        input_bucket, output_bucket = make_bucket("input"), make_bucket("output")
        for key in ("photo.jpg", "second.jpg", "fail.jpg", "slow.jpg"):
            s3.put_object(Bucket=input_bucket, Key=f"incoming/{key}", Body=f"data of {key}")
        fdl = {
            "name": name,
            "execution_mode": mode,
            "init_script": str(task_root / "process.sh"),
            "container": {"timeout_threshold": 1},
            "input": [{"storage_provider": "s3", "path": f"{input_bucket}/incoming"}],
            "output": [{"storage_provider": "s3", "path": f"{output_bucket}/results"}],
            "batch": {"delegate_on": ["timeout"]},
            **(definition or {}),
        }
        api = RuntimeAPI(name).start()
        environment = {
            **clean_environ,
            **aws_env,
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/11/28/[$LATEST]{uuid.uuid4().hex}",
            "LAMBDA_TASK_ROOT": str(task_root),
            "FDL": base64.b64encode(json.dumps(fdl).encode()).decode("ascii"),
            "SUPERVISOR_WORK_DIR": str(tmp_path / name / "tmp"),
            **env,
        }
        log = tmp_path / name / "function.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "supervisor"],
                cwd=task_root,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        function = ImageFunction(name, api, process, log, input_bucket, output_bucket)
        started.append(function)
        return function

    yield start
    for function in started:
        function.process.terminate()
        try:
            function.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            function.process.kill()
            function.process.wait()
        function.api.close()


def jobs_in(batch: Any, queue: str) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for status in JOB_STATUSES:
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]:
            found[summary["jobId"]] = summary
    return list(found.values())


def test_an_s3_event_is_answered_with_the_script_output_and_the_object_lands(
    deploy: Deploy, s3: Any
) -> None:
    function = deploy("lambda")

    answer = function.invoke(function.event("photo.jpg"))

    assert answer.outcome == "response", answer.body
    response = body(answer)
    assert response["statusCode"] == 200
    assert response["text"] == (
        f"processed incoming/photo.jpg in process {function.process.pid}\n"
    ), "the script did not run as a child of the supervisor"
    assert response["headers"]["amz-lambda-request-id"] == answer.request_id
    assert response["headers"]["amz-log-group-name"] == f"/aws/lambda/{function.name}"
    assert function.output(s3) == {"results/photo.jpg": b"data of photo.jpg"}
    assert function.api.init_errors == []


def test_an_event_that_cannot_be_understood_is_answered_400(deploy: Deploy, s3: Any) -> None:
    function = deploy("lambda")
    event = function.event("photo.jpg")
    del event["Records"][0]["s3"]["object"]

    answer = function.invoke(event)

    assert answer.outcome == "response", answer.body
    response = body(answer)
    assert response["statusCode"] == 400
    assert "Records[0].s3.object is missing" in response["text"]
    assert function.output(s3) == {}


def test_a_failing_script_is_posted_as_an_invocation_error(deploy: Deploy, s3: Any) -> None:
    function = deploy("lambda")

    answer = function.invoke(function.event("fail.jpg"))

    assert answer.outcome == "error", answer.body
    error = answer.json()
    assert error["errorType"] == "InvocationError"
    assert "incoming/fail.jpg" in error["errorMessage"]
    assert function.output(s3) == {}
    assert function.process.poll() is None, "an invocation error ended the runtime"


def test_lambda_batch_hands_the_record_to_batch_before_the_deadline(
    deploy: Deploy, batch_queue: Callable[[str], str], batch: Any, s3: Any
) -> None:
    function = deploy("lambda-batch")
    queue = batch_queue(function.name)
    function.invoke(function.event("photo.jpg"))  # warm: the first invocation builds the runtime
    event = function.event("slow.jpg")

    answer = function.invoke(event, timeout_s=4)

    assert answer.outcome == "response", answer.body
    assert answer.answered_ms is not None
    assert answer.deadline_ms is not None
    assert answer.answered_ms < answer.deadline_ms, "answered after the Lambda deadline"
    response = body(answer)
    assert response["statusCode"] == 202
    (summary,) = jobs_in(batch, queue)
    assert summary["jobId"] in response["text"]
    (job,) = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"]
    environment = {item["name"]: item["value"] for item in job["container"]["environment"]}
    assert json.loads(environment["EVENT"]) == event
    assert environment["AWS_LAMBDA_REQUEST_ID"] == answer.request_id
    context = json.loads(environment["CONTEXT"])
    assert context["function_name"] == function.name
    assert context["aws_request_id"] == answer.request_id
    assert function.output(s3) == {"results/photo.jpg": b"data of photo.jpg"}, (
        "the killed run uploaded something"
    )


def test_one_process_serves_the_invocations_of_a_warm_environment(deploy: Deploy, s3: Any) -> None:
    function = deploy("lambda")

    first = function.invoke(function.event("photo.jpg"))
    failed = function.invoke(function.event("fail.jpg"))
    second = function.invoke(function.event("second.jpg"))

    assert [first.outcome, failed.outcome, second.outcome] == ["response", "error", "response"]
    assert body(first)["text"].endswith(f" in process {function.process.pid}\n")
    assert body(second)["text"].endswith(f" in process {function.process.pid}\n")
    assert function.api.wait_for_next_calls(4) == 4, "it did not wait for a fourth event"
    assert function.process.poll() is None
    assert function.output(s3) == {
        "results/photo.jpg": b"data of photo.jpg",
        "results/second.jpg": b"data of second.jpg",
    }


def test_the_image_runtime_wins_over_the_managed_runtime_name(deploy: Deploy, s3: Any) -> None:
    """An AWS base image's wrapper says AWS_Lambda_python3.12: still no udocker container."""
    function = deploy(
        "lambda",
        definition={"container": {"image": "alpine:3.19", "timeout_threshold": 1}},
        AWS_EXECUTION_ENV="AWS_Lambda_python3.12",
    )

    answer = function.invoke(function.event("photo.jpg"))

    assert answer.outcome == "response", answer.body
    assert body(answer)["text"].endswith(f" in process {function.process.pid}\n")
    assert function.output(s3) == {"results/photo.jpg": b"data of photo.jpg"}


def test_a_bad_definition_fails_the_invocation_naming_the_key(deploy: Deploy) -> None:
    function = deploy("lambda", definition={"container": {"timeout_threshold": "soon"}})

    answer = function.invoke(function.event("photo.jpg"))

    assert answer.outcome == "error", answer.body
    error = answer.json()
    assert error["errorType"] == "ConfigError"
    assert "container.timeout_threshold: 'soon' is invalid" in error["errorMessage"]
    assert function.api.init_errors == []


def test_without_awslambdaric_it_says_what_to_install(
    clean_environ: dict[str, str], tmp_path: Path
) -> None:
    hidden = tmp_path / "no-ric"
    hidden.mkdir()
    (hidden / "awslambdaric.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'awslambdaric'\", name='awslambdaric')\n"
    )
    environment = {
        **clean_environ,
        "PYTHONPATH": str(hidden),
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "EVENT": "{}",
    }

    done = subprocess.run(
        [sys.executable, "-m", "supervisor"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "pip install '.[image]' in a clone" in done.stderr
    assert "awslambdaric" in done.stderr
    assert "Traceback" not in done.stderr
