"""The README's first function, run as a newcomer would: its definition and its script,
copied from the README, through ``python -m supervisor`` on local storage."""

from __future__ import annotations

import json
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

    # The README's commands: the input it creates, and the result it shows.
    created = re.search(r'echo "([^"]*)" > (storage/\S+)', commands)
    shown = re.search(r"cat (storage/\S+)\s+# (\S+)", commands)
    key = re.search(r"--bucket (\S+) --key (\S+)", commands)
    assert created is not None
    assert shown is not None
    assert key is not None
    assert created.group(2) == f"storage/{key.group(1)}/{key.group(2)}"
    (tmp_path / created.group(2)).parent.mkdir(parents=True)
    (tmp_path / created.group(2)).write_text(created.group(1) + "\n")
    event = json.loads((ROOT / "tests/events/s3_put.json").read_text())
    event["Records"][0]["s3"]["bucket"]["name"] = key.group(1)
    event["Records"][0]["s3"]["object"]["key"] = key.group(2)
    event["Records"][0]["s3"]["object"]["size"] = len(created.group(1)) + 1

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    check = [sys.executable, "-m", "supervisor", "validate", "function.yaml"]
    subprocess.run(check, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", "run", "--config", "function.yaml", "--event", "-"],
        cwd=tmp_path,
        env=env,
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / shown.group(1)).read_text().strip() == shown.group(2)
