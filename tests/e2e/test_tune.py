"""``python -m supervisor tune`` as a person runs it: real scripts whose behaviour is known,
measured in real cgroups, the recommendation under each strategy, tune.json, tune.png and
``--apply``; and the refusals (no cgroups, inside Lambda, bad arguments).

The machine may be busy (CI runs the suite beside other work), so the assertions are about
shapes that hold at any load: a CPU-bound script is several times slower at 256 MB than at
one vCPU, a sleeping one costs more at a bigger size, an allocation runs out of memory below
its size.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.cgroups import needs_cgroups

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
# Lambda's published prices (aws.amazon.com/lambda/pricing, us-east-1): per GB-second of the
# first tier, and per request.
X86_GB_SECOND = 0.0000166667
ARM_GB_SECOND = 0.0000133334
PER_REQUEST = 0.20 / 1_000_000


DEFINITION = """\
name: {name}
init_script: script.sh
timeout: {timeout}
container:
  timeout_threshold: 1
input:
  - {{storage_provider: s3, path: uploads/in}}
output:
  - {{storage_provider: s3, path: results/out}}
"""
# About a fifth of a CPU-second at full speed: a second and a half at 256 MB.
CPU_BOUND = """\
#!/bin/sh
i=0
while [ $i -lt 60000 ]; do i=$((i+1)); done
echo done > "$TMP_OUTPUT_DIR/done.txt"
"""
SLEEPS = """\
#!/bin/sh
sleep 0.3
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy"
"""
# Touches 300 MiB: out of memory below 512 MB.
ALLOCATES = """\
#!/bin/sh
python3 -c 'b = bytearray(300 << 20); b[::4096] = b"x" * len(b[::4096]); print(len(b))'
"""
# Work in proportion to the input's size: the input hashed 12 times.
SCALES = """\
#!/bin/sh
for n in 1 2 3 4 5 6 7 8 9 10 11 12; do sha256sum "$INPUT_FILE_PATH" >/dev/null; done
"""


def _function(
    folder: Path, script: str, *, name: str = "probe", timeout: int = 120, extra: str = ""
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "script.sh").write_text(script)
    path = folder / "function.yaml"
    path.write_text(DEFINITION.format(name=name, timeout=timeout) + extra)
    return path


def _input(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def tune(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "tune", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _json(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "tune.json").read_text())
    return data


def _size(data: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in data["sizes"] if s["memory_mb"] == memory_mb)
    return found


def _png_is_a_chart(path: Path) -> None:
    image = pytest.importorskip("matplotlib.image").imread(path)
    height, width = image.shape[:2]
    assert width >= 600
    assert height >= 400
    colours = {tuple(pixel) for pixel in image[::7, ::7].reshape(-1, image.shape[2]).tolist()}
    assert len(colours) > 20  # lines, text and markers, not a blank page


@needs_cgroups
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_cpu_bound_script_is_fastest_from_one_vcpu_and_speed_picks_it(tmp_path: Path) -> None:
    definition = _function(tmp_path / "fn", CPU_BOUND)
    sample = _input(tmp_path, "one.bin", 1024)
    done = tune(
        definition,
        "--input",
        sample,
        "--memory",
        "256,1769,3008,10240",
        "--runs",
        "2",
        "--strategy",
        "speed",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = _json(tmp_path)
    at_256, at_1769, at_3008 = (_size(data, mb)["typical_s"] for mb in (256, 1769, 3008))
    # Duration falls with memory up to one vCPU (256 MB is 14% of one), then stays flat
    # for a single-threaded script.
    assert at_256 > 3 * at_1769, (at_256, at_1769)
    assert at_3008 > 0.6 * at_1769, (at_3008, at_1769)
    # 10,240 MB would get 5.8 CPUs: more than this host has, so marked, never picked.
    host_cpus = len(os.sched_getaffinity(0))
    assert _size(data, 10240)["capped"] is (host_cpus < 10240 / 1769)
    assert _size(data, 1769)["capped"] is False
    recommendation = data["recommendation"]
    assert recommendation["strategy"] == "speed"
    assert recommendation["memory_mb"] in (1769, 3008)
    assert recommendation["execution_mode"] == "lambda"
    assert "capped" in done.stdout
    assert f"recommendation (speed): lambda at {recommendation['memory_mb']} MB" in done.stdout
    assert recommendation["reason"] in done.stdout
    _png_is_a_chart(tmp_path / "tune.png")
    assert data["batch"]["instance"] == "m5.large"
    assert data["batch"]["status"] == "ok"


@needs_cgroups
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sleeping_script_is_cheapest_at_the_smallest_size_and_costs_as_published(
    tmp_path: Path,
) -> None:
    definition = _function(tmp_path / "fn", SLEEPS)
    sample = _input(tmp_path, "small.bin", 4096)
    for strategy, weight in (("cost", "0.5"), ("balanced", "1")):
        out = tmp_path / strategy
        done = tune(
            definition,
            "--input",
            sample,
            "--memory",
            "128,512,1024",
            "--runs",
            "1",
            "--strategy",
            strategy,
            "--weight",
            weight,
            "--output-dir",
            out,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        data = _json(out)
        assert data["recommendation"]["memory_mb"] == 128, data["recommendation"]
        assert data["recommendation"]["execution_mode"] == "lambda"
    for memory_mb in (128, 512, 1024):
        size = _size(data, memory_mb)
        seconds = math.ceil(size["typical_s"] * 1000) / 1000
        gb = memory_mb / 1024
        assert size["cost_usd"]["x86_64"] == pytest.approx(
            seconds * gb * X86_GB_SECOND + PER_REQUEST, rel=1e-6
        )
        assert size["cost_usd"]["arm64"] == pytest.approx(
            seconds * gb * ARM_GB_SECOND + PER_REQUEST, rel=1e-6
        )
    assert data["prices"]["date"]


@needs_cgroups
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_allocation_runs_out_of_memory_below_its_size_and_apply_writes_scars_keys(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "script.sh").write_text(ALLOCATES)
    fdl = folder / "functions.yaml"
    fdl.write_text(
        "# two functions, as SCAR deploys them\n"
        "functions:\n"
        "  aws:\n"
        "  - lambda:\n"
        "      name: other\n"
        "      memory: 512\n"
        "      init_script: script.sh\n"
        "  - lambda:\n"
        "      name: hungry  # the one measured\n"
        "      memory: 128\n"
        "      timeout: 120\n"
        "      init_script: script.sh\n"
        "      input:\n"
        "      - {storage_provider: s3, path: uploads/in}\n"
    )
    before = fdl.read_text()
    sample = _input(tmp_path, "any.bin", 1024)
    done = tune(
        fdl,
        "--function",
        "hungry",
        "--input",
        sample,
        "--memory",
        "128,256,1024",
        "--runs",
        "1",
        "--apply",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = _json(tmp_path)
    assert _size(data, 128)["status"] == "oom"
    assert _size(data, 256)["status"] == "oom"
    at_1024 = _size(data, 1024)
    assert at_1024["status"] == "ok"
    assert at_1024["peak_memory_mb"] > 300
    assert data["recommendation"]["memory_mb"] == 1024
    assert data["recommendation"]["execution_mode"] == "lambda"
    after = fdl.read_text()
    assert "memory: 1024" in after
    assert "execution_mode: lambda" in after
    # Only the measured function's keys changed; the comments stay.
    assert after.count("memory: 512") == 1
    assert "# two functions, as SCAR deploys them" in after
    assert "name: hungry  # the one measured" in after
    assert len(after.splitlines()) == len(before.splitlines()) + 1
    assert f"{fdl}: memory 128 -> 1024, execution_mode None -> lambda" in done.stdout


@needs_cgroups
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_duration_is_fitted_against_input_size_and_decides_lambda_batch(tmp_path: Path) -> None:
    definition = _function(tmp_path / "fn", SCALES, timeout=30)
    small = _input(tmp_path, "small.bin", 1 * MIB)
    big = _input(tmp_path, "big.bin", 8 * MIB)
    common: list[str | Path] = ["--input", small, "--input", big, "--memory", "1769", "--runs", "1"]
    # The largest input to expect, 20 GB, would take far longer than the timeout.
    done = tune(definition, *common, "--largest-size", "20000", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    data = _json(tmp_path)
    size = _size(data, 1769)
    runs = {run["sample"]: run["duration_s"] for run in size["runs"]}
    assert runs["big.bin"] > runs["small.bin"]
    assert size["fit"]["slope_s_per_mb"] > 0
    assert size["input_mb_at_15_min"] > 8
    assert data["recommendation"]["execution_mode"] == "lambda-batch"
    assert data["recommendation"]["memory_mb"] == 1769
    # A typical input of 20 GB does not fit at any size: batch.
    out = tmp_path / "typical-20gb"
    done = tune(
        definition,
        *common,
        "--typical-size",
        "20000",
        "--largest-size",
        "20000",
        "--output-dir",
        out,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _json(out)["recommendation"]["execution_mode"] == "batch"


def test_a_gpu_function_is_not_measured_and_goes_to_batch(tmp_path: Path) -> None:
    definition = _function(
        tmp_path / "fn", SLEEPS, extra="batch:\n  enable_gpu: true\n  vcpus: 1\n"
    )
    sample = _input(tmp_path, "video.bin", 1024)
    done = tune(definition, "--input", sample, "--batch-instance", "g4dn.xlarge", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    data = _json(tmp_path)
    assert data["gpu"] == {"asked": True, "measured": False, "note": data["gpu"]["note"]}
    assert data["sizes"] == []
    assert data["recommendation"]["execution_mode"] == "batch"
    assert "GPU" in data["recommendation"]["reason"]
    assert "not measured" in done.stdout
    _png_is_a_chart(tmp_path / "tune.png")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_without_permission_for_cgroups_it_says_what_to_do_and_exits_2() -> None:
    with tempfile.TemporaryDirectory() as folder:  # pytest's own is private to root
        tmp_path = Path(folder)
        tmp_path.chmod(0o777)
        definition = _function(tmp_path / "fn", SLEEPS)
        sample = _input(tmp_path, "small.bin", 1024)
        for path in (tmp_path / "fn", definition, tmp_path / "fn" / "script.sh", sample):
            path.chmod(0o777 if path.is_dir() else 0o666)
        done = _as_nobody(tmp_path, definition, sample)
        assert not (tmp_path / "tune.json").exists()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot emulate Lambda's memory sizes here" in done.stderr
    assert "sudo" in done.stderr


def _as_nobody(tmp_path: Path, definition: Path, sample: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "supervisor",
            "tune",
            str(definition),
            "--input",
            str(sample),
        ],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_inside_lambda_it_refuses_and_exits_2(tmp_path: Path) -> None:
    definition = _function(tmp_path / "fn", SLEEPS)
    sample = _input(tmp_path, "small.bin", 1024)
    done = tune(
        definition, "--input", sample, cwd=tmp_path, env={"AWS_LAMBDA_FUNCTION_NAME": "probe"}
    )
    assert done.returncode == 2
    assert "inside AWS Lambda" in done.stderr
    assert "the size is real" in done.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--memory", "64"], "--memory: Lambda allows 128 to 10,240 MB of memory, got 64 MB"),
        (["--memory", "lots"], "expected memory sizes in MB separated by commas"),
        (["--batch-instance", "x9.huge"], "x9.huge"),
        (["--timeout", "1000"], "--timeout: Lambda allows 1 to 900 seconds, got 1000"),
        (["--weight", "2"], "--weight: expected 0 to 1, got 2"),
        (["--margin", "1"], "--margin: expected a share from 0 to below 1, got 1"),
    ],
)
def test_a_bad_argument_is_named_and_exits_2(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    definition = _function(tmp_path / "fn", SLEEPS)
    sample = _input(tmp_path, "small.bin", 1024)
    done = tune(definition, "--input", sample, *arguments, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (tmp_path / "tune.json").exists()


def test_a_missing_input_or_definition_is_named_and_exits_2(tmp_path: Path) -> None:
    definition = _function(tmp_path / "fn", SLEEPS)
    done = tune(definition, "--input", tmp_path / "nowhere.mp4", cwd=tmp_path)
    assert done.returncode == 2
    assert f"--input {tmp_path / 'nowhere.mp4'}: no such file" in done.stderr
    done = tune(tmp_path / "none.yaml", "--input", definition, cwd=tmp_path)
    assert done.returncode == 2
    assert f"the definition file: no such file: {tmp_path / 'none.yaml'}" in done.stderr


def test_help_explains_the_rule_and_the_requirements(tmp_path: Path) -> None:
    done = tune("--help", cwd=tmp_path)
    assert done.returncode == 0
    for words in ("--strategy", "lambda-batch", "capped", "root", "exit code 2", "tune.png"):
        assert words in done.stdout, words
