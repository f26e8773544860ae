"""The workflow runner with real /bin/sh scripts, local buckets and local Batch jobs.

Each test writes a workflow file in the multi-function format, uploads files into it and
checks what a user would: the objects in the result folders, where each invocation ran,
the queueing of Lambda and Batch, and what a failure leaves behind.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from supervisor.workflow import RunResult, Upload, WorkflowRunner, load_workflow
from supervisor.workflow.timeline import Invocation

pytestmark = pytest.mark.slow


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _run(
    tmp_path: Path,
    workflow_yaml: str,
    scripts: dict[str, str],
    uploads: dict[str, bytes],
    *,
    to: str = "wf/start",
    lambda_concurrency: int = 4,
    batch_slots: int | None = None,
) -> tuple[RunResult, Path, str]:
    for name, text in scripts.items():
        _write(tmp_path, name, text)
    workflow_file = _write(tmp_path, "workflow.yaml", workflow_yaml)
    sources = tmp_path / "uploads"
    sources.mkdir()
    planned = []
    for name, data in uploads.items():
        (sources / name).write_bytes(data)
        bucket, _, folder = to.partition("/")
        planned.append(Upload(sources / name, bucket, f"{folder}/{name}"))
    out = io.StringIO()
    storage = tmp_path / "storage"
    runner = WorkflowRunner(
        load_workflow(workflow_file),
        storage_root=storage,
        work_dir=tmp_path / "work",
        lambda_concurrency=lambda_concurrency,
        batch_slots=batch_slots,
        out=out,
        draw=False,
    )
    result = runner.run(planned)
    return result, storage, out.getvalue()


def _by_function(result: RunResult) -> dict[str, list[Invocation]]:
    found: dict[str, list[Invocation]] = {}
    for item in result.timeline.invocations:
        found.setdefault(item.function, []).append(item)
    return found


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    best = current = 0
    for _, step in points:
        current += step
        best = max(best, current)
    return best


CHAIN = """
functions:
  aws:
  - lambda:
      name: split
      init_script: split.sh
      timeout: 30
      input: [{storage_provider: s3, path: wf/start}]
      output:
      - {storage_provider: s3, path: wf/upper, suffix: [upper]}
      - {storage_provider: s3, path: wf/count, suffix: [count]}
  - lambda:
      name: shout
      init_script: shout.sh
      timeout: 30
      input: [{storage_provider: s3, path: wf/upper}]
      output: [{storage_provider: s3, path: wf/result}]
  - lambda:
      name: tally
      init_script: tally.sh
      timeout: 30
      input: [{storage_provider: s3, path: wf/count}]
      output: [{storage_provider: s3, path: wf/result}]
"""

CHAIN_SCRIPTS = {
    "split.sh": """
        set -eu
        name=$(basename "$INPUT_FILE_PATH" .txt)
        tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.upper"
        wc -w < "$INPUT_FILE_PATH" | tr -d ' ' > "$TMP_OUTPUT_DIR/$name.count"
        printf '%s' "$EVENT" > "$TMP_OUTPUT_DIR/$name.event.json"
        echo "split $name"
    """,
    "shout.sh": """
        set -eu
        name=$(basename "$INPUT_FILE_PATH")
        { cat "$INPUT_FILE_PATH"; echo '!'; } > "$TMP_OUTPUT_DIR/$name.shout"
    """,
    "tally.sh": """
        set -eu
        name=$(basename "$INPUT_FILE_PATH")
        echo "words: $(cat "$INPUT_FILE_PATH")" > "$TMP_OUTPUT_DIR/$name.tally"
    """,
}


def test_a_chain_of_functions_runs_on_each_upload(tmp_path: Path) -> None:
    result, storage, out = _run(
        tmp_path,
        CHAIN,
        CHAIN_SCRIPTS,
        {"one.txt": b"hello there\n", "two words.txt": b"a b c\n"},
    )

    assert result.ok, out
    results = storage / "wf" / "result"
    assert (results / "one.upper.shout").read_text() == "HELLO THERE\n!\n"
    assert (results / "one.count.tally").read_text() == "words: 2\n"
    assert (results / "two words.upper.shout").read_text() == "A B C\n!\n"
    assert (results / "two words.count.tally").read_text() == "words: 3\n"
    # split's third output matches no output filter: it goes nowhere.
    assert not list(storage.glob("wf/*/*.event.json"))

    functions = _by_function(result)
    assert {name: len(items) for name, items in functions.items()} == {
        "split": 2,
        "shout": 2,
        "tally": 2,
    }
    for item in result.timeline.invocations:
        assert (item.where, item.status) == ("lambda", "succeeded"), item
        assert item.lambda_start is not None
        assert item.lambda_end is not None
        assert item.triggered <= item.lambda_start <= item.lambda_end <= result.duration
        assert Path(item.log).is_file()
    shout_keys = sorted(item.key for item in functions["shout"])
    assert shout_keys == ["upper/one.upper", "upper/two words.upper"]
    assert "split #1: triggered by start/" in out
    timeline = json.loads(result.timeline_json.read_text())
    assert len(timeline["invocations"]) == 6


def test_each_function_gets_the_event_of_a_bucket_notification(tmp_path: Path) -> None:
    workflow = """
    functions:
      aws:
      - lambda:
          name: keep-event
          init_script: event.sh
          input: [{storage_provider: s3, path: wf/start}]
          output: [{storage_provider: s3, path: wf/result}]
    """
    script = {"event.sh": 'printf "%s" "$EVENT" > "$TMP_OUTPUT_DIR/event.json"\n'}
    result, storage, out = _run(tmp_path, workflow, script, {"a file+1.txt": b"12345"})

    assert result.ok, out
    event: dict[str, Any] = json.loads((storage / "wf/result/event.json").read_text())
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == "wf"
    assert record["s3"]["object"]["key"] == "start/a+file%2B1.txt"
    assert record["s3"]["object"]["size"] == 5


LAMBDA_BATCH = """
functions:
  aws:
  - lambda:
      name: maybe-slow
      execution_mode: lambda-batch
      timeout: 3
      init_script: maybe-slow.sh
      container: {timeout_threshold: 1}
      input: [{storage_provider: s3, path: wf/start}]
      output: [{storage_provider: s3, path: wf/middle}]
  - lambda:
      name: finish
      init_script: finish.sh
      input: [{storage_provider: s3, path: wf/middle}]
      output: [{storage_provider: s3, path: wf/result}]
"""

LAMBDA_BATCH_SCRIPTS = {
    "maybe-slow.sh": """
        set -eu
        case "$STORAGE_OBJECT_KEY" in *slow*) sleep 3 ;; esac
        cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").mid"
    """,
    "finish.sh": """
        set -eu
        cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").done"
    """,
}


def test_a_timeout_in_lambda_is_finished_by_batch_and_the_workflow_goes_on(
    tmp_path: Path,
) -> None:
    result, storage, out = _run(
        tmp_path, LAMBDA_BATCH, LAMBDA_BATCH_SCRIPTS, {"quick.txt": b"q", "slow.txt": b"s"}
    )

    assert result.ok, out
    assert (storage / "wf/result/quick.txt.mid.done").read_bytes() == b"q"
    assert (storage / "wf/result/slow.txt.mid.done").read_bytes() == b"s"
    first = {item.key: item for item in _by_function(result)["maybe-slow"]}
    quick, slow = first["start/quick.txt"], first["start/slow.txt"]
    assert quick.where == "lambda"
    assert quick.job_id is None
    assert slow.where == "lambda, then batch"
    assert slow.status == "delegated"
    assert slow.job_status == "SUCCEEDED"
    assert slow.exit_code == 0
    assert slow.lambda_start is not None
    assert slow.lambda_end is not None
    # Killed at the deadline less the reserve: 3 s - 1 s.
    assert 1.8 <= slow.lambda_end - slow.lambda_start <= 2.9
    assert slow.batch_started is not None
    assert slow.batch_ended is not None
    assert slow.batch_ended - slow.batch_started >= 3.0
    assert Path(slow.job_log).is_file()
    assert [phase for phase, _, _ in slow.phases(result.duration)] == [
        "queued",
        "lambda",
        "batch-pending",
        "batch-running",
    ]
    # The Batch job's output triggered the next function too.
    finish = {item.key for item in _by_function(result)["finish"]}
    assert finish == {"middle/quick.txt.mid", "middle/slow.txt.mid"}
    assert "handed to Batch" in out
    assert "Batch job succeeded" in out


BATCH_ONLY = """
functions:
  aws:
  - lambda:
      name: heavy
      execution_mode: batch
      memory: 128
      init_script: heavy.sh
      input: [{storage_provider: s3, path: wf/start}]
      output: [{storage_provider: s3, path: wf/result}]
    batch:
      vcpus: 2
      enable_gpu: true
      compute_resources: {max_v_cpus: 2}
"""

HEAVY = {
    "heavy.sh": """
        set -eu
        sleep 0.5
        cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"
    """
}


def test_batch_jobs_beyond_the_compute_environment_wait_in_the_queue(tmp_path: Path) -> None:
    uploads = {f"file-{index}.txt": str(index).encode() for index in range(3)}
    result, storage, out = _run(tmp_path, BATCH_ONLY, HEAVY, uploads)

    assert result.ok, out
    assert sorted(path.name for path in (storage / "wf/result").iterdir()) == [
        f"file-{index}.txt.out" for index in range(3)
    ]
    items = result.timeline.invocations
    assert all(item.where == "batch" and item.gpu for item in items)
    running = []
    pending = []
    for item in items:
        assert item.batch_submitted is not None
        assert item.batch_started is not None
        assert item.batch_ended is not None
        running.append((item.batch_started, item.batch_ended))
        pending.append(item.batch_started - item.batch_submitted)
    # max_v_cpus 2 / vcpus 2: one job at a time, the others pending.
    assert _max_overlap(running) == 1
    assert sorted(pending)[-1] > 0.5
    assert "pending in the job queue" in out
    assert "asks for a GPU" in out


def test_the_lambda_concurrency_limit_queues_invocations(tmp_path: Path) -> None:
    workflow = """
    functions:
      aws:
      - lambda:
          name: nap
          init_script: nap.sh
          input: [{storage_provider: s3, path: wf/start}]
          output: [{storage_provider: s3, path: wf/result}]
    """
    script = {"nap.sh": 'sleep 0.4; cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n'}
    uploads = {f"f{index}.txt": b"x" for index in range(5)}
    result, storage, out = _run(tmp_path, workflow, script, uploads, lambda_concurrency=2)

    assert result.ok, out
    assert len(list((storage / "wf/result").iterdir())) == 5
    spans = []
    waits = []
    for item in result.timeline.invocations:
        assert item.lambda_start is not None
        assert item.lambda_end is not None
        spans.append((item.lambda_start, item.lambda_end))
        waits.append(item.lambda_start - item.triggered)
    assert _max_overlap(spans) == 2
    assert max(waits) >= 0.7  # the fifth waited for two rounds of two


def test_failures_are_reported_with_their_error_and_log(tmp_path: Path) -> None:
    workflow = """
    functions:
      aws:
      - lambda:
          name: fails-here
          init_script: fail.sh
          input: [{storage_provider: s3, path: wf/start}]
          output: [{storage_provider: s3, path: wf/result}]
      - lambda:
          name: fails-in-batch
          execution_mode: batch
          init_script: fail-batch.sh
          input: [{storage_provider: s3, path: wf/start}]
          output: [{storage_provider: s3, path: wf/result}]
    """
    scripts = {
        "fail.sh": "echo 'cannot read this input' >&2; exit 3\n",
        "fail-batch.sh": "echo 'the batch side broke' >&2; exit 4\n",
    }
    result, storage, out = _run(tmp_path, workflow, scripts, {"bad.txt": b"?"})

    assert not result.ok
    assert result.failed == 2
    assert result.unfinished == 0
    items = _by_function(result)
    here = items["fails-here"][0]
    assert here.status == "failed"
    assert "exited with 3" in here.error
    assert "cannot read this input" in Path(here.log).read_text()
    batch = items["fails-in-batch"][0]
    assert batch.job_status == "FAILED"
    assert batch.exit_code == 4
    assert "the batch side broke" in Path(batch.job_log).read_text()
    # The summary shows both, with the tail of each log.
    assert "FAILED in Lambda" in out
    assert "Batch job FAILED (exit code 4)" in out
    report = out[out.index("function ") :]
    assert "cannot read this input" in report
    assert "the batch side broke" in report
    assert not (storage / "wf/result").exists()


def test_an_object_no_function_listens_to_triggers_nothing(tmp_path: Path) -> None:
    result, storage, _out = _run(
        tmp_path, CHAIN, CHAIN_SCRIPTS, {"x.txt": b"nothing"}, to="wf/elsewhere"
    )

    assert result.ok
    assert result.timeline.invocations == []
    assert (storage / "wf/elsewhere/x.txt").read_bytes() == b"nothing"
