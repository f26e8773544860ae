"""``python -m supervisor workflow run | replay`` in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

WORKFLOW = """
functions:
  aws:
  - lambda:
      name: words
      execution_mode: lambda-batch
      timeout: 20
      init_script: words.sh
      input: [{storage_provider: s3, path: media/start}]
      output:
      - {storage_provider: s3, path: media/words, suffix: [words]}
  - lambda:
      name: count
      execution_mode: batch
      init_script: count.sh
      input: [{storage_provider: s3, path: media/words}]
      output: [{storage_provider: s3, path: media/result}]
    batch:
      vcpus: 1
      compute_resources: {max_v_cpus: 1}
"""

SCRIPTS = {
    "words.sh": """
        set -eu
        name=$(basename "$INPUT_FILE_PATH")
        tr -s ' ' '\\n' < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.words"
        echo "split $name into words"
    """,
    "count.sh": """
        set -eu
        name=$(basename "$INPUT_FILE_PATH" .words)
        wc -l < "$INPUT_FILE_PATH" | tr -d ' ' > "$TMP_OUTPUT_DIR/$name.count"
    """,
}


def _setup(tmp_path: Path, workflow: str = WORKFLOW, scripts: dict[str, str] = SCRIPTS) -> Path:
    for name, text in scripts.items():
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    path = tmp_path / "workflow.yaml"
    path.write_text(textwrap.dedent(workflow).lstrip())
    (tmp_path / "a.txt").write_text("one two three\n")
    (tmp_path / "b.txt").write_text("four five\n")
    return path


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "workflow", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_workflow_run_uploads_runs_everything_and_draws_the_timeline(tmp_path: Path) -> None:
    workflow = _setup(tmp_path)
    done = _cli(
        tmp_path,
        "run",
        str(workflow),
        "--upload",
        "a.txt",
        "b.txt",
        "--storage-root",
        "buckets",
        "--work-dir",
        "work",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    results = tmp_path / "buckets/media/result"
    assert (results / "a.txt.count").read_text() == "3\n"
    assert (results / "b.txt.count").read_text() == "2\n"
    # Uploaded where no function writes: the first function's input.
    assert (tmp_path / "buckets/media/start/a.txt").is_file()
    out = done.stdout
    assert "4 invocation(s)" in out
    assert "0 failed, 0 unfinished" in out
    assert "words #1: triggered by start/a.txt" in out
    summary = out[out.index("function ") :]
    assert "words" in summary
    assert "count" in summary
    timeline = json.loads((tmp_path / "work/timeline.json").read_text())
    entries = timeline["invocations"]
    assert len(entries) == 4
    assert {entry["where"] for entry in entries if entry["function"] == "count"} == {"batch"}
    assert {entry["where"] for entry in entries if entry["function"] == "words"} == {"lambda"}
    png = (tmp_path / "work/timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5000
    assert (tmp_path / "work/workflow.log").stat().st_size > 0


def test_workflow_replay_uploads_on_a_scaled_schedule(tmp_path: Path) -> None:
    workflow = _setup(tmp_path)
    done = _cli(
        tmp_path,
        "replay",
        str(workflow),
        "--upload",
        "a.txt",
        "--schedule",
        "0:1,60:2",
        "--time-scale",
        "60",
        "--storage-root",
        "buckets",
        "--work-dir",
        "work",
        "--no-chart",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(path.name for path in (tmp_path / "buckets/media/start").iterdir())
    assert names == ["a-01.txt", "a-02.txt", "a-03.txt"]
    entries = json.loads((tmp_path / "work/timeline.json").read_text())["invocations"]
    first = {entry["key"]: entry["triggered"] for entry in entries if entry["function"] == "words"}
    assert first["start/a-01.txt"] < 0.5
    assert 1.0 <= first["start/a-02.txt"] < 2.0
    assert 1.0 <= first["start/a-03.txt"] < 2.0
    assert not (tmp_path / "work/timeline.png").exists()


def test_a_failing_function_fails_the_run_and_shows_its_log(tmp_path: Path) -> None:
    scripts = {**SCRIPTS, "count.sh": "echo 'no space left for counting' >&2\nexit 5\n"}
    workflow = _setup(tmp_path, scripts=scripts)
    done = _cli(tmp_path, "run", str(workflow), "--upload", "a.txt", "--work-dir", "work")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert "Batch job FAILED (exit code 5)" in done.stdout
    assert "no space left for counting" in done.stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("timeout: 20", "timeout: 2000"), "timeout"),
        (("execution_mode: batch", "execution_mode: sometimes"), "execution_mode"),
        (("path: media/result}]", "path: media/start}]"), "never end"),
    ],
)
def test_a_bad_workflow_is_refused_with_the_key(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = textwrap.dedent(WORKFLOW).lstrip()
    assert change[0] in text
    workflow = _setup(tmp_path, workflow=text.replace(*change))
    done = _cli(tmp_path, "run", str(workflow), "--upload", "a.txt")

    assert done.returncode == 2
    assert expected in done.stderr
    assert not (tmp_path / "storage").exists()


def test_a_missing_upload_is_a_usage_error(tmp_path: Path) -> None:
    workflow = _setup(tmp_path)
    done = _cli(tmp_path, "run", str(workflow), "--upload", "nope.mp4")

    assert done.returncode == 2
    assert "nope.mp4" in done.stderr


def test_help_explains_the_workflow_format(tmp_path: Path) -> None:
    done = _cli(tmp_path, "run", "--help")

    assert done.returncode == 0
    assert "functions:" in done.stdout
    assert "--lambda-concurrency" in done.stdout
    replay = _cli(tmp_path, "replay", "--help")
    assert "--time-scale" in replay.stdout
    assert "0:1,60:1,300:3,600:5" in replay.stdout


def test_an_interrupted_run_stops_its_scripts_and_jobs(tmp_path: Path) -> None:
    workflow = """
    functions:
      aws:
      - lambda:
          name: sleepy
          timeout: 60
          init_script: sleepy.sh
          input: [{storage_provider: s3, path: media/start}]
          output: [{storage_provider: s3, path: media/result}]
      - lambda:
          name: sleepy-batch
          execution_mode: batch
          init_script: sleepy.sh
          input: [{storage_provider: s3, path: media/start}]
          output: [{storage_provider: s3, path: media/result}]
    """
    marker = f"sleepy-{os.getpid()}-{tmp_path.name}"
    path = _setup(
        tmp_path,
        workflow=workflow,
        scripts={"sleepy.sh": f"exec env MARK={marker} sleep 60\n"},
    )
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "workflow", "run", str(path), "--upload", "a.txt"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(_marked(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_marked(marker)) == 2, "both scripts should be running"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out
    assert "interrupted" in out
    deadline = time.monotonic() + 5
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(marker) == []


def _marked(marker: str) -> list[int]:
    """Live processes whose environment holds MARK=marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"MARK={marker}".encode() in environ.split(b"\0") and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def test_uploading_where_no_function_reads_is_said(tmp_path: Path) -> None:
    workflow = _setup(tmp_path)
    done = _cli(tmp_path, "run", str(workflow), "--upload", "a.txt", "--to", "media/nowhere")

    assert done.returncode == 0
    assert "no function of the workflow reads media/nowhere" in done.stderr
    assert "0 invocation(s)" in done.stdout
    assert (tmp_path / "storage/media/nowhere/a.txt").is_file()
