"""``python -m supervisor event KIND ... | python -m supervisor run --event -``: every sample
event runs the function, whose script says what it got."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEFINITION = """\
name: echo
init_script: echo.sh
input:
  - {storage_provider: s3, path: uploads/in}
  - {storage_provider: minio, path: uploads/in}
output:
  - {storage_provider: s3, path: results/copy}
"""

SCRIPT = """\
#!/bin/sh
set -eu
printf 'key=[%s] lang=[%s] input=[%s]\\n' "${STORAGE_OBJECT_KEY:-}" "${CONT_VAR_lang:-}" \\
    "$(cat "$INPUT_FILE_PATH")"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
"""

KEY = "in/my photo+1 été.txt"
CONTENT = "the object's bytes"


def supervisor(
    *args: str, cwd: Path, stdin: str | bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"},
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "echo.sh").write_text(SCRIPT)
    (tmp_path / "function.yaml").write_text(DEFINITION)
    folder = tmp_path / "storage" / "uploads" / "in"
    folder.mkdir(parents=True)
    (folder / KEY.removeprefix("in/")).write_text(CONTENT)
    return tmp_path


def run(home: Path, event: subprocess.CompletedProcess[bytes]) -> dict[str, object]:
    assert event.returncode == 0, event.stderr.decode()
    json.loads(event.stdout)
    done = supervisor(
        "run", "--config", "function.yaml", "--event", "-", "--json", cwd=home, stdin=event.stdout
    )
    assert done.returncode == 0, done.stderr.decode()
    report: dict[str, object] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("kind", ["s3", "minio", "sqs", "sns", "eventbridge"])
def test_object_events_run_the_script_on_the_object(home: Path, kind: str) -> None:
    event = supervisor("event", kind, "--bucket", "uploads", "--key", KEY, cwd=home)

    report = run(home, event)

    assert report["output"] == f"key=[{KEY}] lang=[] input=[{CONTENT}]\n"
    copy = home / "storage" / "results" / "copy" / KEY.removeprefix("in/")
    assert copy.read_text() == CONTENT


@pytest.mark.parametrize("kind", ["api", "api-v2", "url"])
def test_http_events_run_the_script_on_the_body(home: Path, kind: str) -> None:
    event = supervisor(
        "event", kind, "--method", "put", "--path", "convert", "--query", "lang=en",
        "--body", "été body", cwd=home,
    )  # fmt: skip

    report = run(home, event)

    assert report["output"] == "key=[] lang=[en] input=[été body]\n"
    response = report["response"]
    assert isinstance(response, dict)
    assert response["statusCode"] == 200


def test_a_binary_body_reaches_the_script_byte_for_byte(home: Path) -> None:
    body = bytes(range(256))
    (home / "request.bin").write_bytes(body)
    event = supervisor("event", "api-v2", "--body-file", "request.bin", cwd=home)

    run(home, event)

    assert (home / "storage" / "results" / "copy" / "api_event_file").read_bytes() == body
