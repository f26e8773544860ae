"""Load: 50 concurrent invocations against one moto server, every output present and exact.

Two ways the runtime meets concurrency.  In one process, one built ``Supervisor`` (the
object a Lambda execution environment keeps) serves 50 threads at once: they share its
storage clients, its executor and its work root.  Across processes, 50 Batch jobs
(``python -m supervisor``, as AWS Batch runs them) start together and share the host's
work root.  Each invocation stages in its own 64 KiB object of random bytes and its
script copies it to the output after a pause long enough for the runs to overlap; the
test checks that the runs did overlap, that each answered for its own object, that all
50 outputs landed with the bytes of their inputs, and that nothing is left in the work
root (nor, in-process, any thread or descriptor more than before).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import parse_config
from supervisor.context import InvocationContext
from supervisor.runtime import Outcome
from supervisor.wiring import build_supervisor

COUNT = 50
SIZE = 64 * 1024
# Counts the runs going on when it starts, waits for the others, copies its input.
SCRIPT = """\
set -eu
touch "$RUNNING/$$"
running=$(ls "$RUNNING" | wc -l)
sleep 0.5
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
echo "$STORAGE_OBJECT_KEY $(wc -c < "$INPUT_FILE_PATH" | tr -d ' ') $running"
rm "$RUNNING/$$"
"""


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    record = {"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
    return {"Records": [record]}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def inputs(s3: Any, make_bucket: Any) -> tuple[str, str, dict[str, bytes]]:
    source, out = make_bucket("load-in"), make_bucket("load-out")
    data = {f"incoming/item-{number:02d}.bin": os.urandom(SIZE) for number in range(COUNT)}
    for key, body in data.items():
        s3.put_object(Bucket=source, Key=key, Body=body)
    return source, out, data


def definition(tmp_path: Path, source: str, out: str) -> dict[str, Any]:
    script = tmp_path / "copy.sh"
    script.write_text(SCRIPT)
    running = tmp_path / "running"
    running.mkdir()
    return {
        "name": "load",
        "init_script": str(script),
        "container": {"environment": {"Variables": {"RUNNING": str(running)}}},
        "input": [{"path": f"{source}/incoming"}],
        "output": [{"path": f"{out}/copies"}],
    }


def landed(s3: Any, bucket: str) -> dict[str, str]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = sha256(body)
    return found


def expected_outputs(data: dict[str, bytes]) -> dict[str, str]:
    return {f"copies/{key.rpartition('/')[2]}": sha256(body) for key, body in data.items()}


@pytest.mark.slow
def test_fifty_threads_share_one_supervisor(
    inputs: tuple[str, str, dict[str, bytes]], s3: Any, tmp_path: Path
) -> None:
    source, out, data = inputs
    config = parse_config(json.dumps(definition(tmp_path, source, out)))
    work = tmp_path / "work"
    supervisor = build_supervisor(
        config, platform="local", environ=dict(os.environ), work_root=work
    )
    supervisor.prepare()
    threads_before, fds_before = threading.active_count(), len(os.listdir("/proc/self/fd"))
    start = threading.Barrier(COUNT)

    def invoke(key: str) -> Outcome:
        start.wait()
        return supervisor.invoke(
            s3_event(source, key), InvocationContext.local("load", timeout=120)
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=COUNT) as pool:
        outcomes = dict(zip(data, pool.map(invoke, data), strict=True))
    elapsed = time.monotonic() - started

    overlap = []
    for key, outcome in outcomes.items():
        assert outcome.status == "succeeded", outcome.summary()
        name, size, running = outcome.output.decode().split()
        assert (name, size) == (key, str(SIZE)), "each run answered for its own object"
        assert outcome.uploaded == (f"s3://{out}/copies/{key.rpartition('/')[2]}",)
        overlap.append(int(running))
    print(f"{COUNT} threads in {elapsed:.1f} s, up to {max(overlap)} scripts at once")
    assert max(overlap) >= 10, "the runs overlapped"
    assert landed(s3, out) == expected_outputs(data)
    assert list(work.iterdir()) == []
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 10, "no descriptor per invocation"


@pytest.mark.slow
def test_fifty_batch_jobs_at_once_share_a_work_root(
    inputs: tuple[str, str, dict[str, bytes]],
    s3: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
) -> None:
    source, out, data = inputs
    config = base64.b64encode(json.dumps(definition(tmp_path, source, out)).encode()).decode()
    work = tmp_path / "work"
    work.mkdir()
    jobs = {}
    started = time.monotonic()
    for number, key in enumerate(data):
        environment = {
            **aws_env,
            "PATH": os.environ["PATH"],
            "FUNCTION_CONFIG": config,
            "EVENT": json.dumps(s3_event(source, key)),
            "AWS_BATCH_JOB_ID": f"load-{number:02d}",
            "SUPERVISOR_WORK_DIR": str(work),
            # pytest's folders are root's alone: the script runs as the test's user.
            "SUPERVISOR_SCRIPT_USER": "root",
        }
        jobs[key] = subprocess.Popen(
            [sys.executable, "-m", "supervisor"],
            env=environment,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    try:
        logs = {key: job.communicate(timeout=120)[0].decode() for key, job in jobs.items()}
    finally:
        # A job still running when the test fails (or times out) is ended, its pipe closed.
        for job in jobs.values():
            if job.poll() is None:
                job.kill()
                job.communicate()
    elapsed = time.monotonic() - started

    codes = {key: job.returncode for key, job in jobs.items() if job.returncode != 0}
    assert codes == {}, {key: logs[key][-2000:] for key in codes}
    overlap = []
    for key, log in logs.items():
        said = [line for line in log.splitlines() if f"supervisor.script: {key} {SIZE} " in line]
        assert len(said) == 1, log
        overlap.append(int(said[0].split()[-1]))
    print(f"{COUNT} jobs in {elapsed:.1f} s, up to {max(overlap)} scripts at once")
    assert max(overlap) >= 2, "the jobs overlapped"
    assert landed(s3, out) == expected_outputs(data)
    assert list(work.iterdir()) == []
