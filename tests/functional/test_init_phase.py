"""Lambda's init phase: where Lambda imports the handler module (``AWS_LAMBDA_RUNTIME_API``
is set), the supervisor is built during the import, and a ``batch``-mode function
rehearses its first submission there without sending it.  Elsewhere the import builds
nothing.  Each case starts a fresh interpreter, as an execution environment does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.functional.lambda_support import install_function

ROOT = Path(__file__).resolve().parents[2]

# The handler module imported (the init phase); what it built; then, when an event comes
# on stdin, one invocation and its response (or the error it raised).
_ENVIRONMENT = """
import gc, importlib, json, sys
importlib.import_module(sys.argv[2])
from handlers import lambda_handler
from tests.functional.lambda_support import FakeLambdaContext

report = {"built": lambda_handler.built() is not None}
if sys.argv[3] == "gc":
    report["gc"] = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}
event = sys.stdin.read()
if event:
    try:
        response = lambda_handler.handler(json.loads(event), FakeLambdaContext(sys.argv[1]))
        report["status"] = response["statusCode"]
    except Exception as exc:
        report["raised"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(report))
"""

_RUNTIME_API = "127.0.0.1:9001"


def _start(
    function_name: str,
    *,
    event: dict[str, Any] | None = None,
    runtime_api: bool = True,
    module: str = "handlers.lambda_handler",
    gc: bool = False,
) -> dict[str, Any]:
    environ = os.environ.copy()
    environ.pop("AWS_LAMBDA_RUNTIME_API", None)
    if runtime_api:
        environ["AWS_LAMBDA_RUNTIME_API"] = _RUNTIME_API
    done = subprocess.run(
        [sys.executable, "-c", _ENVIRONMENT, function_name, module, "gc" if gc else "-"],
        input="" if event is None else json.dumps(event),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=environ,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture
def batch_function(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_bucket: Callable[[str], str],
    batch_queue: Callable[[str], str],
) -> tuple[str, dict[str, Any]]:
    source = make_bucket("in")
    function = install_function(
        monkeypatch,
        tmp_path,
        "exit 0\n",
        {
            "execution_mode": "batch",
            "input": [{"storage_provider": "s3", "path": f"{source}/incoming"}],
            "output": [{"storage_provider": "s3", "path": f"{make_bucket('out')}/done"}],
        },
    )
    batch_queue(function.name)
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": source}, "object": {"key": "incoming/a.mp4"}},
            }
        ]
    }
    return function.name, event


def _jobs(batch: Any, queue: str) -> list[dict[str, Any]]:
    ids = [
        summary["jobId"]
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED")
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    ]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def test_the_init_phase_builds_the_supervisor_and_submits_nothing(
    batch_function: tuple[str, dict[str, Any]], batch: Any
) -> None:
    name, _ = batch_function

    assert _start(name) == {"built": True}
    assert _jobs(batch, name) == [], "the rehearsal of the submission reached Batch"


def test_the_first_invocation_after_the_init_phase_submits_one_job_with_the_event(
    batch_function: tuple[str, dict[str, Any]], batch: Any
) -> None:
    name, event = batch_function

    assert _start(name, event=event) == {"built": True, "status": 202}

    jobs = _jobs(batch, name)
    assert len(jobs) == 1
    carried = {item["name"]: item["value"] for item in jobs[0]["container"]["environment"]}
    assert json.loads(carried["EVENT"]) == event


def test_a_function_deployed_by_scar_is_built_in_the_init_phase_too(
    batch_function: tuple[str, dict[str, Any]], batch: Any
) -> None:
    name, event = batch_function

    report = _start(name, event=event, module="faassupervisor.supervisor")

    assert report == {"built": True, "status": 202}
    assert len(_jobs(batch, name)) == 1


def test_the_objects_of_the_init_phase_are_frozen_and_the_collector_runs_again(
    batch_function: tuple[str, dict[str, Any]],
) -> None:
    name, _ = batch_function

    report = _start(name, gc=True)

    assert report == {"built": True, "gc": {"enabled": True, "frozen": True}}


def test_outside_lambda_the_import_builds_nothing_and_leaves_the_collector_alone(
    batch_function: tuple[str, dict[str, Any]],
) -> None:
    name, _ = batch_function

    for module in ("handlers.lambda_handler", "faassupervisor.supervisor"):
        report = _start(name, runtime_api=False, module=module, gc=True)
        assert report == {"built": False, "gc": {"enabled": True, "frozen": False}}


def test_a_definition_with_a_fault_fails_the_first_invocation_not_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = install_function(monkeypatch, tmp_path, "exit 0\n", {"execution_mode": "sometimes"})

    report = _start(function.name, event={"Records": []}, gc=True)

    assert report["built"] is False
    assert report["gc"]["enabled"] is True
    assert report["raised"].startswith("ConfigError: ")
    assert "execution_mode" in report["raised"]
