"""``python -m supervisor`` as a person runs it: help, validate, run on local storage, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DEFINITION = """\
name: shout
init_script: shout.sh
input:
  - {storage_provider: s3, path: uploads/in}
output:
  - {storage_provider: s3, path: results/text, suffix: [.txt]}
  - {storage_provider: s3, path: results/all}
"""

SCRIPT = """\
#!/bin/sh
set -eu
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH" .in).txt"
echo "$STORAGE_OBJECT_KEY" > "$TMP_OUTPUT_DIR/key.log"
echo "shouted $STORAGE_OBJECT_KEY"
exit "${EXIT_WITH:-0}"
"""


def supervisor(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], "HOME": str(cwd), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def s3_event(bucket: str, key: str) -> str:
    record = {"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
    return json.dumps({"Records": [record]})


@pytest.fixture
def function(tmp_path: Path) -> Path:
    (tmp_path / "shout.sh").write_text(SCRIPT)
    path = tmp_path / "function.yaml"
    path.write_text(DEFINITION)
    storage = tmp_path / "storage" / "uploads" / "in"
    storage.mkdir(parents=True)
    (storage / "hello world.in").write_text("hello, world\n")
    (tmp_path / "event.json").write_text(s3_event("uploads", "in/hello+world.in"))
    return path


def test_help_explains_every_command(tmp_path: Path) -> None:
    top = supervisor("--help", cwd=tmp_path)
    assert top.returncode == 0
    for command in ("run", "validate", "job"):
        assert command in top.stdout
    run = supervisor("run", "--help", cwd=tmp_path)
    for option in ("--config", "--event", "--storage-root", "--timeout", "--mode"):
        assert option in run.stdout


def test_no_command_and_no_event_prints_help(tmp_path: Path) -> None:
    done = supervisor(cwd=tmp_path)
    assert done.returncode == 2
    assert "usage: python -m supervisor" in done.stderr


def test_validate_ok(function: Path) -> None:
    done = supervisor("validate", str(function), cwd=function.parent)
    assert done.returncode == 0
    assert done.stdout.startswith("OK: function shout")


def test_validate_names_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: f\ncontainer: {timeout_threshold: soon}\noutput: [{path: ''}]\n")
    done = supervisor("validate", str(bad), cwd=tmp_path)
    assert done.returncode == 1
    assert "container.timeout_threshold: 'soon' is invalid" in done.stderr
    assert "output[0].path" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_on_local_storage(function: Path) -> None:
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", cwd=function.parent
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded"
    assert report["output"] == "shouted in/hello world.in\n"
    results = function.parent / "storage" / "results"
    assert (results / "text" / "hello world.txt").read_text() == "HELLO, WORLD\n"
    assert (results / "all" / "hello world.txt").read_text() == "HELLO, WORLD\n"
    assert (results / "all" / "key.log").read_text() == "in/hello world.in\n"
    assert not (results / "text" / "key.log").exists()
    assert "Downloading" in done.stderr
    assert "in/hello world.in" in done.stderr


def test_run_reads_the_event_from_stdin(function: Path) -> None:
    event = (function.parent / "event.json").read_text()
    done = supervisor(
        "run", "--config", str(function), "--event", "-", cwd=function.parent, stdin=event
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"


def test_run_reports_a_failing_script(function: Path) -> None:
    function.write_text(DEFINITION + "container: {environment: {Variables: {EXIT_WITH: 3}}}\n")
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", cwd=function.parent
    )
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["status"] == "failed"
    assert report["records"][0]["exit_code"] == 3
    assert not (function.parent / "storage" / "results").exists()


@pytest.mark.parametrize(
    ("event", "message"),
    [("not json", "not JSON"), ('{"Records": []}', "Records is empty")],
)
def test_run_rejects_a_bad_event(function: Path, event: str, message: str) -> None:
    (function.parent / "event.json").write_text(event)
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", cwd=function.parent
    )
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_run_refuses_a_key_that_climbs_out(function: Path) -> None:
    (function.parent / "event.json").write_text(s3_event("uploads", "in/../../../etc/x/.."))
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", cwd=function.parent
    )
    assert done.returncode == 1
    assert "in/../../../etc/x/.." in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_definition_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text("{}")
    done = supervisor("run", "--event", "event.json", cwd=tmp_path)
    assert done.returncode == 2
    assert "FUNCTION_CONFIG or FDL" in done.stderr


@pytest.mark.slow
def test_the_readme_demo(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo" / "run_demo.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "incoming/small.txt: succeeded in Lambda" in done.stdout
    assert "incoming/big.txt: the script ran past the deadline" in done.stdout
    assert "exited 0" in done.stdout
    results = tmp_path / "demo-output" / "storage" / "results"
    big = (tmp_path / "demo-output" / "storage" / "uploads" / "incoming" / "big.txt").read_text()
    assert (results / "text" / "big.upper.txt").read_text() == big.upper()
    small = (
        tmp_path / "demo-output" / "storage" / "uploads" / "incoming" / "small.txt"
    ).read_text()
    stats = json.loads((results / "stats" / "small.stats.json").read_text())
    assert stats["words"] == len(small.split())


FDL = """\
functions:
  aws:
  - lambda:
      name: shout
      init_script: shout.sh
      runtime: python3.12
      memory: 512
      container: {image: alpine:3.20, timeout_threshold: 2}
      input: [{storage_provider: s3, path: uploads/in}]
      output: [{storage_provider: s3, path: results/fdl}]
    batch: {vcpus: 1, memory: 1024}
  - lambda:
      name: other
      init_script: shout.sh
      output: [{storage_provider: s3, path: results/other}]
"""


def test_validate_and_run_take_a_function_from_a_scar_fdl_file(function: Path) -> None:
    fdl = function.parent / "scar.yaml"
    fdl.write_text(FDL)

    both = supervisor("validate", str(fdl), cwd=function.parent)
    assert both.returncode == 0, both.stderr
    assert both.stdout.splitlines() == [
        "OK: function shout, execution_mode lambda (functions.aws[0])",
        "OK: function other, execution_mode lambda (functions.aws[1])",
    ]

    one = supervisor("validate", str(fdl), "--function", "shout", cwd=function.parent)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("OK: function shout")

    missing = supervisor("validate", str(fdl), "--function", "nope", cwd=function.parent)
    assert missing.returncode == 1
    assert "no function named 'nope' (it defines shout, other)" in missing.stderr

    done = supervisor(
        "run",
        "--config",
        str(fdl),
        "--function",
        "shout",
        "--event",
        "event.json",
        cwd=function.parent,
    )
    assert done.returncode == 0, done.stderr
    fdl_results = function.parent / "storage" / "results" / "fdl"
    assert (fdl_results / "hello world.txt").read_text() == "HELLO, WORLD\n"


def test_run_with_an_empty_event_runs_the_script_once_without_input(tmp_path: Path) -> None:
    (tmp_path / "show.sh").write_text('echo "input=[$INPUT_FILE_PATH] args=$*"\n')
    (tmp_path / "f.yaml").write_text("name: show\ninit_script: show.sh\n")
    (tmp_path / "event.json").write_text('{"cmd_args": "[\\"a\\", \\"b c\\"]"}')

    done = supervisor("run", "--config", "f.yaml", "--event", "event.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == "input=[] args=a b c\n"

    (tmp_path / "event.json").write_text("{}")
    done = supervisor("run", "--config", "f.yaml", "--event", "event.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == "input=[] args=\n"
