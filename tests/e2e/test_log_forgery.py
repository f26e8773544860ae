"""An attacker's text in the logs of ``python -m supervisor run`` and of a Batch job: a key,
an API body, the script's output and error messages that carry newlines, carriage returns
and terminal escapes never make a line of their own.

Every line that the process writes must start with the log format's prefix; the forged
line ``... INFO supervisor.runtime: finished: all records done`` shows up only escaped,
inside a line of the record that carried it.  Output is read as bytes: a text read would
turn a carriage return into a line break.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

FORGED = "2026-01-01T00:00:00Z INFO supervisor.runtime: finished: all records done"
LOCAL_LINE = re.compile(
    rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) [A-Za-z0-9_.]+: "
)
# Raw characters that must never reach a log: C0 controls but the tab and the newline
# (which ends each line), DEL, C1 controls, the Unicode line and paragraph separators.
RAW_CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")

# The script speaks as an attacker: a fake line after a newline, after a carriage return,
# after a Unicode line separator and after NEL, a terminal title, a line erase.
HOSTILE_SCRIPT = f"""\
printf 'key: %s\\n' "$STORAGE_OBJECT_KEY"
printf 'progress 10%%\\rprogress 100%%\\r\\n'
printf 'x\\r{FORGED}\\n'
printf '\\033]0;owned\\007\\033[2Kcleared\\n'
printf 'sep\\342\\200\\250{FORGED}\\n'
printf 'nel\\302\\205{FORGED}\\n'
printf 'no final newline\\n{FORGED}'
"""


def lines_of(output: bytes) -> list[bytes]:
    return output.removesuffix(b"\n").split(b"\n")


def assert_unforgeable(
    output: bytes, line_format: re.Pattern[bytes], *, last: bytes | None = None
) -> list[bytes]:
    """Every line has the prefix (but the last one may start with ``last``: the CLI's own
    one-line verdict), no raw control character is left, and the forged text never starts a
    line.  Returns the lines."""
    lines = lines_of(output)
    for index, line in enumerate(lines):
        if last is not None and index == len(lines) - 1 and line.startswith(last):
            continue
        assert line_format.match(line), f"a line without the log prefix: {line!r}"
    found = RAW_CONTROLS.search(output)
    assert found is None, f"raw control character {found.group()!r} in the log"
    for line in lines:  # the forged line has the prefix too: it must not start one
        assert not line.startswith(FORGED.encode()), line
    return lines


def run_supervisor(
    tmp_path: Path, script: str, event: dict[str, Any], files: dict[str, bytes]
) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "script.sh").write_text(script)
    (tmp_path / "function.yaml").write_text(
        "name: victim\ninit_script: script.sh\n"
        "input:\n  - {storage_provider: s3, path: uploads/in}\n"
        "output:\n  - {storage_provider: s3, path: results/out}\n"
    )
    (tmp_path / "event.json").write_text(json.dumps(event))
    folder = tmp_path / "storage" / "uploads" / "in"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor",
            "run",
            "--config",
            "function.yaml",
            "--event",
            "event.json",
            "--storage-root",
            "storage",
            "--json",
        ],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
        check=False,
    )


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    record = {"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
    return {"Records": [record]}


def test_a_key_and_the_script_output_cannot_forge_local_log_lines(tmp_path: Path) -> None:
    name = f"x\n{FORGED} \x1b[31mred.in"  # a space: the key is taken as it is, not URL-decoded
    done = run_supervisor(tmp_path, HOSTILE_SCRIPT, s3_event("uploads", f"in/{name}"), {name: b"1"})

    assert done.returncode == 0, done.stderr.decode(errors="replace")
    lines = assert_unforgeable(done.stderr, LOCAL_LINE)
    script = [
        line.split(b" supervisor.script: ", 1)[1]
        for line in lines
        if b" supervisor.script: " in line
    ]
    escaped_key = f"x\\n{FORGED} \\x1b[31mred.in".encode()
    assert script == [
        b"key: in/x",  # the script prints the key's newline: a line of its own, as the script's
        FORGED.encode() + b" \\x1b[31mred.in",
        b"progress 10%\\rprogress 100%",
        b"x\\r" + FORGED.encode(),
        b"\\x1b]0;owned\\x07\\x1b[2Kcleared",
        b"sep\\u2028" + FORGED.encode(),
        b"nel\\x85" + FORGED.encode(),
        b"no final newline",
        FORGED.encode(),  # a line of the script's own, marked as the script's
    ]
    # The key in the supervisor's own lines, escaped within them.
    assert any(b"supervisor.runtime: " in line and escaped_key in line for line in lines)


def test_an_api_body_with_crlf_and_escapes_stays_inside_the_script_lines(tmp_path: Path) -> None:
    body = f"first\r\n{FORGED}\r\n\x1b[1A\x1b[2K{FORGED}\r".encode()
    event = json.loads((ROOT / "tests" / "events" / "apigw_v1.json").read_text())
    event["body"] = base64.b64encode(body).decode()
    done = run_supervisor(tmp_path, 'cat "$INPUT_FILE_PATH"\n', event, {})

    assert done.returncode == 0, done.stderr.decode(errors="replace")
    lines = assert_unforgeable(done.stderr, LOCAL_LINE)
    script = [
        line.split(b" supervisor.script: ", 1)[1]
        for line in lines
        if b" supervisor.script: " in line
    ]
    assert script == [
        b"first",
        FORGED.encode(),
        b"\\x1b[1A\\x1b[2K" + FORGED.encode() + b"\\r",
    ]
    assert json.loads(done.stdout)["output"] == body.decode()  # the response keeps the bytes


def test_an_error_about_a_hostile_key_is_one_line(tmp_path: Path) -> None:
    missing = f"gone\n{FORGED}\r\x1b[2K .in"
    done = run_supervisor(tmp_path, "echo never\n", s3_event("uploads", f"in/{missing}"), {})

    assert done.returncode != 0
    lines = assert_unforgeable(done.stderr, LOCAL_LINE, last=b"error: ")
    escaped = f"gone\\n{FORGED}\\r\\x1b[2K .in".encode()
    assert lines[-1].startswith(b"error: cannot download "), lines[-1]
    assert escaped in lines[-1]


BATCH_LINE = LOCAL_LINE


def run_job(
    tmp_path: Path, aws_env: dict[str, str], definition: dict[str, Any], event: dict[str, Any]
) -> subprocess.CompletedProcess[bytes]:
    """``python -m supervisor`` as the job definition of a Batch job runs it."""
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        **aws_env,
        "SCRIPT": base64.b64encode(HOSTILE_SCRIPT.encode()).decode(),
        "FUNCTION_CONFIG": base64.b64encode(json.dumps(definition).encode()).decode(),
        "EVENT": json.dumps(event),
        "AWS_BATCH_JOB_ID": "job-forgery",
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "SUPERVISOR_WORK_DIR": str(tmp_path / "work"),
    }
    return subprocess.run(
        [sys.executable, "-m", "supervisor"],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_a_batch_job_log_cannot_be_forged(
    tmp_path: Path, aws_env: dict[str, str], s3: Any, make_bucket: Callable[[str], str]
) -> None:
    bucket = make_bucket("forgery")
    # The moto server cannot store a key with a newline (the download that fails on one is
    # the second job below); a carriage return and a Unicode line separator it can.
    key = f"in/x\r{FORGED}\u2028{FORGED} \x1b[2K.in"
    s3.put_object(Bucket=bucket, Key=key, Body=b"data")
    definition = {
        "name": "victim",
        "input": [{"storage_provider": "s3", "path": f"{bucket}/in"}],
        "output": [{"storage_provider": "s3", "path": f"{bucket}/out"}],
    }
    done = run_job(tmp_path, aws_env, definition, s3_event(bucket, key))

    assert done.returncode == 0, done.stdout.decode(errors="replace")
    lines = assert_unforgeable(done.stdout, BATCH_LINE)
    assert any(line.endswith(b" supervisor.script: nel\\x85" + FORGED.encode()) for line in lines)
    escaped_key = f"x\\r{FORGED}\\u2028{FORGED} \\x1b[2K.in".encode()
    assert any(b"finished" in line and escaped_key in line for line in lines)

    missing = f"in/gone\n{FORGED}\r.in"
    failed = run_job(tmp_path, aws_env, definition, s3_event(bucket, missing))
    assert failed.returncode != 0
    lines = assert_unforgeable(failed.stdout, BATCH_LINE)
    assert any(f"gone\\n{FORGED}\\r.in".encode() in line for line in lines)
