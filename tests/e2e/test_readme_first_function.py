"""The README's first function, run as a newcomer would: its definition and its script,
copied from the README, through ``python -m supervisor`` on local storage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_the_first_function_counts_the_words_it_says_it_counts(tmp_path: Path) -> None:
    section = _section(
        (ROOT / "README.md").read_text(encoding="utf-8"), "Your first function in five minutes"
    )
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)
    definition = next(body for kind, body in blocks if kind == "yaml")
    script = next(body for kind, body in blocks if kind == "sh" and body.startswith("#!/bin/sh"))
    commands = next(body for kind, body in blocks if "supervisor run" in body)
    init_script = re.search(r"^init_script: (\S+)", definition, re.MULTILINE)
    assert init_script is not None
    (tmp_path / "function.yaml").write_text(definition)
    (tmp_path / init_script.group(1)).write_text(script)

    # The README's commands, run as written by a shell whose `python` is this interpreter.
    shown = re.search(r"cat (storage/\S+)\s+# (\S+)", commands)
    assert shown is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "OK: function word-count" in done.stdout
    assert "uploaded results/counts/hello.count.txt" in done.stdout
    assert done.stdout.splitlines()[-1] == shown.group(2)
    assert (tmp_path / shown.group(1)).read_text().strip() == shown.group(2)
