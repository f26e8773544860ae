#!/usr/bin/env python3
"""Benchmark serverless-supervisor ("ours") against faas-supervisor 1.5.8 ("theirs").

    .venv/bin/python bench/run.py                   # everything (about 4 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick           # a smoke test: fewer runs, smaller data
    .venv/bin/python bench/run.py --cases 1,2 --theirs-python /path/to/python
    .venv/bin/python bench/run.py --ours-only       # no faas-supervisor environment needed

One moto server (S3, Batch, IAM) on a free loopback port serves both implementations in the
same run.  Each implementation is measured by a driver (``bench/drivers/ours.py``,
``bench/drivers/theirs.py``) run under its own interpreter, which calls the Lambda handler
in-process with a fake Lambda context and reports timings as JSON; the runner prepares the
data, starts the drivers, checks what they did on the server (jobs, uploaded objects) and
prints a table of medians with the ratio ours/theirs.  The same results go to
``bench/results.json`` (``--output``).

faas-supervisor runs in a virtual environment of its own, ``bench/.venv-theirs``, created on
first use (``--no-deps``, as its wheel's requirement string is malformed, plus its
dependencies with the same boto3 as ours), or the interpreter given by ``--theirs-python``.

Cases: 1 cold start, 2 warm batch-mode delegation, 3 warm small invocation, 4 many output
files (against the server, then behind a proxy adding 20 ms per request), 5 a big input and
output, 6 the watchdog at the deadline, 7 a chatty script (100 MiB of stdout, ours only).
How each is measured is in each ``case_*`` method.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DRIVERS = BENCH / "drivers"
THEIRS_VENV = BENCH / ".venv-theirs"
THEIRS_VERSION = "1.5.8"
# faas-supervisor's own requirements, less its malformed one (webdavclient3 + requests).
THEIRS_DEPS = ("pyyaml", "requests", "setuptools", "webdavclient3==3.14.6")

FUNCTION = "bench-fn"  # function name = Batch job queue = job definition (both read it so)
REGION = "us-east-1"
IN_BUCKET = "bench-in"
OUT_BUCKET = "bench-out"
KIB = 1024
MIB = 1024 * KIB
RESERVE = 2.0  # container.timeout_threshold of every function, both implementations
WATCHDOG_DEADLINE = 6.0
CONCURRENCY = 10  # raw parallel puts: threads and connections (ours' pool is 10 too)
PROXY_DELAY = 0.02
LAMBDA_TIMEOUT = 600.0  # the Lambda timeout of cases 1 to 5: large, nothing should time out
FAKE_IMAGE = "bench-plain"
LAMBDA_RUNTIME = f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"

# Each driver's warm-up call is an event for incoming/warmup.bin: the script does nothing much.
WARMUP_GUARD = (
    'case "$STORAGE_OBJECT_KEY" in *warmup*)'
    ' echo warm > "$TMP_OUTPUT_DIR/warm.txt"; exit 0;; esac\n'
)
SCRIPTS = {
    "copy": WARMUP_GUARD + 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n',
    # Hard links: the files appear in a few milliseconds (a copy of 1,100 files can take a
    # second on a fresh ext4 folder, which would hide what the uploads cost).
    "many": WARMUP_GUARD
    + 'cp -al "$SOURCE_DIR/." "$TMP_OUTPUT_DIR/" 2>/dev/null'
    + ' || cp -R "$SOURCE_DIR/." "$TMP_OUTPUT_DIR/"\n',
    "big": WARMUP_GUARD
    + 'ln "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/big.out" 2>/dev/null'
    + ' || cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/big.out"\n',
    # Case 7: the same lines to stdout (logged) or to /dev/null.
    "chatty": WARMUP_GUARD + 'cat "$CHATTY_FILE"\n',
    "silent": WARMUP_GUARD + 'cat "$CHATTY_FILE" > /dev/null\n',
    "sleeper": WARMUP_GUARD.replace('echo warm > "$TMP_OUTPUT_DIR/warm.txt"; ', "")
    + 'echo $$ > "$PIDFILE"\nsleep 300 &\necho $! >> "$PIDFILE"\nsleep 300\n',
}

# How faas-supervisor is driven, and what is not like for like (written to the JSON, printed).
NOTES = (
    "theirs runs a plain script only in the Lambda image runtime (AWS_Lambda_Image): cases 3 to "
    "5 use that; ours uses its zip-runtime handler, which runs a plain /bin/sh process too.",
    "theirs delegates (batch mode, lambda-batch on timeout) only in the zip runtime, where it "
    "always runs udocker: cases 1, 2 and 6 use that, with bench/drivers/fake_udocker.sh as "
    "UDOCKER_EXEC (exec /bin/sh SCRIPT: no udocker, no proot, which favours theirs).",
    "theirs' watchdog waits int(remaining s) - int(timeout_threshold) seconds, then SIGKILLs the "
    "script process alone (not its group): with a 6 s Lambda it kills about 1 s early.",
    "case 4 behind the proxy: theirs runs once (about 30 s a run), the other sides 5 times.",
    "case 7 runs ours only: it compares ours with a chatty script and with a silent one.",
    "both get the same definition in FDL (base64 JSON), log at INFO to a file, use the same "
    "Python and boto3, and start with -S and PYTHONPATH (--site: with site processing).",
)


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and where its log is."""


@dataclass(frozen=True)
class Plan:
    """How much of each case to run."""

    cold_reps: int
    batch_calls: int
    small_calls: int
    many_top: int  # files in the output folder itself
    many_sub: int  # and in a subfolder
    many_reps: int
    many_reps_slow: int  # theirs behind the proxy: about 30 s a run at full size
    big_mib: int
    big_reps: int
    watchdog_reps: int
    chatty_mib: int
    chatty_reps: int


FULL = Plan(11, 50, 30, 1000, 100, 5, 1, 200, 3, 3, 100, 3)
QUICK = Plan(3, 10, 5, 100, 10, 1, 1, 16, 1, 1, 16, 1)
# Case 7's output: lines like a video encoder's progress log, 100 bytes each.
CHATTY_LINE = (
    "frame=%8d fps= 25 q=28.0 size=%8dkB time=00:00:05.00 bitrate=1677.7kbits/s speed=1.0x\n"
)


@dataclass(frozen=True)
class Impl:
    name: str
    python: str
    driver: Path
    module: str  # the handler module a Lambda imports
    path: str = ""  # when set: start with -S (no site, no .pth files) and this PYTHONPATH

    def command(self, *args: str) -> list[str]:
        return [self.python, "-S", *args] if self.path else [self.python, *args]


@dataclass
class Row:
    case: str
    metric: str
    unit: str
    ours: float | str | None
    theirs: float | str | None = None
    ratio: float | None = None
    reference: float | str | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Results:
    machine: dict[str, Any]
    settings: dict[str, Any]
    cases: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))])


def ratio(ours: Any, theirs: Any) -> float | None:
    if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs:
        return float(ours) / float(theirs)
    return None


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def s3_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    """An S3 "object created" notification, as S3 sends it to Lambda."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:BENCH"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "BENCH", "x-amz-id-2": "BENCH"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "bench",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "BENCH"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": key, "size": size, "eTag": "0", "sequencer": "0"},
                },
            }
        ]
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_interpreter() -> None:
    """Run under the project's virtual environment (boto3, moto), re-executing if needed."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        venv = ROOT / ".venv"
        if (venv / "bin" / "python").exists() and Path(sys.prefix) != venv:
            python = str(venv / "bin" / "python")
            os.execv(python, [python, *sys.argv])  # noqa: S606 (this script, another interpreter)
        raise SystemExit(
            "bench/run.py needs boto3 and moto[server]: run it with the project's "
            "environment (./build.sh test creates .venv), e.g. .venv/bin/python bench/run.py"
        ) from None


def ensure_theirs(python: str | None) -> str:
    """The interpreter of faas-supervisor's environment; create bench/.venv-theirs if needed."""
    check = ["-c", "import faassupervisor.supervisor, boto3, yaml"]
    if python is not None:
        if subprocess.run([python, *check], capture_output=True).returncode != 0:
            raise SystemExit(f"--theirs-python {python}: cannot import faassupervisor there")
        return python
    venv_python = THEIRS_VENV / "bin" / "python"
    if (
        venv_python.exists()
        and subprocess.run([str(venv_python), *check], capture_output=True).returncode == 0
    ):
        return str(venv_python)
    print(f"creating {THEIRS_VENV.relative_to(ROOT)} (faas-supervisor {THEIRS_VERSION})...")
    shutil.rmtree(THEIRS_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(THEIRS_VENV)], check=True)
    pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Its wheel's requirement "webdavclient3 (==3.14.6requests)" breaks pip >= 24.1: take the
    # package alone, then its dependencies, with the same SDK as ours for a fair comparison.
    sdk = [f"{name}=={metadata.version(name)}" for name in ("boto3", "botocore", "s3transfer")]
    for step in (["--no-deps", f"faas-supervisor=={THEIRS_VERSION}"], [*sdk, *THEIRS_DEPS]):
        done = subprocess.run([*pip, *step], capture_output=True, text=True)
        # pip's resolver warns that the malformed requirement is unmet: expected, ignored.
        if done.returncode != 0:
            raise SystemExit(f"pip install {' '.join(step)} failed:\n{done.stdout}{done.stderr}")
    if subprocess.run([str(venv_python), *check]).returncode != 0:
        raise SystemExit(f"{venv_python}: faas-supervisor does not import")
    return str(venv_python)


class Bench:
    """One run: the moto server, the data, the drivers and what they measured."""

    def __init__(self, plan: Plan, impls: list[Impl], work: Path, quick: bool) -> None:
        self.plan = plan
        self.impls = impls
        self.work = work
        self.quick = quick
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.endpoint = ""
        self._processes: list[subprocess.Popen[bytes]] = []
        self.results = Results(machine=machine_info(impls), settings=asdict(plan))
        self.results.settings.update(
            quick=quick,
            reserve_s=RESERVE,
            watchdog_deadline_s=WATCHDOG_DEADLINE,
            proxy_delay_s=PROXY_DELAY,
            raw_concurrency=CONCURRENCY,
            lambda_runtime_env={"ours": LAMBDA_RUNTIME},
        )
        self.s3: Any = None
        self.batch: Any = None

    # -- infrastructure ------------------------------------------------------------------

    def start(self) -> None:
        port = _free_port()
        log = open(self.logs / "moto.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._processes.append(process)
        self.endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()  # noqa: S310
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(
                        f"moto did not start (log: {self.logs / 'moto.log'})"
                    ) from None
                time.sleep(0.1)
        request = urllib.request.Request(  # noqa: S310 (the moto server on loopback)
            f"{self.endpoint}/moto-api/config",
            data=json.dumps({"batch": {"use_docker": False}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        for name, value in self.aws_env(self.endpoint).items():
            os.environ[name] = value
        self.s3 = self.client("s3")
        self.batch = self.client("batch")
        self.s3.create_bucket(Bucket=IN_BUCKET)
        self.s3.create_bucket(Bucket=OUT_BUCKET)
        self.s3.put_object(Bucket=IN_BUCKET, Key="incoming/warmup.bin", Body=b"warm-up\n")
        self.s3.put_object(Bucket=IN_BUCKET, Key="incoming/small.bin", Body=os.urandom(10 * KIB))
        self._batch_queue()
        for name, text in SCRIPTS.items():
            (self.work / "scripts").mkdir(exist_ok=True)
            (self.work / "scripts" / f"{name}.sh").write_text(text)

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()

    @contextmanager
    def proxy(self, delay: float) -> Iterator[str]:
        """A latency proxy in front of the moto server; yields its URL."""
        process = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "latency_proxy.py"),
                "--upstream",
                self.endpoint,
                "--delay",
                str(delay),
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.logs / "proxy.log", "wb"),  # noqa: SIM115
        )
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        if not url.startswith("http://"):
            process.kill()
            raise BenchError(f"the latency proxy did not start (log: {self.logs / 'proxy.log'})")
        try:
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)

    def client(self, service: str, endpoint: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        session: Any = boto3.session.Session()
        return session.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint or self.endpoint,
            config=Config(max_pool_connections=CONCURRENCY),
        )

    def _batch_queue(self) -> None:
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"{FUNCTION}-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        environment = self.batch.create_compute_environment(
            computeEnvironmentName=f"{FUNCTION}-ce",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role,
        )["computeEnvironmentArn"]
        self.batch.create_job_queue(
            jobQueueName=FUNCTION,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )
        self.batch.register_job_definition(
            jobDefinitionName=FUNCTION,
            type="container",
            containerProperties={
                "image": "serverless-supervisor:latest",
                "command": ["python", "-m", "supervisor"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": "1024"},
                ],
            },
        )

    @staticmethod
    def aws_env(endpoint: str) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "AKIABENCHMARK0000001",
            "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
        }

    # -- functions and drivers -----------------------------------------------------------

    def definition(
        self,
        mode: str,
        script: str,
        output: str,
        variables: dict[str, str] | None = None,
        image: str | None = None,
    ) -> dict[str, Any]:
        """The function definition (the same keys for both implementations)."""
        container: dict[str, Any] = {
            "timeout_threshold": RESERVE,
            "environment": {"Variables": variables or {}},
        }
        if image:
            container["image"] = image
        return {
            "name": FUNCTION,
            "execution_mode": mode,
            "log_level": "INFO",
            "init_script": str(self.work / "scripts" / f"{script}.sh"),
            "container": container,
            "input": [{"storage_provider": "s3", "path": f"{IN_BUCKET}/incoming"}],
            "output": [{"storage_provider": "s3", "path": f"{OUT_BUCKET}/{output}"}],
            "batch": {"multi_node_parallel": {"enabled": False}},
        }

    def env(
        self,
        impl: Impl,
        definition: dict[str, Any],
        *,
        runtime: str = "zip",
        endpoint: str | None = None,
    ) -> dict[str, str]:
        """A driver's environment: a clean one, with what the Lambda runtime would set.

        Ours always runs as the zip runtime (its handler, a plain process as no image is
        set).  Theirs runs a plain script only in the Lambda *image* runtime
        (``AWS_Lambda_Image``); in the zip runtime it always runs udocker, and only there
        does it hand a timed-out run to Batch, or delegate at all in ``batch`` mode.
        """
        tmp = self.work / f"tmp-{impl.name}"
        tmp.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "TMPDIR": str(tmp),
            **self.aws_env(endpoint or self.endpoint),
            "FDL": b64(json.dumps(definition)),
        }
        if impl.path:
            env["PYTHONPATH"] = impl.path
        if impl.name == "ours":
            env["AWS_EXECUTION_ENV"] = LAMBDA_RUNTIME
            env["SUPERVISOR_WORK_DIR"] = str(self.work / "ours-work")
        elif runtime == "image":
            env["AWS_EXECUTION_ENV"] = "AWS_Lambda_Image"
        else:
            env["AWS_EXECUTION_ENV"] = LAMBDA_RUNTIME
            env["UDOCKER_EXEC"] = str(DRIVERS / "fake_udocker.sh")
            env["UDOCKER_DIR"] = str(self.work / "udocker")
            env["FAKE_UDOCKER_IMAGE"] = FAKE_IMAGE
        return env

    def drive(
        self,
        impl: Impl,
        params: dict[str, Any],
        env: dict[str, str],
        label: str,
        timeout: float = 600,
    ) -> tuple[dict[str, Any], float]:
        """Run a driver; return its JSON result and the monotonic instant it was spawned."""
        log_path = self.logs / f"{label}-{impl.name}.log"
        with open(log_path, "ab") as log:
            spawned = time.monotonic()
            process = subprocess.Popen(
                impl.command(str(impl.driver)),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=self.work,
            )
            try:
                out, _ = process.communicate(json.dumps(params).encode(), timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise BenchError(f"{impl.name} {label}: no result in {timeout} s") from None
        try:
            result: dict[str, Any] = json.loads(out)
        except ValueError:
            raise BenchError(
                f"{impl.name} {label}: the driver exited {process.returncode} without a "
                f"result (log: {log_path})"
            ) from None
        if result.get("error"):
            raise BenchError(f"{impl.name} {label}: {result['error']} (log: {log_path})")
        return result, spawned

    def invoke_params(
        self, event: dict[str, Any], reps: int, *, warmup: bool = True
    ) -> dict[str, Any]:
        return {
            "case": "invoke",
            "function_name": FUNCTION,
            "timeout_s": LAMBDA_TIMEOUT,
            "event": event,
            "warmup_event": s3_event(IN_BUCKET, "incoming/warmup.bin", 8) if warmup else None,
            "reps": reps,
        }

    def verify_jobs(self, job_ids: Sequence[str | None], event: dict[str, Any]) -> int:
        """How many of ``job_ids`` the server knows, in our queue, carrying ``event``."""
        ids = [job for job in job_ids if job]
        verified = 0
        for start in range(0, len(ids), 100):
            for job in self.batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]:
                environment = {
                    item["name"]: item["value"]
                    for item in job.get("container", {}).get("environment", [])
                }
                try:
                    carried = json.loads(environment.get("EVENT", "null"))
                except ValueError:
                    carried = None
                records = (carried or {}).get("Records", [{}])
                same = records and records[0].get("s3") == event["Records"][0]["s3"]
                if job["jobQueue"].rsplit("/", 1)[-1] == FUNCTION and same:
                    verified += 1
        return verified

    def count_objects(self, prefix: str) -> int:
        paginator = self.s3.get_paginator("list_objects_v2")
        return sum(
            1
            for page in paginator.paginate(Bucket=OUT_BUCKET, Prefix=prefix)
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/warm.txt")
        )

    def delete_prefix(self, prefix: str) -> None:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=OUT_BUCKET, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=OUT_BUCKET, Delete={"Objects": keys})

    def each(self, case: str, run: Callable[[Impl], dict[str, Any]]) -> dict[str, Any]:
        """``run`` per implementation; a failure is recorded as that side's result."""
        out: dict[str, Any] = {}
        for impl in self.impls:
            try:
                out[impl.name] = run(impl)
            except BenchError as exc:
                print(f"  {case}: {exc}", file=sys.stderr)
                out[impl.name] = {"error": str(exc)}
        return out

    def row(
        self, case: str, metric: str, unit: str, ours: Any, theirs: Any = None, **more: Any
    ) -> None:
        if "ratio" not in more:
            more["ratio"] = ratio(ours, theirs)
        self.results.rows.append(Row(case, metric, unit, ours, theirs, **more))

    # -- the cases -----------------------------------------------------------------------

    def case_1(self) -> None:
        """Cold start: a fresh interpreter importing the handler module (also without it, to
        net out the interpreter's own start), and spawn -> first handler call returned for
        a ``batch``-mode invocation (interpreter, imports, definition, client, SubmitJob).
        The implementations alternate run by run; the first round is not counted."""
        case = "1 cold start"
        event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
        samples: dict[str, dict[str, list[float]]] = {
            impl.name: {"python_s": [], "import_s": [], "first_call_s": []} for impl in self.impls
        }
        jobs: dict[str, list[str | None]] = {impl.name: [] for impl in self.impls}
        errors: dict[str, str] = {}
        floor_impl = replace(self.impls[0], name="floor", driver=DRIVERS / "floor.py")
        floor: list[float] = []
        for round_ in range(self.plan.cold_reps + 1):
            floor_result, floor_spawned = self.drive(
                floor_impl,
                self.invoke_params(event, 1, warmup=False),
                self.env(self.impls[0], {}),
                "cold",
            )
            jobs.setdefault("floor", []).extend(floor_result["job_ids"])
            if round_:
                floor.append(floor_result["returned_at"][0] - floor_spawned)
            for impl in self.impls:
                if impl.name in errors:
                    continue
                env = self.env(impl, self.definition("batch", "copy", "cold"))
                try:
                    bare = self._time(impl.command("-c", "pass"), env)
                    imported = self._time(impl.command("-c", f"import {impl.module}"), env)
                    result, spawned = self.drive(
                        impl, self.invoke_params(event, 1, warmup=False), env, "cold"
                    )
                except BenchError as exc:
                    print(f"  {case}: {exc}", file=sys.stderr)
                    errors[impl.name] = str(exc)
                    continue
                if round_ == 0:
                    continue
                samples[impl.name]["python_s"].append(bare)
                samples[impl.name]["import_s"].append(imported)
                samples[impl.name]["first_call_s"].append(result["returned_at"][0] - spawned)
                jobs[impl.name].extend(result["job_ids"])
        data: dict[str, Any] = {}
        for impl in self.impls:
            if impl.name in errors:
                data[impl.name] = {"error": errors[impl.name]}
                continue
            values = samples[impl.name]
            net = [i - p for i, p in zip(values["import_s"], values["python_s"], strict=True)]
            data[impl.name] = {
                "module": impl.module,
                "samples": values,
                "python_median_s": median(values["python_s"]),
                "import_median_s": median(values["import_s"]),
                "import_net_median_s": median(net),
                "first_call_median_s": median(values["first_call_s"]),
                "jobs_verified": self.verify_jobs(jobs[impl.name], event),
                "jobs": len(jobs[impl.name]),
            }
        data["floor"] = {
            "what": "botocore import, one Batch client, one SubmitJob: no supervisor",
            "samples": floor,
            "first_call_median_s": median(floor),
            "jobs_verified": self.verify_jobs(jobs["floor"], event),
            "jobs": len(jobs["floor"]),
        }
        self.results.cases["1_cold_start"] = data
        ours, theirs = data.get("ours", {}), data.get("theirs", {})
        ms = 1000.0
        for key, metric, goal in (
            ("python_median_s", "bare interpreter start (python -c pass)", ""),
            ("import_median_s", "python -c 'import <handler module>'", ""),
            ("import_net_median_s", "  the import alone (less bare start)", "<= 0.5x theirs"),
            ("first_call_median_s", "spawn -> first batch call returned", "<= 0.5x theirs"),
        ):
            o, t = _scaled(ours.get(key), ms), _scaled(theirs.get(key), ms)
            r = ratio(o, t)
            self.row(case, metric, "ms", o, t, goal=goal, met=_le(r, 0.5) if goal else None)
        o, t = (
            _scaled(data["floor"]["first_call_median_s"], ms),
            _scaled(theirs.get("first_call_median_s"), ms),
        )
        self.row(
            case,
            "  floor: botocore + client + SubmitJob only",
            "ms",
            o,
            t,
            note="the least any botocore-based supervisor needs; the ratio is its best",
        )
        self._jobs_row(case, ours, theirs)

    def _time(self, command: list[str], env: dict[str, str]) -> float:
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=self.work, capture_output=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command)}: {done.stderr.decode()[-500:]}")
        return elapsed

    def _jobs_row(self, case: str, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
        def cell(data: dict[str, Any]) -> str | None:
            if "jobs" not in data:
                return None
            return f"{data['jobs_verified']}/{data['jobs']}"

        o, t = cell(ours), cell(theirs)
        met = None if o is None else ours["jobs_verified"] == ours["jobs"] > 0
        self.row(case, "jobs found on the server with the event", "", o, t, goal="all", met=met)

    def case_2(self) -> None:
        """Warm ``batch``-mode delegation: one process, a warm-up call, then N timed calls
        (each a SubmitJob); every job is looked up on the server afterwards."""
        case = "2 warm batch delegation"
        event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
        calls = self.plan.batch_calls

        def run(impl: Impl) -> dict[str, Any]:
            env = self.env(impl, self.definition("batch", "copy", "batch"))
            params = self.invoke_params(event, calls)
            params["warmup_event"] = event
            result, _ = self.drive(impl, params, env, "batch")
            return {
                "seconds": result["seconds"],
                "median_s": median(result["seconds"]),
                "p90_s": p90(result["seconds"]),
                "jobs": len(result["job_ids"]),
                "jobs_verified": self.verify_jobs(result["job_ids"], event),
            }

        data = self.each(case, run)
        self.results.cases["2_batch_delegation"] = data
        self._latency_rows(case, data, f"handler latency, {calls} calls")
        self._jobs_row(case, data.get("ours", {}), data.get("theirs", {}))

    def _latency_rows(self, case: str, data: dict[str, Any], what: str) -> None:
        ours, theirs = data.get("ours", {}), data.get("theirs", {})
        o, t = _scaled(ours.get("median_s"), 1000.0), _scaled(theirs.get("median_s"), 1000.0)
        self.row(
            case, f"{what}: median", "ms", o, t, goal="<= 0.5x theirs", met=_le(ratio(o, t), 0.5)
        )
        o, t = _scaled(ours.get("p90_s"), 1000.0), _scaled(theirs.get("p90_s"), 1000.0)
        self.row(case, f"{what}: p90", "ms", o, t)

    def case_3(self) -> None:
        """A warm small ``lambda`` invocation: 10 KiB in, the script copies it to the output
        folder, one upload; a warm-up call, then N timed calls in one process."""
        case = "3 warm small invocation"
        event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
        calls = self.plan.small_calls

        def run(impl: Impl) -> dict[str, Any]:
            output = f"small-{impl.name}"
            env = self.env(impl, self.definition("lambda", "copy", output), runtime="image")
            result, _ = self.drive(impl, self.invoke_params(event, calls), env, "small")
            head = self.s3.head_object(Bucket=OUT_BUCKET, Key=f"{output}/small.bin")
            if head["ContentLength"] != 10 * KIB:
                raise BenchError(f"{impl.name}: {output}/small.bin has {head['ContentLength']} B")
            return {
                "seconds": result["seconds"],
                "median_s": median(result["seconds"]),
                "p90_s": p90(result["seconds"]),
            }

        data = self.each(case, run)
        self.results.cases["3_small_invocation"] = data
        self._latency_rows(case, data, f"handler latency, {calls} calls")

    def rounds(
        self, case: str, reps: dict[str, int], measure: dict[str, Callable[[], dict[str, Any]]]
    ) -> dict[str, Any]:
        """Run ``measure[side]()`` ``reps[side]`` times, round-robin, so that a drift of the
        machine or of the server touches every side alike.  A side that fails stops and
        gets ``{"error": ...}``; the others get ``{"samples": [...]}``."""
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in measure}
        errors: dict[str, str] = {}
        for round_ in range(max(reps.values())):
            for name, run in measure.items():
                if name in errors or round_ >= reps[name]:
                    continue
                try:
                    samples[name].append(run())
                except BenchError as exc:
                    print(f"  {case}: {exc}", file=sys.stderr)
                    errors[name] = str(exc)
        return {
            name: {"error": errors[name]} if name in errors else {"samples": samples[name]}
            for name in measure
        }

    def one_call(
        self, impl: Impl, definition: dict[str, Any], event: dict[str, Any], label: str, **env: Any
    ) -> dict[str, Any]:
        """A fresh driver: a warm-up call, then one timed call."""
        result, _ = self.drive(
            impl, self.invoke_params(event, 1), self.env(impl, definition, **env), label
        )
        return {
            "seconds": result["seconds"][0],
            "peak_rss_mib": result["vm_hwm_kib"] / KIB,
            "rss_before_mib": result["vm_hwm_before_kib"] / KIB,
        }

    def case_4(self) -> None:
        """Many output files: the script hard-links a prepared tree of 10 KiB files (N in the
        output folder, M in a subfolder) to the output folder; handler time and files per
        second, beside raw parallel ``put_object`` calls of the same files from the
        benchmark itself (one client, 10 threads).  Twice: against the moto server, and
        behind a proxy adding 20 ms to every request.  Each run of an implementation is a
        fresh driver (a warm-up call, then the timed one), and the sides take turns."""
        source = self.work / "many-source"
        top, sub = self.plan.many_top, self.plan.many_sub
        (source / "sub").mkdir(parents=True, exist_ok=True)
        files = [source / f"file-{i:04d}.bin" for i in range(top)]
        files += [source / "sub" / f"file-{i:04d}.bin" for i in range(sub)]
        for path in files:
            path.write_bytes(os.urandom(10 * KIB))
        total = len(files)
        event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
        data: dict[str, Any] = {"files": total}
        for label, delay in (("plain", 0.0), ("proxy", PROXY_DELAY)):
            case = f"4 {total:,} files" + (f", +{delay * 1000:.0f} ms/request" if delay else "")
            with self._endpoint(delay) as endpoint:
                measure: dict[str, Callable[[], dict[str, Any]]] = {
                    "raw": partial(self._raw_puts, files, source, f"many-{label}-raw", endpoint)
                }
                for impl in self.impls:
                    measure[impl.name] = partial(
                        self._many_run, impl, label, endpoint, source, event, total
                    )
                reps = {name: self.plan.many_reps for name in measure}
                if delay:
                    reps["theirs"] = self.plan.many_reps_slow
                sides = self.rounds(case, reps, measure)
            for side in sides.values():
                if "samples" in side:
                    side["seconds"] = [sample["seconds"] for sample in side["samples"]]
                    side["median_s"] = median(side["seconds"])
                    side["files_per_s"] = total / side["median_s"]
            data[label] = sides
            ours, theirs, raw = sides.get("ours", {}), sides.get("theirs", {}), sides["raw"]
            of, tf, rf = ours.get("files_per_s"), theirs.get("files_per_s"), raw.get("files_per_s")
            if delay:
                goal, met = ">= 5x theirs", _ge(ratio(of, tf), 5.0)
            else:
                goal, met = ">= 0.9x raw", _ge(ratio(of, rf), 0.9)
            self.row(
                case,
                "handler time",
                "s",
                ours.get("median_s"),
                theirs.get("median_s"),
                reference=raw.get("median_s"),
            )
            self.row(case, "files per second", "files/s", of, tf, reference=rf, goal=goal, met=met)
            self.row(
                case,
                "  ours / raw parallel puts",
                "x",
                ratio(of, rf),
                ratio(tf, rf),
                ratio=None,
            )
        self.results.cases["4_many_files"] = data

    def _many_run(
        self,
        impl: Impl,
        label: str,
        endpoint: str,
        source: Path,
        event: dict[str, Any],
        total: int,
    ) -> dict[str, Any]:
        output = f"many-{label}-{impl.name}"
        self.delete_prefix(f"{output}/")
        variables = {"SOURCE_DIR": str(source)}
        definition = self.definition("lambda", "many", output, variables=variables)
        sample = self.one_call(
            impl, definition, event, f"many-{label}", runtime="image", endpoint=endpoint
        )
        stored = self.count_objects(f"{output}/")
        if stored != total:
            raise BenchError(f"{impl.name}: {stored} of {total} files on the server")
        return sample

    @contextmanager
    def _endpoint(self, delay: float) -> Iterator[str]:
        if not delay:
            yield self.endpoint
            return
        with self.proxy(delay) as url:
            yield url

    def _raw_puts(
        self, files: list[Path], source: Path, prefix: str, endpoint: str
    ) -> dict[str, Any]:
        client = self.client("s3", endpoint)

        def put(path: Path) -> None:
            key = f"{prefix}/{path.relative_to(source).as_posix()}"
            client.put_object(Bucket=OUT_BUCKET, Key=key, Body=path.read_bytes())

        client.head_bucket(Bucket=OUT_BUCKET)  # connect before the clock starts
        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(put, files))
        return {"seconds": time.perf_counter() - start}

    def case_5(self) -> None:
        """A big input and output: N MiB in, the script hard-links it into the output
        folder (no copy), N MiB out.  Handler time, throughput over the 2N MiB moved, and
        the driver process's peak RSS (VmHWM, the largest of its runs); beside it, raw
        boto3 download_file plus upload_file of the same bytes from the benchmark (the
        ceiling).  Each run of an implementation is a fresh driver (a warm-up call, then
        the timed one), and the sides take turns."""
        size = self.plan.big_mib * MIB
        case = f"5 {self.plan.big_mib} MiB in + out"
        big = self.work / "big.bin"
        with open(big, "wb") as handle:
            for _ in range(self.plan.big_mib):
                handle.write(os.urandom(MIB))
        self.s3.upload_file(str(big), IN_BUCKET, "incoming/big.bin")
        big.unlink()
        event = s3_event(IN_BUCKET, "incoming/big.bin", size)

        def run(impl: Impl) -> dict[str, Any]:
            output = f"big-{impl.name}"
            definition = self.definition("lambda", "big", output)
            sample = self.one_call(impl, definition, event, "big", runtime="image")
            head = self.s3.head_object(Bucket=OUT_BUCKET, Key=f"{output}/big.out")
            if head["ContentLength"] != size:
                raise BenchError(f"{impl.name}: {output}/big.out has {head['ContentLength']} B")
            self.delete_prefix(f"{output}/")
            return sample

        measure: dict[str, Callable[[], dict[str, Any]]] = {"raw": self._raw_big}
        for impl in self.impls:
            measure[impl.name] = partial(run, impl)
        data = self.rounds(case, {name: self.plan.big_reps for name in measure}, measure)
        for side in data.values():
            if "samples" in side:
                side["seconds"] = [sample["seconds"] for sample in side["samples"]]
                side["median_s"] = median(side["seconds"])
                side["mib_per_s"] = 2 * size / MIB / side["median_s"]
                if "peak_rss_mib" in side["samples"][0]:
                    side["peak_rss_mib"] = max(s["peak_rss_mib"] for s in side["samples"])
                    side["rss_before_mib"] = max(s["rss_before_mib"] for s in side["samples"])
        self.results.cases["5_big_transfer"] = data
        ours, theirs, raw = data.get("ours", {}), data.get("theirs", {}), data["raw"]
        o, t, r = ours.get("median_s"), theirs.get("median_s"), raw.get("median_s")
        self.row(
            case,
            "handler time",
            "s",
            o,
            t,
            reference=r,
            goal="<= 1.1x raw",
            met=_le(ratio(o, r), 1.1),
        )
        self.row(case, "  ours / raw download + upload", "x", ratio(o, r), ratio(t, r), ratio=None)
        self.row(
            case,
            "throughput (in + out)",
            "MiB/s",
            ours.get("mib_per_s"),
            theirs.get("mib_per_s"),
            reference=raw.get("mib_per_s"),
        )
        self.row(
            case,
            "peak RSS of the process (VmHWM)",
            "MiB",
            ours.get("peak_rss_mib"),
            theirs.get("peak_rss_mib"),
            goal="<= 100 MiB",
            met=_le(ours.get("peak_rss_mib"), 100.0),
        )
        self.row(
            case,
            "  of which before the timed call",
            "MiB",
            ours.get("rss_before_mib"),
            theirs.get("rss_before_mib"),
        )
        self.s3.delete_object(Bucket=IN_BUCKET, Key="incoming/big.bin")

    def _raw_big(self) -> dict[str, Any]:
        client = self.client("s3")
        client.head_bucket(Bucket=OUT_BUCKET)
        dest = self.work / "raw-big.bin"
        start = time.perf_counter()
        client.download_file(IN_BUCKET, "incoming/big.bin", str(dest))
        middle = time.perf_counter()
        client.upload_file(str(dest), OUT_BUCKET, "big-raw/big.out")
        end = time.perf_counter()
        dest.unlink()
        self.delete_prefix("big-raw/")
        return {"seconds": end - start, "download_s": middle - start, "upload_s": end - middle}

    def case_6(self) -> None:
        """The watchdog: Lambda timeout 6 s, reserve 2 s, ``lambda-batch``; the script
        writes its pid, starts a background grandchild and sleeps.  The driver sees when the
        script process died (relative to deadline - reserve), when SubmitJob returned
        (relative to the deadline) and which processes of the run were left."""
        case = f"6 watchdog ({WATCHDOG_DEADLINE:.0f} s, reserve {RESERVE:.0f} s)"
        event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)

        def run(impl: Impl) -> dict[str, Any]:
            marker = f"BENCH_RUN_{uuid.uuid4().hex}"
            pidfile = str(self.work / f"pids-{impl.name}")
            variables = {"PIDFILE": pidfile, "BENCH_MARKER": marker}
            image = FAKE_IMAGE if impl.name == "theirs" else None
            definition = self.definition("lambda-batch", "sleeper", "watchdog", variables, image)
            params = {
                "case": "watchdog",
                "function_name": FUNCTION,
                "timeout_s": WATCHDOG_DEADLINE,
                "reserve_s": RESERVE,
                "pidfile": pidfile,
                "marker": marker,
                "event": event,
                "warmup_event": s3_event(IN_BUCKET, "incoming/warmup.bin", 8),
                "reps": self.plan.watchdog_reps,
            }
            result, _ = self.drive(impl, params, self.env(impl, definition), "watchdog")
            runs = result["runs"]
            kills = [r["kill_after_target_s"] for r in runs if r["kill_after_target_s"] is not None]
            submits = [
                r["submitted_before_deadline_s"]
                for r in runs
                if r["submitted_before_deadline_s"] is not None
            ]
            return {
                "runs": runs,
                "kill_after_target_median_s": median(kills) if kills else None,
                "submitted_before_deadline_median_s": median(submits) if submits else None,
                "returned_before_deadline_median_s": median(
                    [r["returned_before_deadline_s"] for r in runs]
                ),
                "survivors_max": max(r["survivors"] for r in runs),
                "jobs": len(runs),
                "jobs_verified": self.verify_jobs([r["job_id"] for r in runs], event),
            }

        data = self.each(case, run)
        self.results.cases["6_watchdog"] = data
        ours, theirs = data.get("ours", {}), data.get("theirs", {})
        o = _scaled(ours.get("kill_after_target_median_s"), 1000.0)
        t = _scaled(theirs.get("kill_after_target_median_s"), 1000.0)
        self.row(
            case,
            "script killed, after deadline - reserve",
            "ms",
            o,
            t,
            ratio=None,
            goal="within 100 ms",
            met=None if o is None else abs(o) <= 100,
        )
        o, t = (
            ours.get("submitted_before_deadline_median_s"),
            theirs.get("submitted_before_deadline_median_s"),
        )
        self.row(
            case,
            "SubmitJob returned, before the deadline",
            "s",
            o,
            t,
            ratio=None,
            goal=">= 1 s",
            met=_ge(o, 1.0),
        )
        o, t = (
            ours.get("returned_before_deadline_median_s"),
            theirs.get("returned_before_deadline_median_s"),
        )
        self.row(case, "handler returned, before the deadline", "s", o, t, ratio=None)
        o, t = ours.get("survivors_max"), theirs.get("survivors_max")
        self.row(
            case,
            "processes of the run left alive (max)",
            "",
            o,
            t,
            ratio=None,
            goal="0",
            met=None if o is None else o == 0,
        )
        self._jobs_row(case, ours, theirs)

    def case_7(self) -> None:
        """A chatty script: ours' Lambda handler runs a script that writes N MiB of 100-byte
        lines (a prepared file) to stdout, which is logged; beside it, the same script writing
        them to /dev/null.  Each run is a fresh driver (a warm-up call, then the timed one),
        the two alternating; the difference of the median handler times is what the output
        costs.  Every line must be in the driver's log (its JSON lines, on stderr)."""
        size = self.plan.chatty_mib * MIB
        case = f"7 chatty script, {self.plan.chatty_mib} MiB of stdout"
        lines = size // len(CHATTY_LINE % (0, 0)) // 10_000 * 10_000
        text = self.work / "chatty.txt"
        with open(text, "w") as handle:
            for start in range(0, lines, 10_000):
                handle.write("".join(CHATTY_LINE % (i, i) for i in range(start, start + 10_000)))
        ours = self.impls[0]
        event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
        definition = partial(self.definition, "lambda", output="chatty")
        runs = iter(range(1_000_000))

        def run(script: str) -> dict[str, Any]:
            label = f"chatty-{script}-{next(runs)}"
            variables = {"CHATTY_FILE": str(text)}
            sample = self.one_call(
                ours, definition(script=script, variables=variables), event, label
            )
            log = self.logs / f"{label}-{ours.name}.log"
            found = log.read_bytes().count(b"frame=")
            log.unlink()
            if script == "chatty" and found != lines:
                raise BenchError(f"{label}: {found} of the {lines} lines in the log")
            return sample

        sides = {name: partial(run, name) for name in ("chatty", "silent")}
        data = self.rounds(case, {name: self.plan.chatty_reps for name in sides}, sides)
        text.unlink()
        for side in data.values():
            if "samples" in side:
                side["seconds"] = [sample["seconds"] for sample in side["samples"]]
                side["median_s"] = median(side["seconds"])
        self.results.cases["7_chatty_script"] = data
        chatty, silent = data["chatty"].get("median_s"), data["silent"].get("median_s")
        added = None if chatty is None or silent is None else chatty - silent
        per_100 = None if added is None else added * 100 / self.plan.chatty_mib
        self.row(case, "handler time, script writing to stdout", "s", chatty)
        self.row(case, "handler time, the same script silent", "s", silent)
        self.row(
            case,
            "added by the output, per 100 MiB",
            "s",
            per_100,
            goal="<= 1.5 s",
            met=_le(per_100, 1.5),
        )


def _scaled(value: Any, factor: float) -> float | None:
    return None if not isinstance(value, int | float) else float(value) * factor


def _le(value: Any, limit: float) -> bool | None:
    return None if not isinstance(value, int | float) else value <= limit


def _ge(value: Any, limit: float) -> bool | None:
    return None if not isinstance(value, int | float) else value >= limit


def _import_path(python: str, with_project: bool) -> str:
    """The site-packages of ``python`` (and the project root for ours), for ``-S`` runs.

    A Lambda finds a layer's packages on ``PYTHONPATH`` (``/opt/python``); a development
    install adds ``.pth`` files instead (an editable install's finder costs ours about 10 ms
    of interpreter start), so both implementations start without site processing.
    """
    code = "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['platlib'])"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    paths = [str(ROOT)] if with_project else []
    paths += [line for line in done.stdout.splitlines() if line and line not in paths]
    return os.pathsep.join(dict.fromkeys(paths))


def machine_info(impls: list[Impl]) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    with suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    pythons = {}
    for impl in impls:
        done = subprocess.run(
            [
                impl.python,
                "-c",
                "import sys, boto3; print(sys.version.split()[0], boto3.__version__)",
            ],
            capture_output=True,
            text=True,
        )
        version, _, sdk = done.stdout.strip().partition(" ")
        pythons[impl.name] = {
            "python": version,
            "boto3": sdk,
            "interpreter": impl.python,
            "started_with": "-S, PYTHONPATH" if impl.path else "site",
        }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "system": platform.platform(),
        "moto": metadata.version("moto"),
        "implementations": pythons,
        "theirs_version": THEIRS_VERSION if any(i.name == "theirs" for i in impls) else None,
    }


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("", "files/s", "MiB/s", "MiB") or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif unit == "s":
        text = f"{value:.2f}"
    else:
        text = f"{value:.1f}"
    return f"{text} {unit}" if unit not in ("", "x") else text


def table(rows: list[Row]) -> str:
    header = ("case", "metric", "ours", "theirs", "ours/theirs", "raw boto3", "goal", "met")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.case,
                row.metric,
                _cell(row.ours, row.unit),
                _cell(row.theirs, row.unit),
                "" if row.ratio is None else f"{row.ratio:.2f}x",
                "" if row.reference is None else _cell(row.reference, row.unit),
                row.goal,
                "" if row.met is None else ("yes" if row.met else "NO"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    previous = ""
    for index, line in enumerate(lines):
        cells = list(line)
        if index and cells[0] == previous:
            cells[0] = ""
        else:
            previous = cells[0]
        out.append(
            "  ".join(
                cell.ljust(width) if i < 2 or i > 5 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller data (< 2 min)")
    parser.add_argument("--cases", default="1,2,3,4,5,6,7", help="which cases, e.g. 1,2,6")
    parser.add_argument("--ours-only", action="store_true", help="do not run faas-supervisor")
    parser.add_argument(
        "--theirs-python",
        metavar="PATH",
        help="an interpreter with faas-supervisor 1.5.8 (default: bench/.venv-theirs, created)",
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH / "results.json", help="where the JSON goes"
    )
    parser.add_argument(
        "--site",
        action="store_true",
        help="start the implementations' interpreters with site processing (default: -S and "
        "PYTHONPATH, as a layer is found, without the .pth files of a development install)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    args = parser.parse_args(argv)
    try:
        args.case_list = sorted({int(item) for item in args.cases.split(",") if item.strip()})
    except ValueError:
        parser.error(f"--cases: expected numbers 1 to 7, got {args.cases!r}")
    if not set(args.case_list) <= {1, 2, 3, 4, 5, 6, 7}:
        parser.error(f"--cases: expected numbers 1 to 7, got {args.cases!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    _ensure_interpreter()
    args = parse_args(argv)
    impls = [Impl("ours", sys.executable, DRIVERS / "ours.py", "handlers.lambda_handler")]
    if not args.ours_only:
        theirs = ensure_theirs(args.theirs_python)
        module = "faassupervisor.faas.aws_lambda.function_handler"
        impls.append(Impl("theirs", theirs, DRIVERS / "theirs.py", module))
    if not args.site:
        impls = [
            Impl(i.name, i.python, i.driver, i.module, _import_path(i.python, i.name == "ours"))
            for i in impls
        ]
    work = Path(tempfile.mkdtemp(prefix="supervisor-bench-"))
    bench = Bench(QUICK if args.quick else FULL, impls, work, args.quick)
    started = time.monotonic()
    failed = False
    try:
        bench.start()
        for number in args.case_list:
            print(f"case {number}...", flush=True)
            case_started = time.monotonic()
            try:
                getattr(bench, f"case_{number}")()
            except BenchError as exc:
                failed = True
                print(f"case {number} failed: {exc}", file=sys.stderr)
            print(f"case {number}: {time.monotonic() - case_started:.0f} s", flush=True)
    finally:
        bench.stop()
    bench.results.settings["wall_s"] = round(time.monotonic() - started, 1)
    errors = [
        f"{case}/{side}: {result['error']}"
        for case, sides in bench.results.cases.items()
        for side, result in sides.items()
        if isinstance(result, dict) and "error" in result
    ]
    payload = asdict(bench.results)
    payload["notes"] = list(NOTES) if not args.ours_only else []
    payload["errors"] = errors
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print()
    print(table(bench.results.rows))
    print()
    for note in payload["notes"]:
        print(textwrap.fill(note, width=100, initial_indent="- ", subsequent_indent="  "))
    if payload["notes"]:
        print()
    machine = bench.results.machine
    print(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['system']}; moto "
        f"{machine['moto']}; {bench.results.settings['wall_s']} s; results in {args.output}"
    )
    if errors or failed:
        print(f"errors ({len(errors)}); logs kept in {work / 'logs'}", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
