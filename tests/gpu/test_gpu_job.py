"""Device check: a Batch job on a GPU host runs a CUDA computation and uploads its result.

Skipped where there is no NVIDIA GPU (no ``/dev/nvidia0`` and no ``nvidia-smi``), and the
CUDA part where PyTorch is not installed.  ``tests/gpu/run_on_device.sh`` runs these on a
GPU machine.  The job is ``python -m supervisor`` with what a Batch job container gets,
reading and writing buckets as folders (``SUPERVISOR_STORAGE_ROOT``); the script runs
the same Python as the tests, named in a container variable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from supervisor import gpu
from tests.local_job import run_local_job

HAS_GPU = Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None

pytestmark = pytest.mark.skipif(
    not HAS_GPU, reason="no NVIDIA GPU here: neither /dev/nvidia0 nor nvidia-smi on PATH"
)

# What the NVIDIA container runtime and a CUDA image give a job, passed on when set.
_HOST = (
    "PATH",
    "LANG",
    "HOME",
    "PYTHONPATH",  # for the supervisor itself when it is not installed
    "LD_LIBRARY_PATH",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
)

CUDA_SCRIPT = """\
"$PYTHON" - <<'EOF'
import json, os, torch
n = int(open(os.environ["INPUT_FILE_PATH"]).read())
torch.manual_seed(0)
a = torch.rand(n, n, device="cuda")
product = a @ a
torch.cuda.synchronize()
expected = a.cpu() @ a.cpu()
name = torch.cuda.get_device_name(0)
print("computed on", name)
result = {
    "device": product.device.type,
    "name": name,
    "size": n,
    "sum": product.sum().item(),
    "matches_cpu": bool(torch.allclose(product.cpu(), expected, rtol=1e-3, atol=1e-2)),
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "visible_devices": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
}
with open(os.path.join(os.environ["TMP_OUTPUT_DIR"], "gpu.json"), "w") as out:
    json.dump(result, out)
EOF
"""


def job_environ() -> dict[str, str]:
    return {name: os.environ[name] for name in _HOST if name in os.environ}


def script_variables() -> dict[str, str]:
    """The tests' Python for the script; its PYTHONPATH too, which no script gets by default."""
    variables = {"PYTHON": sys.executable}
    if os.environ.get("PYTHONPATH"):
        variables["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return variables


def test_the_inventory_finds_the_gpus() -> None:
    found = gpu.inventory(os.environ)

    assert found.problems == ()
    assert found.gpus, found.describe()
    assert found.driver
    assert all(card.name and card.memory_mib for card in found.gpus), found.describe()


@pytest.mark.timeout(300)
def test_a_batch_job_runs_a_cuda_computation_and_uploads_its_result(tmp_path: Path) -> None:
    if not HAS_TORCH:
        pytest.skip(f"PyTorch is not importable by {sys.executable}: pip install torch")
    job = run_local_job(
        tmp_path,
        CUDA_SCRIPT,
        input_name="matrix-size.txt",
        input_data=b"512",
        environ=job_environ(),
        variables=script_variables(),
        timeout=240,
    )

    assert job.result.returncode == 0, job.log
    assert f"Batch job {job.job_id}: GPU 0: " in job.log, job.log
    uploaded = job.outputs / "gpu.json"
    assert uploaded.is_file(), job.log
    result = json.loads(uploaded.read_text())
    assert result["device"] == "cuda"
    assert result["size"] == 512
    assert result["matches_cpu"] is True, result
    assert f"computed on {result['name']}" in job.log
