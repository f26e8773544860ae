"""``bench/run.py`` as CI runs it: the quick cases 1 to 3 and 7, ours only, and its JSON's shape.

It starts its own moto server and drivers; the numbers are not checked (a benchmark, not a
timed test), only that every case produced them and that the jobs were found on the server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cgroups import why_cgroups_unusable

ROOT = Path(__file__).resolve().parents[2]
CASES = ("1_cold_start", "2_batch_delegation", "3_small_invocation", "7_chatty_script")
ROW_KEYS = {"case", "metric", "unit", "ours", "theirs", "ratio", "reference", "goal", "met", "note"}


@pytest.mark.slow
# The first run builds ours' layer (bench/.layer-ours, about a minute): later runs reuse it.
@pytest.mark.timeout(600)
def test_quick_benchmark_of_ours_writes_the_expected_json(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name not in ("FDL", "FUNCTION_CONFIG")
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--cases",
            "1,2,3,7",
            "--ours-only",
            "--output",
            str(output),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=570,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ours/theirs" in done.stdout  # the table was printed

    results = json.loads(output.read_text())
    assert {"machine", "settings", "cases", "rows", "notes", "errors"} <= set(results)
    assert results["errors"] == []
    assert results["settings"]["quick"] is True
    assert set(results["machine"]["implementations"]) == {"ours"}
    # Ours ran as a layer is found: the working tree, the layer's tree and the SDK, no
    # site-packages of the development environment.
    layer = ROOT / "bench" / ".layer-ours"
    path = results["settings"]["import_paths"]["ours"].split(os.pathsep)
    assert path == [str(ROOT), str(layer / "python"), str(layer / "runtime")]
    assert (layer / "python" / "pydantic").is_dir()
    assert (layer / "runtime" / "botocore").is_dir()
    assert set(results["cases"]) == set(CASES)

    cold = results["cases"]["1_cold_start"]["ours"]
    for key in ("python_median_s", "import_median_s", "first_call_median_s"):
        assert cold[key] > 0, key
    assert cold["jobs_verified"] == cold["jobs"] > 0
    floor = results["cases"]["1_cold_start"]["floor"]
    assert floor["first_call_median_s"] > 0
    assert floor["jobs_verified"] == floor["jobs"] == results["settings"]["cold_reps"] + 1
    _check_floor_pydantic(results["cases"]["1_cold_start"], results["settings"]["cold_reps"])
    # pydantic came from the layer's tree, the one ours imports it from.
    pydantic = results["cases"]["1_cold_start"]["floor_pydantic"]
    assert pydantic["pydantic_from"] == [str(layer / "python" / "pydantic")]
    rows = {row["metric"].strip(): row for row in results["rows"] if row["case"] == "1 cold start"}
    assert rows["floor + pydantic: + from pydantic import BaseModel"]["ours"] == pytest.approx(
        pydantic["first_call_median_s"] * 1000
    )
    assert rows["floor + pydantic / floor"]["ours"] == pytest.approx(pydantic["floor_ratio"])
    assert rows["1.3x floor leaves for the rest"]["ours"] == pytest.approx(
        (1.3 * floor["first_call_median_s"] - pydantic["first_call_median_s"]) * 1000
    )
    delegation = results["cases"]["2_batch_delegation"]["ours"]
    assert delegation["median_s"] > 0
    assert delegation["jobs_verified"] == delegation["jobs"] == results["settings"]["batch_calls"]
    small = results["cases"]["3_small_invocation"]["ours"]
    assert len(small["seconds"]) == results["settings"]["small_calls"]
    assert small["median_s"] > 0
    chatty = results["cases"]["7_chatty_script"]["ours"]
    assert len(chatty["chatty"]["seconds"]) == len(chatty["silent"]["seconds"]) == 1
    assert chatty["chatty"]["lines_logged"] == results["cases"]["7_chatty_script"]["lines"]
    assert chatty["silent"]["lines_logged"] == 0

    assert results["rows"]
    for row in results["rows"]:
        assert set(row) == ROW_KEYS
        assert row["ours"] is not None, row
        assert row["theirs"] is None, row
        if row["goal"] == "all":  # every job found on the server
            assert row["met"] is True, row


def _check_floor_pydantic(cold: dict[str, Any], cold_reps: int) -> None:
    """Case 1's floor + pydantic: its medians, its ratio to the floor and its jobs."""
    floor, pydantic = cold["floor"], cold["floor_pydantic"]
    for key in ("first_call_median_s", "init_median_s", "handler_median_s"):
        assert pydantic[key] > 0, key
    assert len(pydantic["samples"]) == len(pydantic["init_samples"]) == cold_reps
    assert pydantic["jobs_verified"] == pydantic["jobs"] == cold_reps + 1
    assert pydantic["floor_ratio"] == pytest.approx(
        pydantic["first_call_median_s"] / floor["first_call_median_s"]
    )
    assert pydantic["init_floor_ratio"] == pytest.approx(
        pydantic["init_median_s"] / floor["init_median_s"]
    )


def _clean_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name not in ("FDL", "FUNCTION_CONFIG")
    }


def test_a_size_lambda_refuses_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--lambda-memory", "128,64"],
        cwd=tmp_path,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--lambda-memory: Lambda allows 128 to 10,240 MB of memory, got 64 MB" in done.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_lambda_memory_without_permission_exits_2_with_the_limiters_message(
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o777)
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--lambda-memory",
            "128",
            "--ours-only",
            "--output",
            str(tmp_path / "results.json"),
        ],
        cwd=tmp_path,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--lambda-memory: " in done.stderr
    assert "cgroup" in done.stderr
    assert not (tmp_path / "results.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_quick_benchmark_at_a_lambda_size(tmp_path: Path) -> None:
    why_not = why_cgroups_unusable()
    if why_not is not None:
        pytest.skip(f"cgroups unusable: {why_not}")
    output = tmp_path / "results.json"
    output.write_text('{"earlier": "a full-CPU run"}')
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--lambda-memory",
            "128",
            "--cases",
            "1,2",
            "--ours-only",
            "--output",
            str(output),
        ],
        cwd=tmp_path,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(output.read_text())
    assert set(results) == {"lambda_memory", "earlier"}  # the rest of the file is kept
    size = results["lambda_memory"]["128_mb"]
    assert size["errors"] == size["limits_hit"] == []
    assert size["settings"]["quick"] is True
    assert size["memory_mb"] == 128
    assert size["capped"] is False
    delegation = size["cases"]["2_batch_delegation"]["ours"]
    assert delegation["jobs_verified"] == delegation["jobs"] == size["settings"]["batch_calls"]
    cold = size["cases"]["1_cold_start"]
    _check_floor_pydantic(cold, size["settings"]["cold_reps"])
    init_rows = [row for row in size["rows"] if row["metric"].strip() == "floor + pydantic: init"]
    [init_row] = init_rows
    assert init_row["ours"] == pytest.approx(cold["floor_pydantic"]["init_median_s"] * 1000)
    assert init_row["reference"] == pytest.approx(cold["floor"]["init_median_s"] * 1000)
    assert any(row["metric"].strip() == "floor + pydantic / floor" for row in size["rows"])
    # Every driver ran in a cgroup of its own: the floors and ours in case 1, ours in case 2.
    cold_runs = size["settings"]["cold_reps"] + 1
    labels = [(entry["impl"], entry["label"]) for entry in size["cgroups"]]
    for name in ("floor", "floor_pydantic", "ours"):
        assert labels.count((name, "cold")) == cold_runs, labels
    [cgroup] = [entry for entry in size["cgroups"] if entry["label"] == "batch"]
    assert cgroup["impl"] == "ours"
    assert cgroup["oom_killed"] is False
    assert 0 < cgroup["peak_memory_mib"] <= 128
    assert cgroup["cpu_periods"] > 0
    sized = [row for row in size["rows"] if "@ 128 MB (7.2% of a CPU)" in row["case"]]
    assert len(sized) == len(size["rows"]) > 0
    assert "@ 128 MB (7.2% of a CPU)" in done.stdout
