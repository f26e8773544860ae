"""``python -m supervisor`` as a person runs it: help, validate, run on local storage, the demo."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import __version__

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
        "run", "--config", str(function), "--event", "event.json", "--json", cwd=function.parent
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
        "run",
        "--config",
        str(function),
        "--event",
        "-",
        "--json",
        cwd=function.parent,
        stdin=event,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"


def test_run_reports_a_failing_script(function: Path) -> None:
    function.write_text(DEFINITION + "container: {environment: {Variables: {EXIT_WITH: 3}}}\n")
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", "--json", cwd=function.parent
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

    done = supervisor("run", "--config", "f.yaml", "--event", "event.json", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == "input=[] args=a b c\n"

    (tmp_path / "event.json").write_text("{}")
    done = supervisor("run", "--config", "f.yaml", "--event", "event.json", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == "input=[] args=\n"


# --- the report of `run` ----------------------------------------------------------------------


def test_run_tells_a_person_what_happened(function: Path) -> None:
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", cwd=function.parent
    )

    assert done.returncode == 0, done.stderr
    storage = (function.parent / "storage").resolve()
    lines = done.stdout.splitlines()
    assert lines[:2] == [
        f"function shout (lambda mode), buckets in {storage}",
        "in/hello world.in: ran here (as in Lambda), exit code 0, 3 file(s) uploaded",
    ]
    assert sorted(lines[2:5]) == [
        "  uploaded results/all/hello world.txt",
        "  uploaded results/all/key.log",
        "  uploaded results/text/hello world.txt",
    ]
    body = "shouted in/hello world.in\n"
    assert lines[5:7] == [f"response: 200 OK, body {len(body)} byte(s)", f"  | {body.strip()}"]
    assert lines[7].startswith("succeeded (request ")
    assert len(lines) == 8
    assert "Downloading" in done.stderr
    assert "Downloading" not in done.stdout


def test_run_json_carries_the_response(function: Path) -> None:
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", "--json", cwd=function.parent
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    response = report["response"]
    assert response["statusCode"] == 200
    assert response["headers"]["amz-lambda-request-id"] == report["request_id"]
    assert base64.b64decode(response["body"]).decode() == report["output"]


def test_run_tells_how_an_asynchronous_invocation_fails(function: Path) -> None:
    function.write_text(DEFINITION + "container: {environment: {Variables: {EXIT_WITH: 3}}}\n")

    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", cwd=function.parent
    )

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[1].startswith("in/hello world.in: failed (")
    assert lines[1] == "in/hello world.in: failed (the script exited with 3)"
    assert lines[2].startswith("response: function error (InvocationError): in/hello world.in: ")
    assert "retries an asynchronous event" in lines[3]
    assert lines[-1].startswith("failed (request ")


def test_run_gives_an_api_caller_a_500_when_the_script_fails(function: Path) -> None:
    function.write_text(DEFINITION + "container: {environment: {Variables: {EXIT_WITH: 3}}}\n")
    event = supervisor("event", "api-v2", "--body", "hello", cwd=function.parent)
    assert event.returncode == 0, event.stderr

    done = supervisor(
        "run", "--config", str(function), "--event", "-", cwd=function.parent, stdin=event.stdout
    )

    assert done.returncode == 1
    assert "response: 500 Internal Server Error" in done.stdout
    assert "  | api_event_file: failed (" in done.stdout


def test_run_gives_a_bad_event_a_400(function: Path) -> None:
    (function.parent / "event.json").write_text('{"Records": []}')

    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", cwd=function.parent
    )

    assert done.returncode == 1
    assert "error: Records is empty: there is nothing to process" in done.stderr
    body = "Bad event: Records is empty: there is nothing to process"
    lines = done.stdout.splitlines()
    assert lines[1:3] == [f"response: 400 Bad Request, body {len(body) + 1} byte(s)", f"  | {body}"]
    assert lines[-1].startswith("rejected (request ")


def test_run_quiet_prints_the_last_line_and_errors_only(function: Path) -> None:
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", "-q", cwd=function.parent
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("succeeded (request ")
    assert len(done.stdout.splitlines()) == 1
    assert done.stderr == ""


def test_run_verbose_logs_debug_lines(function: Path) -> None:
    done = supervisor(
        "run", "--config", str(function), "--event", "event.json", "--verbose", cwd=function.parent
    )

    assert done.returncode == 0, done.stderr
    assert " DEBUG supervisor." in done.stderr


def test_quiet_and_verbose_cannot_go_together(function: Path) -> None:
    done = supervisor("run", "--event", "event.json", "-q", "-v", cwd=function.parent)

    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr


@pytest.mark.parametrize(
    ("mode", "exit_with"),
    [("lambda", 0), ("lambda", 3), ("batch", 0), ("batch", 3)],
    ids=["succeeded", "failed", "delegated", "delegated-failed"],
)
def test_run_leaves_nothing_in_the_temporary_folder(
    function: Path, mode: str, exit_with: int
) -> None:
    function.write_text(
        DEFINITION + f"container: {{environment: {{Variables: {{EXIT_WITH: {exit_with}}}}}}}\n"
    )
    temporary = function.parent / "tmp"
    temporary.mkdir()
    env = {"TMPDIR": str(temporary)}
    args = ("run", "--config", str(function), "--event", "event.json", "--mode", mode)

    text = supervisor(*args, cwd=function.parent, env=env)
    data = supervisor(*args, "--json", cwd=function.parent, env=env)

    assert list(temporary.iterdir()) == []
    assert (text.returncode, data.returncode) == (1 if exit_with else 0,) * 2, text.stderr
    report = json.loads(data.stdout)
    if mode == "lambda":
        assert report["jobs"] == []
        return
    (job,) = report["jobs"]
    assert job["exit_code"] == exit_with
    assert job["log"] is None
    assert "supervisor.runtime" in job["log_tail"]
    lines = text.stdout.splitlines()
    assert lines[1].startswith("in/hello world.in: handed to Batch job ")
    assert lines[2].endswith(f" (run here) exited {exit_with}")
    assert any(line.startswith("response: 202 Accepted, body ") for line in lines)
    if exit_with:
        assert "  the end of its log:" in lines
        assert any("exit code 3" in line for line in lines)
        assert lines[-1].startswith("failed on Batch: ")
    else:
        assert lines[-1].startswith("succeeded on Batch (request ")


def test_run_keeps_the_job_logs_in_the_given_work_folder(function: Path) -> None:
    work = function.parent / "work"
    done = supervisor(
        "run",
        "--config",
        str(function),
        "--event",
        "event.json",
        "--mode",
        "batch",
        "--work-dir",
        str(work),
        cwd=function.parent,
    )

    assert done.returncode == 0, done.stderr
    (log,) = (work / "batch-jobs").iterdir()
    assert f"  log: {log}" in done.stdout.splitlines()
    assert "Uploaded" in log.read_text()


# --- sample events and the program's name ------------------------------------------------------


def test_event_help_has_an_example(tmp_path: Path) -> None:
    done = supervisor("event", "--help", cwd=tmp_path)

    assert done.returncode == 0
    assert "python -m supervisor event s3 --bucket uploads" in done.stdout
    for kind in ("s3", "minio", "sqs", "sns", "eventbridge", "api", "api-v2", "url"):
        assert kind in done.stdout


def test_event_refuses_an_unknown_kind_and_an_unreadable_body(tmp_path: Path) -> None:
    unknown = supervisor("event", "kafka", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "invalid choice: 'kafka'" in unknown.stderr

    missing = supervisor("event", "api", "--body-file", "nope.bin", cwd=tmp_path)
    assert missing.returncode == 2
    assert "error: cannot read nope.bin: No such file or directory" in missing.stderr

    folder = supervisor("event", "s3", "--key", "in/", cwd=tmp_path)
    assert folder.returncode == 2
    assert "error: --key 'in/' is a folder (it ends in /): name an object" in folder.stderr

    query = supervisor("event", "api", "--query", "novalue", cwd=tmp_path)
    assert query.returncode == 2
    assert "expected NAME=VALUE, got 'novalue'" in query.stderr


def test_event_takes_the_size_from_local_storage(function: Path) -> None:
    done = supervisor(
        "event", "s3", "--bucket", "uploads", "--key", "in/hello world.in", cwd=function.parent
    )

    assert done.returncode == 0, done.stderr
    size = json.loads(done.stdout)["Records"][0]["s3"]["object"]["size"]
    assert size == len("hello, world\n")


def test_the_console_script_names_itself(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "serverless-supervisor"
    assert script.is_file(), "pip install -e . installs the console script next to python"
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert call("--help").stdout.startswith("usage: serverless-supervisor ")
    assert call("--version").stdout == f"serverless-supervisor {__version__}\n"
    assert "  serverless-supervisor event s3 " in call("run", "--help").stdout
    assert call().stderr.startswith("usage: serverless-supervisor ")


def test_python_m_supervisor_names_itself(tmp_path: Path) -> None:
    assert supervisor("--help", cwd=tmp_path).stdout.startswith("usage: python -m supervisor ")
    version = supervisor("--version", cwd=tmp_path).stdout
    assert version == f"python -m supervisor {__version__}\n"
    assert "  python -m supervisor event s3 " in supervisor("run", "--help", cwd=tmp_path).stdout
