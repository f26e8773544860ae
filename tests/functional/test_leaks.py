"""No credential leaks, in any mode, at DEBUG, on the happy path and on every error path.

Known secret values are planted where a deployment has them: the supervisor's AWS keys
and session token in its environment (the moto server accepts any), and the keys of two
storage providers in the function definition (``minio.lab`` and ``s3.archive``, both
pointing at the moto server).  Then the function runs in ``lambda``, ``batch`` and
``lambda-batch`` modes through the handler in-process (botocore at DEBUG too, with a
root handler as the Lambda runtime has), as a Batch job (``python -m supervisor`` in a
subprocess, logging to CloudWatch Logs too), through ``python -m supervisor run``, and
in a udocker container; with a script that succeeds, one that fails, an event that
cannot be understood, an object that does not exist, an output bucket that does not
exist and definitions that cannot be read.  Everything a person or a process could see
is searched for each secret and its URL-encoded forms: stdout and stderr, the log
records, the responses, the messages of raised errors, the Batch jobs as
``describe_jobs`` shows them, the CloudWatch log events, the uploaded objects, the files
left in the work folders, and, while the script runs (it waits for the test to look),
the command line of every process on the machine and the environment of every process
of the script's group.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import pytest
import yaml

from handlers import lambda_handler
from supervisor.errors import ConfigError
from tests.functional.lambda_support import FakeLambdaContext, LambdaFunction, install_function

TAG = uuid.uuid4().hex[:12]
ACCESS_KEY_ID = f"AKIALEAK{TAG.upper()}"
SECRET_ACCESS_KEY = f"leak/Secret+Access={TAG}Key"
SESSION_TOKEN = f"IQoJb3JpZ2luX2Vj//leak+session/{TAG}/token=="
MINIO_ACCESS_KEY = f"minio-access+{TAG}"
MINIO_SECRET_KEY = f"minio/secret+{TAG}=="
ARCHIVE_ACCESS_KEY = f"AKIAARCHIVE{TAG.upper()}"
ARCHIVE_SECRET_KEY = f"archive/secret+{TAG}"
ARCHIVE_SESSION_TOKEN = f"archive//token+{TAG}=="
ENVIRONMENT_SECRETS = (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN)
DEFINITION_SECRETS = (
    MINIO_ACCESS_KEY,
    MINIO_SECRET_KEY,
    ARCHIVE_ACCESS_KEY,
    ARCHIVE_SECRET_KEY,
    ARCHIVE_SESSION_TOKEN,
)
SECRETS = ENVIRONMENT_SECRETS + DEFINITION_SECRETS
CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

# Writes its environment to the outputs, leaves a second process in its group, says it
# started (in MARK_DIR, else in its input folder) and waits (at most 10 s) for the test to
# look at its processes, then copies the input and prints a line; a key with "fail" in it
# makes it exit 3.
SCRIPT = """\
env > "$TMP_OUTPUT_DIR/env.txt"
sleep 7 &
marks="${MARK_DIR:-$TMP_INPUT_DIR}"
touch "$marks/started-$$"
n=0
while [ ! -e "$marks/release-$$" ] && [ "$n" -lt 200 ]; do sleep 0.05; n=$((n + 1)); done
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.bin"
echo "processed $STORAGE_OBJECT_KEY with ${AWS_SECRET_ACCESS_KEY:-no credentials}"
case "$STORAGE_OBJECT_KEY" in
  *fail*) echo "cannot process $STORAGE_OBJECT_KEY" >&2; exit 3 ;;
esac
"""


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}


SECRET_FORMS = sorted({form for secret in SECRETS for form in forms(secret)})


def leaked(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return [form for form in SECRET_FORMS if form in text]


def test_the_secret_values_have_forms_that_differ_when_url_encoded() -> None:
    """The check below would miss an encoded leak if every secret were plain text."""
    key_ids = (ACCESS_KEY_ID, ARCHIVE_ACCESS_KEY)
    assert all(len(forms(secret)) > 1 for secret in SECRETS if secret not in key_ids)
    assert leaked(f"x={quote(SECRET_ACCESS_KEY, safe='')}") != []
    assert leaked("nothing here") == []


# --- what runs while the script waits -------------------------------------------------------


@dataclass
class ProcessView:
    pid: int
    cmdline: bytes
    environ: bytes

    def variables(self) -> dict[str, str]:
        found = {}
        for item in self.environ.split(b"\0"):
            name, sep, value = item.decode("utf-8", errors="replace").partition("=")
            if sep:
                found[name] = value
        return found


@dataclass
class Scan:
    """What /proc showed while one script run waited."""

    script_pid: int
    group: list[ProcessView]
    command_lines: dict[int, bytes]


def _stat_fields(pid: int | str) -> list[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2 :].split()


def scan_processes(script_pid: int) -> Scan:
    pgid = int(_stat_fields(script_pid)[2])
    group: list[ProcessView] = []
    command_lines: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command_lines[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes()
            if int(_stat_fields(entry)[2]) == pgid:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                group.append(ProcessView(int(entry), command_lines[int(entry)], environ))
        except (OSError, IndexError, ValueError):
            continue
    return Scan(script_pid, group, command_lines)


@dataclass
class Scanned:
    """The result of a call (or the error it raised) and the scans of its script runs."""

    result: Any = None
    error: BaseException | None = None
    scans: list[Scan] = field(default_factory=list)


def run_scanned(marks: Path, call: Callable[[], Any], timeout: float = 90.0) -> Scanned:
    """Run ``call`` in a thread; scan /proc each time a script run says it started (a
    ``started-PID`` file anywhere under ``marks``), then let that run go on."""
    outcome = Scanned()

    def target() -> None:
        try:
            outcome.result = call()
        except BaseException as exc:
            outcome.error = exc

    seen = set(marks.rglob("started-*"))
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        alive = thread.is_alive()
        for marker in sorted(set(marks.rglob("started-*")) - seen):
            seen.add(marker)
            pid = int(marker.name.removeprefix("started-"))
            try:
                outcome.scans.append(scan_processes(pid))
            finally:
                (marker.parent / f"release-{pid}").touch()
        if not alive:
            break
        time.sleep(0.01)
    thread.join(5)
    assert not thread.is_alive(), "the call did not finish"
    return outcome


def assert_clean_scans(scans: list[Scan], *, credentials_allowed: bool = False) -> None:
    for scan in scans:
        assert len(scan.group) >= 2, "the script and its background sleep were seen"
        assert scan.script_pid in {view.pid for view in scan.group}
        for pid, line in scan.command_lines.items():
            assert leaked(line) == [], f"process {pid} has a secret on its command line"
        if credentials_allowed:
            continue
        for view in scan.group:
            assert leaked(view.environ) == [], f"process {view.pid} of the script's group"
            assert not set(CREDENTIAL_NAMES) & set(view.variables()), view.variables()


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def secret_env(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``aws_env`` with the known credentials (and a session token) in the environment."""
    values = {
        **aws_env,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
    }
    for name in CREDENTIAL_NAMES:
        monkeypatch.setenv(name, values[name])
    return values


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


@dataclass
class Deployment:
    source: str
    out: str
    definition: dict[str, Any]
    script: Path
    marks: Path


def definition_for(
    name: str, mode: str, source: str, out: str, script: Path, marks: Path, endpoint: str
) -> dict[str, Any]:
    return {
        "name": name,
        "execution_mode": mode,
        "log_level": "DEBUG",
        "init_script": str(script),
        "container": {"environment": {"Variables": {"MARK_DIR": str(marks)}}},
        "input": [{"storage_provider": "minio.lab", "path": f"{source}/incoming"}],
        "output": [{"storage_provider": "s3.archive", "path": f"{out}/results"}],
        "storage_providers": {
            "minio": {
                "lab": {
                    "endpoint": endpoint,
                    "verify": False,
                    "access_key": MINIO_ACCESS_KEY,
                    "secret_key": MINIO_SECRET_KEY,
                }
            },
            "s3": {
                "archive": {
                    "endpoint": endpoint,
                    "region": "us-east-1",
                    "access_key": ARCHIVE_ACCESS_KEY,
                    "secret_key": ARCHIVE_SECRET_KEY,
                    "session_token": ARCHIVE_SESSION_TOKEN,
                }
            },
        },
    }


@pytest.fixture
def deployment(
    s3: Any,
    make_bucket: Callable[[str], str],
    tmp_path: Path,
    marks: Path,
    moto_server: str,
    secret_env: dict[str, str],
) -> Deployment:
    source, out = make_bucket("leak-in"), make_bucket("leak-out")
    s3.put_object(Bucket=source, Key="incoming/good.bin", Body=os.urandom(1024))
    s3.put_object(Bucket=source, Key="incoming/fail.bin", Body=b"makes the script fail")
    script = tmp_path / "process.sh"
    script.write_text(SCRIPT)
    name = f"leaks-{uuid.uuid4().hex[:10]}"
    definition = definition_for(name, "lambda", source, out, script, marks, moto_server)
    return Deployment(source, out, definition, script, marks)


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """botocore at DEBUG, printed by a root handler on stderr as the Lambda runtime has one."""
    root_handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(root_handler)
    caplog.set_level(logging.DEBUG, logger="botocore")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    try:
        yield caplog
    finally:
        logging.getLogger().removeHandler(root_handler)


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    """A notification from the MinIO of the function's input (``minio.lab``)."""
    record = {
        "eventSource": "minio:s3",
        "eventTime": "2026-11-28T10:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 10}},
    }
    return {"Records": [record]}


def api_event(body: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /process",
        "rawPath": "/process",
        "requestContext": {"http": {"method": "POST"}, "time": "28/Nov/2026:10:00:00 +0000"},
        "body": body,
        "isBase64Encoded": False,
    }


def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def error_text(error: BaseException | None) -> str:
    if error is None:
        return ""
    return "".join(traceback.format_exception(error)) + repr(error)


def files_text(*roots: Path) -> str:
    texts = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


def jobs_of(batch: Any, queue: str) -> list[dict[str, Any]]:
    ids = set()
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"):
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]:
            ids.add(summary["jobId"])
    ids |= {
        s["jobId"] for s in batch.list_jobs(jobQueue=queue, jobStatus="FAILED")["jobSummaryList"]
    }
    if not ids:
        return []
    return list(batch.describe_jobs(jobs=sorted(ids))["jobs"])


def job_env(job: Mapping[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job["container"]["environment"]}


def install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deployment: Deployment, **overrides: Any
) -> LambdaFunction:
    definition = {**deployment.definition, **overrides}
    function = install_function(
        monkeypatch, tmp_path / "lambda", SCRIPT, definition, name=definition["name"]
    )
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    return function


# --- the Lambda handler in-process, every mode ----------------------------------------------


@pytest.mark.parametrize("mode", ["lambda", "batch", "lambda-batch"])
def test_no_secret_in_any_output_of_the_handler(
    mode: str,
    deployment: Deployment,
    s3: Any,
    batch: Any,
    batch_queue: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    debug_logging: pytest.LogCaptureFixture,
) -> None:
    name = deployment.definition["name"]
    queue = batch_queue(name)
    function = install(
        monkeypatch, tmp_path, deployment, name=name, execution_mode=mode, log_level="INFO"
    )
    missing_bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    events: dict[str, Any] = {
        "good": s3_event(deployment.source, "incoming/good.bin"),
        "failing": s3_event(deployment.source, "incoming/fail.bin"),
        "missing": s3_event(deployment.source, "incoming/no-such-object.bin"),
        "bad": {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}}}]},
        "api": api_event("hello"),
    }
    runs = {
        label: run_scanned(
            deployment.marks,
            lambda event=event: lambda_handler.handler(event, FakeLambdaContext(name)),
        )
        for label, event in events.items()
    }
    # An output bucket that does not exist: the upload fails (a 500 for an API caller).
    lambda_handler.reset()
    broken_output = [{"storage_provider": "s3.archive", "path": f"{missing_bucket}/x"}]
    install(monkeypatch, tmp_path, deployment, name=name, execution_mode=mode, output=broken_output)
    runs["upload"] = run_scanned(
        deployment.marks, lambda: lambda_handler.handler(api_event("x"), FakeLambdaContext(name))
    )
    out, err = capfd.readouterr()

    statuses = {label: (run.result or {}).get("statusCode") for label, run in runs.items()}
    raised = {label: type(run.error).__name__ for label, run in runs.items() if run.error}
    assert statuses["bad"] == 400
    if mode == "lambda":
        assert statuses["good"] == 200
        assert raised.keys() == {"failing", "missing"}, raised
        assert (statuses["api"], statuses["upload"]) == (200, 500)
    elif mode == "batch":
        assert statuses == {"good": 202, "failing": 202, "missing": 202, "bad": 400} | {
            "api": 202,
            "upload": 202,
        }
    else:
        assert (statuses["good"], statuses["failing"]) == (200, 202)
    jobs = jobs_of(batch, queue)
    assert len(jobs) == {"lambda": 0, "batch": 5, "lambda-batch": 1}[mode]
    for job in jobs:
        env = job_env(job)
        assert {"EVENT", "CONTEXT", "AWS_LAMBDA_REQUEST_ID"} <= set(env)
        assert not {"FUNCTION_CONFIG", "FDL", *CREDENTIAL_NAMES} & set(env)
    scans = [scan for run in runs.values() for scan in run.scans]
    assert len(scans) == {"lambda": 4, "batch": 0, "lambda-batch": 4}[mode]
    assert_clean_scans(scans)
    uploaded = objects(s3, deployment.out)
    if mode != "batch":
        env_text = uploaded["results/env.txt"].decode()
        assert "MARK_DIR=" in env_text
        assert not any(f"{name}=" in env_text for name in CREDENTIAL_NAMES)
    logged = [record.getMessage() for record in debug_logging.records]
    assert "Credential=***" in err, "botocore's DEBUG lines with the signed headers, redacted"
    seen = {
        "stdout": out,
        "stderr": err,
        "log records": "\n".join(logged) + debug_logging.text,
        "responses": json.dumps({label: run.result for label, run in runs.items()}),
        "errors": "\n".join(error_text(run.error) for run in runs.values()),
        "jobs": json.dumps(jobs, default=str),
        "uploaded": "\n".join(data.decode(errors="replace") for data in uploaded.values()),
        "work folder": files_text(function.work_dir),
    }
    assert '"level":"DEBUG"' in out.replace(" ", "") or mode == "batch"
    assert {where: leaked(text) for where, text in seen.items() if leaked(text)} == {}


def test_the_script_gets_credentials_only_when_the_definition_asks(
    deployment: Deployment,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    install(
        monkeypatch,
        tmp_path,
        deployment,
        container={
            **deployment.definition["container"],
            "pass_aws_credentials": True,
        },
    )
    event = s3_event(deployment.source, "incoming/good.bin")

    run = run_scanned(
        deployment.marks, lambda: lambda_handler.handler(event, FakeLambdaContext("leaks"))
    )
    out, err = capfd.readouterr()

    assert run.error is None, error_text(run.error)
    assert run.result["statusCode"] == 200
    assert_clean_scans(run.scans, credentials_allowed=True)
    (scan,) = run.scans
    leader = next(view for view in scan.group if view.pid == scan.script_pid)
    variables = leader.variables()
    assert {name: variables.get(name) for name in CREDENTIAL_NAMES} == {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
    }
    assert variables["AWS_REGION"] == "us-east-1"
    # The definition's own storage keys are never the script's.
    assert not [s for s in DEFINITION_SECRETS if s in leader.environ.decode()]
    # The script printed its secret key: the log line is redacted.
    assert "with ***" in out
    assert leaked(out + err) == []


# --- a Batch job: python -m supervisor in a subprocess --------------------------------------


def batch_job_environment(
    deployment: Deployment, secret_env: Mapping[str, str], event: Any, work: Path
) -> dict[str, str]:
    definition = {**deployment.definition, "execution_mode": "lambda-batch"}
    return {
        "PATH": os.environ["PATH"],
        "FUNCTION_CONFIG": base64.b64encode(json.dumps(definition).encode()).decode(),
        "EVENT": json.dumps(event),
        "CONTEXT": json.dumps({"aws_request_id": str(uuid.uuid4()), "function_name": "leaks"}),
        "AWS_BATCH_JOB_ID": f"job-{uuid.uuid4().hex[:8]}",
        "SUPERVISOR_WORK_DIR": str(work),
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "LOG_LEVEL": "DEBUG",
        **{name: secret_env[name] for name in CREDENTIAL_NAMES},
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": secret_env["AWS_ENDPOINT_URL"],
    }


def test_no_secret_in_any_output_of_a_batch_job(
    deployment: Deployment, s3: Any, secret_env: dict[str, str], tmp_path: Path
) -> None:
    log_group = f"/leaks/{TAG}/{uuid.uuid4().hex[:6]}"
    results = {}
    scans: list[Scan] = []
    job_ids = {}
    for key in ("incoming/good.bin", "incoming/fail.bin", "incoming/no-such-object.bin"):
        work = tmp_path / f"job-{len(results)}"
        work.mkdir()
        env = batch_job_environment(deployment, secret_env, s3_event(deployment.source, key), work)
        env["SUPERVISOR_LOG_GROUP"] = log_group
        job_ids[key] = env["AWS_BATCH_JOB_ID"]
        run = run_scanned(
            deployment.marks,
            lambda env=env, work=work: subprocess.run(
                [sys.executable, "-m", "supervisor"],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            ),
        )
        assert run.error is None
        results[key] = (run.result, work)
        scans += run.scans

    codes = {key: result.returncode for key, (result, _) in results.items()}
    assert codes == {
        "incoming/good.bin": 0,
        "incoming/fail.bin": 3,
        "incoming/no-such-object.bin": 1,
    }, {key: result.stdout for key, (result, _) in results.items()}
    assert len(scans) == 2
    assert_clean_scans(scans)
    logs = boto3.client(
        "logs", endpoint_url=secret_env["AWS_ENDPOINT_URL"], region_name="us-east-1"
    )
    cloudwatch = []
    for job_id in job_ids.values():
        events = logs.get_log_events(logGroupName=log_group, logStreamName=job_id)["events"]
        cloudwatch += [event["message"] for event in events]
    assert any("DEBUG" in line for line in cloudwatch), cloudwatch[:5]
    assert any("cannot process incoming/fail.bin" in line for line in cloudwatch)
    uploaded = objects(s3, deployment.out)
    env_text = uploaded["results/env.txt"].decode()
    assert not any(f"{name}=" in env_text for name in CREDENTIAL_NAMES)
    assert " DEBUG supervisor." in results["incoming/good.bin"][0].stdout
    for key, (result, work) in results.items():
        assert leaked(result.stdout + result.stderr) == [], key
        assert leaked(files_text(work)) == [], key
    assert leaked("\n".join(cloudwatch)) == []
    assert leaked(b"".join(uploaded.values())) == []


# --- a local run: python -m supervisor run --------------------------------------------------


def test_no_secret_in_any_output_of_a_local_run(
    deployment: Deployment, secret_env: dict[str, str], tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    (storage / deployment.source / "incoming").mkdir(parents=True)
    (storage / deployment.source / "incoming" / "fail.bin").write_bytes(b"local data")
    (storage / deployment.out).mkdir(parents=True)
    config = tmp_path / "function.yaml"
    config.write_text(yaml.safe_dump(deployment.definition))
    event = tmp_path / "event.json"
    event.write_text(json.dumps(s3_event(deployment.source, "incoming/fail.bin")))
    work = tmp_path / "run-work"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **{name: secret_env[name] for name in CREDENTIAL_NAMES},
    }
    command = [
        sys.executable, "-m", "supervisor", "run", "--config", str(config), "--event",
        str(event), "--storage-root", str(storage), "--work-dir", str(work),
        "--mode", "lambda-batch", "--log-level", "DEBUG", "--timeout", "60", "--json",
    ]  # fmt: skip

    run = run_scanned(
        deployment.marks,
        lambda: subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False
        ),
    )

    assert run.error is None
    result = run.result
    report = json.loads(result.stdout)
    assert report["records"][0]["status"] == "delegated", report
    assert [job["exit_code"] for job in report["jobs"]] == [3]
    assert len(run.scans) == 2, "the script ran here, then in the local Batch job"
    assert_clean_scans(run.scans)
    job_log = Path(report["jobs"][0]["log"]).read_text()
    assert "DEBUG" in result.stderr
    assert "DEBUG" in job_log
    assert leaked(result.stdout + result.stderr) == []
    assert leaked(files_text(work)) == []
    assert leaked(files_text(storage)) == []


# --- definitions that cannot be read --------------------------------------------------------

BROKEN_DEFINITIONS = {
    "yaml-syntax-on-the-secret-line": (
        f"name: f\nstorage_providers:\n  minio:\n    lab: {{secret_key: {MINIO_SECRET_KEY} : x}}\n"
    ),
    "unclosed-quote-before-the-secret": (
        f'name: f\nstorage_providers:\n  s3:\n    a: {{secret_key: "{ARCHIVE_SECRET_KEY}, x: 1}}\n'
    ),
    "providers-as-a-list": (
        f"name: f\nstorage_providers:\n  minio: [{{endpoint: x, secret_key: {MINIO_SECRET_KEY}}}]\n"
    ),
    "providers-as-text": f'name: f\nstorage_providers: "secret_key={ARCHIVE_SECRET_KEY}"\n',
    "a-provider-as-text": f"name: f\nstorage_providers:\n  s3:\n    a: {ARCHIVE_SESSION_TOKEN}\n",
    "variables-as-a-list": (
        f"name: f\ncontainer:\n  environment:\n    Variables: [{ARCHIVE_SECRET_KEY}]\n"
    ),
}


@pytest.mark.parametrize("text", BROKEN_DEFINITIONS.values(), ids=BROKEN_DEFINITIONS.keys())
def test_a_definition_that_cannot_be_read_is_refused_without_its_secrets(
    text: str,
    secret_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FDL", base64.b64encode(text.encode()).decode())
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("SUPERVISOR_WORK_DIR", str(tmp_path / "work"))
    with pytest.raises(ConfigError) as raised:
        lambda_handler.handler(s3_event("bucket", "key"), FakeLambdaContext("f"))
    (tmp_path / "function.yaml").write_text(text)
    job = subprocess.run(
        [sys.executable, "-m", "supervisor"],
        env={
            "PATH": os.environ["PATH"],
            "FUNCTION_CONFIG": text,
            "EVENT": "{}",
            "LOG_LEVEL": "DEBUG",
            **{name: secret_env[name] for name in CREDENTIAL_NAMES},
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    validate = subprocess.run(
        [sys.executable, "-m", "supervisor", "validate", str(tmp_path / "function.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out, err = capfd.readouterr()

    message = str(raised.value)
    assert "storage_providers" in message or "not valid YAML" in message or "container" in message
    assert (job.returncode, validate.returncode) == (2, 1)
    assert "env FUNCTION_CONFIG" in job.stdout
    seen = error_text(raised.value) + out + err + job.stdout + job.stderr + validate.stderr
    assert leaked(seen) == []


# --- udocker --------------------------------------------------------------------------------

PROOT = shutil.which("proot")
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "env", "sleep", "touch", "[", "cp", "echo")


@pytest.fixture
def busybox_image(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    for folder in ("bin", "etc", "tmp"):
        (root / folder).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    path = tmp_path / "rootfs.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(root, arcname=".")
    return path


@pytest.mark.skipif(
    PROOT is None or not BUSYBOX.is_file(), reason="needs proot and /bin/busybox (apt-get)"
)
def test_no_secret_reaches_a_udocker_container_or_its_command_lines(
    deployment: Deployment,
    s3: Any,
    busybox_image: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("UDOCKER_DIR", str(tmp_path / "udocker"))
    monkeypatch.setenv("UDOCKER_USE_PROOT_EXECUTABLE", str(PROOT))
    monkeypatch.setenv("UDOCKER_TARBALL", "")
    # No MARK_DIR: the container sees only the invocation folder, so the script says it
    # started in its input folder.
    container = {
        "environment": {"Variables": {"MARK_DIR": ""}},
        "image": "busybox-leaks:latest",
        "image_file": str(busybox_image),
    }
    function = install(
        monkeypatch, tmp_path, deployment, container=container, udocker={"execmode": "P1"}
    )
    event = s3_event(deployment.source, "incoming/good.bin")

    run = run_scanned(
        function.work_dir, lambda: lambda_handler.handler(event, FakeLambdaContext("leaks", 90))
    )
    out, err = capfd.readouterr()

    assert run.error is None, error_text(run.error)
    assert run.result["statusCode"] == 200
    assert len(run.scans) == 1
    assert_clean_scans(run.scans)
    commands = b" ".join(view.cmdline for view in run.scans[0].group)
    assert b"udocker" in commands or b"proot" in commands, "the scan saw the container"
    uploaded = objects(s3, deployment.out)
    env_text = uploaded["results/env.txt"].decode()
    assert "MARK_DIR=" in env_text
    assert not any(f"{name}=" in env_text for name in CREDENTIAL_NAMES)
    assert leaked(out + err) == []
    assert leaked(b"".join(uploaded.values())) == []
