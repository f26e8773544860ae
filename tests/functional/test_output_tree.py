"""What a hostile script leaves in its output folder, run as a user runs a function:
``python -m supervisor run`` on local storage, with a real ``/bin/sh`` script.

The supervisor runs as an unprivileged user (uid 65534 when the tests run as root), as in
Lambda, where the script shares its user: root reads a folder whatever its mode, so a
``chmod 000`` would prove nothing there.  Whatever the script leaves, the invocation either
uploads or fails naming what it could not upload, and its work folder is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.workspace import remove_tree

NOBODY = 65534

DEFINITION = """\
name: tree
init_script: script.sh
output:
  - {storage_provider: s3, path: results/all}
"""

DEEP_SCRIPT = """\
set -eu
deep=$(printf 'd/%.0s' $(seq 1100))
mkdir -p "$TMP_OUTPUT_DIR/$deep"
echo bottom > "$TMP_OUTPUT_DIR/${deep}bottom.txt"
echo top > "$TMP_OUTPUT_DIR/top.txt"
"""

UNREADABLE_SCRIPT = """\
set -eu
mkdir -p "$TMP_OUTPUT_DIR/hidden/inner" "$TMP_OUTPUT_DIR/locked"
echo result > "$TMP_OUTPUT_DIR/hidden/inner/result.txt"
echo result > "$TMP_OUTPUT_DIR/locked/result.txt"
echo shown > "$TMP_OUTPUT_DIR/visible.txt"
chmod 000 "$TMP_OUTPUT_DIR/hidden"
chmod 300 "$TMP_OUTPUT_DIR/locked"
"""


@pytest.fixture
def home() -> Iterator[Path]:
    """A folder the unprivileged user owns (pytest's ``tmp_path`` is root's, mode 700)."""
    folder = Path(tempfile.mkdtemp(prefix="supervisor-output-tree-"))
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)
    yield folder
    assert remove_tree(folder)


def run(home: Path, script: str, definition: str = DEFINITION) -> subprocess.CompletedProcess[str]:
    for name, text in (("script.sh", script), ("function.yaml", definition), ("event.json", "{}")):
        (home / name).write_text(text)
    command = [sys.executable, "-m", "supervisor", "run", "--config", "function.yaml"]
    command += ["--event", "event.json", "--storage-root", "storage", "--work-dir", "work"]
    command += ["--json"]
    if os.geteuid() == 0:
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(
        command,
        cwd=home,
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def leftovers(home: Path) -> list[str]:
    """Invocation folders left in the work folder."""
    return sorted(path.name for path in (home / "work").glob("invocation-*"))


def uploaded(home: Path) -> list[str]:
    results = home / "storage" / "results"
    if not results.exists():
        return []
    return sorted(str(path.relative_to(results)) for path in results.rglob("*") if path.is_file())


def test_a_tree_1100_folders_deep_fails_with_a_clear_message_and_is_removed(home: Path) -> None:
    done = run(home, DEEP_SCRIPT)

    assert done.returncode == 1, done.stderr
    assert "error: nothing uploaded: the output file 'd/d/d/" in done.stderr
    assert "would need a key of 2,214 bytes in s3 results/all" in done.stderr
    assert "Traceback" not in done.stderr
    assert "RecursionError" not in done.stderr
    assert uploaded(home) == []
    assert leftovers(home) == []


def test_a_tree_whose_keys_fit_is_uploaded_and_removed(home: Path) -> None:
    script = DEEP_SCRIPT.replace("seq 1100", "seq 400")

    done = run(home, script)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert uploaded(home) == sorted(["all/" + "d/" * 400 + "bottom.txt", "all/top.txt"])
    assert leftovers(home) == []


def test_unreadable_output_folders_fail_the_invocation_naming_them(home: Path) -> None:
    done = run(home, UNREADABLE_SCRIPT)

    assert done.returncode == 1, done.stderr
    assert "nothing uploaded: the script left paths in the output folder that cannot be read" in (
        done.stderr
    )
    assert "'hidden' (Permission denied)" in done.stderr
    assert "'locked' (Permission denied)" in done.stderr
    assert "Traceback" not in done.stderr
    assert uploaded(home) == []
    assert leftovers(home) == []


def test_two_files_for_one_key_fail_the_invocation_naming_both(home: Path) -> None:
    definition = DEFINITION + "  - {storage_provider: s3, path: results/all/sub}\n"
    script = 'set -eu\nmkdir "$TMP_OUTPUT_DIR/sub"\necho a > "$TMP_OUTPUT_DIR/sub/x.txt"\n'
    script += 'echo b > "$TMP_OUTPUT_DIR/x.txt"\n'

    done = run(home, script, definition)

    assert done.returncode == 1, done.stderr
    assert "two output files would overwrite one object" in done.stderr
    assert "'sub/x.txt' and 'x.txt' both go to s3 results/'all/sub/x.txt'" in done.stderr
    assert uploaded(home) == []
    assert leftovers(home) == []
