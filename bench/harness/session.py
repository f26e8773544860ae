"""One run of the benchmark: the moto server, the clients, and what is on the server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report import Results, machine_info
from harness.settings import (
    CONCURRENCY,
    FUNCTION,
    IN_BUCKET,
    KIB,
    LAMBDA_RUNTIME,
    OUT_BUCKET,
    PROXY_DELAY,
    REGION,
    RESERVE,
    SCRIPTS,
    WATCHDOG_DEADLINE,
    BenchError,
    Impl,
    Plan,
    failure,
)

if TYPE_CHECKING:
    from supervisor.lambda_sizes import LambdaSize


class Bench:
    """One run: the moto server, the data on it, the clients and what the cases measured."""

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
        # Under --lambda-memory: the size every driver runs at (a cgroup each), and what
        # each driver's cgroup measured, in order (drivers.drive appends).
        self.size: LambdaSize | None = None
        self.cgroups: list[dict[str, Any]] = []

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
                out[impl.name] = failure(exc)
        return out

    def rounds(
        self, case: str, reps: dict[str, int], measure: Mapping[str, Callable[[], dict[str, Any]]]
    ) -> dict[str, Any]:
        """Run ``measure[side]()`` ``reps[side]`` times, round-robin, so that a drift of the
        machine or of the server touches every side alike.  A side that fails stops and
        gets ``{"error": ...}``; the others get ``{"samples": [...]}``."""
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in measure}
        errors: dict[str, dict[str, Any]] = {}
        for round_ in range(max(reps.values())):
            for name, run in measure.items():
                if name in errors or round_ >= reps[name]:
                    continue
                try:
                    samples[name].append(run())
                except BenchError as exc:
                    print(f"  {case}: {exc}", file=sys.stderr)
                    errors[name] = failure(exc)
        return {
            name: errors[name] if name in errors else {"samples": samples[name]} for name in measure
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
