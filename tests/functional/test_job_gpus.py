"""A Batch job says which GPUs it got, and hands the NVIDIA runtime's variables to the script."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from batch_entrypoint.job import run_job
from supervisor import gpu
from tests.local_job import run_local_job, s3_event

ENV_SCRIPT = """\
for name in NVIDIA_VISIBLE_DEVICES CUDA_VISIBLE_DEVICES NVIDIA_DRIVER_CAPABILITIES; do
  printf '%s=%s\\n' "$name" "$(printenv "$name")"
done > "$TMP_OUTPUT_DIR/gpu-env.txt"
"""


def host_environ() -> dict[str, str]:
    return {name: os.environ[name] for name in ("PATH", "LANG", "PYTHONPATH") if name in os.environ}


def test_a_job_without_gpus_says_so_and_the_script_sees_the_runtime_variables(
    tmp_path: Path,
) -> None:
    environ = {
        **host_environ(),
        "NVIDIA_VISIBLE_DEVICES": "void",
        "CUDA_VISIBLE_DEVICES": "",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }

    job = run_local_job(
        tmp_path, ENV_SCRIPT, input_name="data.bin", input_data=b"x", environ=environ
    )

    assert job.result.returncode == 0, job.log
    assert f"Batch job {job.job_id}: no GPU: NVIDIA_VISIBLE_DEVICES is 'void'" in job.log
    assert (job.outputs / "gpu-env.txt").read_text().splitlines() == [
        "NVIDIA_VISIBLE_DEVICES=void",
        "CUDA_VISIBLE_DEVICES=",
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
    ]


def test_the_job_logs_one_line_per_gpu_before_it_runs_the_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / "storage"
    (storage / "in" / "data").mkdir(parents=True)
    (storage / "in" / "data" / "x.bin").write_bytes(b"x")
    definition = "name: gpu-log\noutput: [{path: out/results}]\n"
    environ = {
        **host_environ(),
        "FUNCTION_CONFIG": definition,
        "SCRIPT": base64.b64encode(b"echo the script ran\n").decode(),
        "EVENT": json.dumps(s3_event("in", "data/x.bin")),
        "AWS_BATCH_JOB_ID": "job-42",
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "SUPERVISOR_STORAGE_ROOT": str(storage),
        "SUPERVISOR_WORK_DIR": str(tmp_path / "work"),
    }
    inventory = gpu.GpuInventory(
        gpus=(gpu.Gpu(0, "Tesla T4", 15360), gpu.Gpu(1, "Tesla T4", 15360)),
        driver="535.104.05",
        visible_devices="0,1",
    )
    asked: list[dict[str, str]] = []

    def fake_inventory(env: Mapping[str, str]) -> gpu.GpuInventory:
        asked.append(dict(env))
        return inventory

    exit_code = run_job(environ, None, config_path=None, gpu_inventory=fake_inventory)

    out = capsys.readouterr().out
    assert exit_code == 0, out
    assert asked == [environ]
    gpu_lines = [line for line in out.splitlines() if "Batch job job-42: GPU" in line]
    assert [line.split(": ", 2)[2] for line in gpu_lines] == [
        "GPU 0: Tesla T4, 15360 MiB, driver 535.104.05 (NVIDIA_VISIBLE_DEVICES '0,1')",
        "GPU 1: Tesla T4, 15360 MiB, driver 535.104.05 (NVIDIA_VISIBLE_DEVICES '0,1')",
    ]
    assert all(" INFO " in line for line in gpu_lines)
    assert out.index("GPU 1: Tesla T4") < out.index("the script ran")
