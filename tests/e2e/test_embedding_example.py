"""The runnable example of docs/embedding.md: a deployment tool using the supervisor's API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "embedding" / "deploy_tool.py"


def test_the_embedding_example_runs_one_upload_here_and_hands_the_other_to_its_backend(
    tmp_path: Path,
) -> None:
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "word-count: lambda-batch, reserve 1 s"
    assert "in/small note.txt: succeeded" in lines
    assert "in/big.txt: delegated" in lines
    counts = tmp_path / "storage" / "results" / "counts"
    assert (counts / "small note.count").read_text().strip() == "3"
    assert not (counts / "big.count").exists()
    summary = json.loads(lines[-1])
    (job,) = summary["jobs"]
    assert job.startswith("word-count-")
    assert any(line.startswith(f"  would submit job {job} to queue word-count") for line in lines)
