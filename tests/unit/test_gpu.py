"""gpu.inventory: what a job learns about its GPUs, with a fake nvidia-smi and fake /dev files;
gpu.present: whether a container gets the NVIDIA libraries."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor import gpu
from supervisor.execution import build_environment

SMI = "/usr/bin/nvidia-smi"
TWO_GPUS = "0, Tesla T4, 15360 MiB, 535.104.05\n1, NVIDIA A10G, 23028 MiB, 535.104.05\n"


class FakeSmi:
    """Stands in for ``subprocess.run``: records the calls, answers or raises as told."""

    def __init__(
        self,
        stdout: str = "",
        *,
        returncode: int = 0,
        stderr: str = "",
        error: Exception | None = None,
    ) -> None:
        self.stdout, self.returncode, self.stderr, self.error = stdout, returncode, stderr, error
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((command, kwargs))
        if self.error is not None:
            raise self.error
        return subprocess.CompletedProcess(command, self.returncode, self.stdout, self.stderr)


def never_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    raise AssertionError(f"nvidia-smi should not run: {command}")


def found(path: str | None) -> Callable[..., str | None]:
    def which(name: str, **kwargs: Any) -> str | None:
        assert name == "nvidia-smi"
        return path

    return which


@pytest.fixture
def devices(tmp_path: Path) -> Callable[..., str]:
    """Create fake ``/dev`` entries; return the glob that finds the GPU ones."""

    def make(*names: str) -> str:
        for name in names:
            (tmp_path / name).touch()
        return str(tmp_path / "nvidia[0-9]*")

    return make


def test_parses_nvidia_smi_csv(devices: Callable[..., str]) -> None:
    smi = FakeSmi(TWO_GPUS)
    environ = {"NVIDIA_VISIBLE_DEVICES": "all", "PATH": "/usr/bin"}

    found_gpus = gpu.inventory(
        environ,
        run=smi,
        devices_glob=devices("nvidia1", "nvidia0", "nvidiactl", "nvidia-uvm"),
        which=found(SMI),
    )

    assert found_gpus.gpus == (
        gpu.Gpu(0, "Tesla T4", 15360),
        gpu.Gpu(1, "NVIDIA A10G", 23028),
    )
    assert found_gpus.driver == "535.104.05"
    assert found_gpus.visible_devices == "all"
    assert [Path(path).name for path in found_gpus.device_files] == ["nvidia0", "nvidia1"]
    assert found_gpus.nvidia_smi == SMI
    assert found_gpus.problems == ()
    assert found_gpus.runtime
    ((command, kwargs),) = smi.calls
    assert command == [
        SMI,
        "--query-gpu=index,name,memory.total,driver_version",
        "--format=csv,noheader",
    ]
    assert 0 < kwargs["timeout"] <= 30
    assert found_gpus.describe() == [
        "GPU 0: Tesla T4, 15360 MiB, driver 535.104.05 (NVIDIA_VISIBLE_DEVICES 'all')",
        "GPU 1: NVIDIA A10G, 23028 MiB, driver 535.104.05 (NVIDIA_VISIBLE_DEVICES 'all')",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "0, NVIDIA H100 80GB HBM3, 81559 MiB, 580.159.04",
            gpu.Gpu(0, "NVIDIA H100 80GB HBM3", 81559),
        ),
        ("3, Tesla V100-SXM2-16GB, 16160, 470.57.02", gpu.Gpu(3, "Tesla V100-SXM2-16GB", 16160)),
        (
            "0, NVIDIA A100, MIG 1g.5gb, [N/A], 535.54.03",
            gpu.Gpu(0, "NVIDIA A100, MIG 1g.5gb", None),
        ),
    ],
)
def test_names_with_commas_and_memory_without_unit_or_value(line: str, expected: gpu.Gpu) -> None:
    result = gpu.inventory(
        {}, run=FakeSmi(line + "\n"), devices_glob="/nonexistent/*", which=found(SMI)
    )

    assert result.gpus == (expected,)
    assert result.problems == ()


def test_a_failing_nvidia_smi_is_a_problem_and_a_warning(
    devices: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    message = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    smi = FakeSmi(stdout=message + "\n", returncode=9)

    with caplog.at_level(logging.WARNING, logger="supervisor.gpu"):
        result = gpu.inventory({}, run=smi, devices_glob=devices("nvidia0"), which=found(SMI))

    assert result.gpus == ()
    assert result.problems == (f"{SMI} exited with 9: {message}",)
    assert result.runtime, "the device file says the runtime is there"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"GPU inventory: {SMI} exited with 9: {message}")
    ]
    assert result.describe() == [f"no GPU: {SMI} exited with 9: {message}"]


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (subprocess.TimeoutExpired([SMI], 10), "did not answer within 10 s"),
        (PermissionError(13, "Permission denied"), "cannot run /usr/bin/nvidia-smi"),
    ],
)
def test_nvidia_smi_that_hangs_or_cannot_start_is_a_problem(
    error: Exception, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="supervisor.gpu"):
        result = gpu.inventory(
            {}, run=FakeSmi(error=error), devices_glob="/nonexistent/*", which=found(SMI)
        )

    assert result.gpus == ()
    (recorded,) = result.problems
    assert problem in recorded
    assert any(problem in record.getMessage() for record in caplog.records)


def test_an_unexpected_line_is_a_problem_and_the_other_gpus_stay() -> None:
    smi = FakeSmi("0, Tesla T4, 15360 MiB, 535.104.05\ngarbage\nx, y, z, w\n")

    result = gpu.inventory({}, run=smi, devices_glob="/nonexistent/*", which=found(SMI))

    assert result.gpus == (gpu.Gpu(0, "Tesla T4", 15360),)
    assert result.problems == (
        "unexpected nvidia-smi line 'garbage'",
        "unexpected nvidia-smi line 'x, y, z, w'",
    )


@pytest.mark.parametrize("visible", ["void", "VOID", "none", "", " "])
def test_void_devices_mean_no_gpu_whatever_else_is_there(
    visible: str, devices: Callable[..., str]
) -> None:
    result = gpu.inventory(
        {"NVIDIA_VISIBLE_DEVICES": visible},
        run=never_run,
        devices_glob=devices("nvidia0"),
        which=found(SMI),
    )

    assert result.gpus == ()
    assert result.disabled
    assert not result.runtime
    assert result.problems == ()
    assert result.describe() == [f"no GPU: NVIDIA_VISIBLE_DEVICES is {visible!r}"]


def test_no_runtime_no_gpu_and_nothing_run() -> None:
    result = gpu.inventory(
        {"PATH": "/usr/bin"}, run=never_run, devices_glob="/nonexistent/*", which=found(None)
    )

    assert result == gpu.GpuInventory()
    assert not result.runtime
    assert result.describe() == ["no GPU: no /dev/nvidia* device and no nvidia-smi on PATH"]


def test_device_files_without_nvidia_smi_count_the_gpus(
    devices: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="supervisor.gpu"):
        result = gpu.inventory(
            {"NVIDIA_VISIBLE_DEVICES": "0,1"},
            run=never_run,
            devices_glob=devices("nvidia0", "nvidia1"),
            which=found(None),
        )

    assert result.gpus == (gpu.Gpu(0, ""), gpu.Gpu(1, ""))
    assert result.runtime
    (problem,) = result.problems
    assert problem.startswith("nvidia-smi not found on PATH: 2 device file(s)")
    assert len(caplog.records) == 1
    assert result.describe()[0] == "GPU 0: unknown, memory unknown (NVIDIA_VISIBLE_DEVICES '0,1')"


def test_nvidia_smi_is_looked_up_on_the_given_path() -> None:
    asked: list[str | None] = []

    def which(name: str, **kwargs: Any) -> str | None:
        asked.append(kwargs.get("path"))
        return None

    gpu.inventory(
        {"PATH": "/usr/local/nvidia/bin:/usr/bin"}, devices_glob="/nonexistent/*", which=which
    )

    assert asked == ["/usr/local/nvidia/bin:/usr/bin"]


def test_the_script_sees_the_gpus_the_job_was_given() -> None:
    host = {
        "PATH": "/usr/local/nvidia/bin:/usr/bin",
        "LD_LIBRARY_PATH": "/usr/local/nvidia/lib64",
        "NVIDIA_VISIBLE_DEVICES": "GPU-5f3c1a2b",
        "CUDA_VISIBLE_DEVICES": "0",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
        "AWS_SECRET_ACCESS_KEY": "secret-do-not-leak",
    }

    environment = build_environment(
        environ=host,
        input_file=None,
        input_dir=Path("/tmp/req/input"),
        output_dir=Path("/tmp/req/output"),
        object_key="",
        event_time="",
        event_json="{}",
        request_id="req-1",
        instance_ip="",
        variables={},
        query={},
    )

    for name in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"):
        assert environment[name] == host[name]
    assert environment["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"
    assert "AWS_SECRET_ACCESS_KEY" not in environment


def test_exported_members() -> None:
    assert all(hasattr(gpu, name) for name in gpu.__all__)
    assert {"Gpu", "GpuInventory", "inventory"} <= set(gpu.__all__)


@pytest.mark.parametrize(
    ("environ", "device", "smi", "expected"),
    [
        ({}, False, False, False),
        ({}, True, False, True),
        ({}, False, True, True),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, False, False, True),
        ({"NVIDIA_VISIBLE_DEVICES": "0,1"}, False, False, True),
        ({"NVIDIA_VISIBLE_DEVICES": "void"}, True, True, False),
        ({"NVIDIA_VISIBLE_DEVICES": "None"}, True, True, False),
        ({"NVIDIA_VISIBLE_DEVICES": ""}, True, True, False),
    ],
)
def test_gpu_present(environ: dict[str, str], device: bool, smi: bool, expected: bool) -> None:
    def exists(path: str) -> bool:
        return device and path == "/dev/nvidia0"

    def which(name: str, path: str | None = None) -> str | None:
        return "/usr/bin/nvidia-smi" if smi and name == "nvidia-smi" else None

    assert gpu.present(environ, exists=exists, which=which) is expected
