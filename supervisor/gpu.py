"""GPUs: which NVIDIA devices this host hands to the script, read once at a job's start.

On an AWS Batch GPU host the NVIDIA container runtime exposes the GPUs a job asked for
(``resourceRequirements [{type: GPU, value: N}]``): it sets ``NVIDIA_VISIBLE_DEVICES``,
creates ``/dev/nvidia0``... and mounts ``nvidia-smi`` and the driver's libraries into the
container.  ``inventory`` reads those three signs and, when ``nvidia-smi`` is there, asks
it for each GPU's index, name, memory and the driver version.

``present`` is the quick answer, without ``nvidia-smi``, that decides whether a udocker
container gets the NVIDIA libraries: ``NVIDIA_VISIBLE_DEVICES`` when set, else
``/dev/nvidia0`` or ``nvidia-smi`` on ``PATH``.

``inventory`` never raises: what goes wrong (``nvidia-smi`` missing, failing, timing out
or printing something unexpected) is logged as a WARNING and kept in ``problems``, since
a job whose script needs no GPU must still run.  ``NVIDIA_VISIBLE_DEVICES`` set to
``void``, ``none`` or nothing means the runtime exposes no GPU, whatever else is there.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEVICES_GLOB",
    "NO_DEVICES",
    "QUERY",
    "Gpu",
    "GpuInventory",
    "inventory",
    "present",
]

logger = logging.getLogger(__name__)

DEVICES_GLOB: Final = "/dev/nvidia[0-9]*"
# NVIDIA_VISIBLE_DEVICES values with which the NVIDIA container runtime exposes no GPU.
NO_DEVICES: Final = ("", "void", "none")
_FIRST_DEVICE: Final = "/dev/nvidia0"
QUERY: Final = (
    "--query-gpu=index,name,memory.total,driver_version",
    "--format=csv,noheader",
)
_TIMEOUT_S: Final = 10.0
_FIELDS: Final = 4

Runner = Callable[..., subprocess.CompletedProcess[str]]
Which = Callable[..., str | None]


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` names it; ``memory_mib`` is ``None`` when it does not say."""

    index: int
    name: str
    memory_mib: int | None = None

    def describe(self) -> str:
        memory = "memory unknown" if self.memory_mib is None else f"{self.memory_mib} MiB"
        return f"GPU {self.index}: {self.name or 'unknown'}, {memory}"


@dataclass(frozen=True)
class GpuInventory:
    """What the host offers: the GPUs found, the driver, and what hid or spoiled the view.

    ``visible_devices`` is ``NVIDIA_VISIBLE_DEVICES`` as set (``None`` when unset),
    ``device_files`` the ``/dev/nvidiaN`` files, ``nvidia_smi`` its path when on ``PATH``.
    """

    gpus: tuple[Gpu, ...] = ()
    driver: str | None = None
    visible_devices: str | None = None
    device_files: tuple[str, ...] = ()
    nvidia_smi: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def disabled(self) -> bool:
        """``NVIDIA_VISIBLE_DEVICES`` says the runtime exposes no GPU."""
        return _hides_gpus(self.visible_devices)

    @property
    def runtime(self) -> bool:
        """The NVIDIA container runtime (or a driver) is there: device files or nvidia-smi."""
        return not self.disabled and bool(self.device_files or self.nvidia_smi)

    def describe(self) -> list[str]:
        """One line per GPU, or one line saying why there is none, for the job's log."""
        visible = "unset" if self.visible_devices is None else repr(self.visible_devices)
        driver = f", driver {self.driver}" if self.driver else ""
        if self.gpus:
            return [
                f"{gpu.describe()}{driver} (NVIDIA_VISIBLE_DEVICES {visible})" for gpu in self.gpus
            ]
        if self.disabled:
            reason = f"NVIDIA_VISIBLE_DEVICES is {visible}"
        elif not self.runtime:
            reason = "no /dev/nvidia* device and no nvidia-smi on PATH"
        else:
            reason = "; ".join(self.problems) or "nvidia-smi listed none"
        return [f"no GPU: {reason}"]


def present(
    environ: Mapping[str, str],
    *,
    exists: Callable[[str], bool] = os.path.exists,
    which: Which = shutil.which,
) -> bool:
    """Whether the host has NVIDIA GPUs to hand to a container, without running anything.

    ``NVIDIA_VISIBLE_DEVICES`` decides when set (``NO_DEVICES``: no GPU, as the NVIDIA
    container runtime reads it); else ``/dev/nvidia0`` or ``nvidia-smi`` on ``PATH``.
    """
    visible = environ.get("NVIDIA_VISIBLE_DEVICES")
    if visible is not None:
        return not _hides_gpus(visible)
    if exists(_FIRST_DEVICE):
        return True
    return which("nvidia-smi", path=environ.get("PATH", os.defpath)) is not None


def inventory(
    environ: Mapping[str, str],
    *,
    run: Runner = subprocess.run,
    devices_glob: str = DEVICES_GLOB,
    which: Which = shutil.which,
    timeout: float = _TIMEOUT_S,
) -> GpuInventory:
    """Find the GPUs this host exposes; ``run`` and ``which`` stand in for the OS in tests."""
    visible = environ.get("NVIDIA_VISIBLE_DEVICES")
    if _hides_gpus(visible):
        return GpuInventory(visible_devices=visible)
    devices = tuple(sorted(glob.glob(devices_glob), key=_device_number))
    smi = which("nvidia-smi", path=environ.get("PATH"))
    if smi is None:
        if not devices:
            return GpuInventory(visible_devices=visible)
        problem = (
            f"nvidia-smi not found on PATH: {len(devices)} device file(s) "
            f"({', '.join(devices)}), names and memory unknown"
        )
        logger.warning("GPU inventory: %s", problem)
        gpus = tuple(Gpu(_device_number(path), "") for path in devices)
        return GpuInventory(gpus, None, visible, devices, None, (problem,))
    gpus, driver, problems = _query(smi, run, timeout)
    for problem in problems:
        logger.warning("GPU inventory: %s", problem)
    return GpuInventory(gpus, driver, visible, devices, smi, problems)


_Found = tuple[tuple[Gpu, ...], str | None, tuple[str, ...]]


def _query(smi: str, run: Runner, timeout: float) -> _Found:
    command = [smi, *QUERY]
    try:
        done = run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return (), None, (f"{' '.join(command)} did not answer within {timeout:g} s",)
    except (OSError, subprocess.SubprocessError) as exc:
        return (), None, (f"cannot run {smi}: {exc}",)
    if done.returncode != 0:
        said = _first_line(done.stderr) or _first_line(done.stdout) or "no message"
        return (), None, (f"{smi} exited with {done.returncode}: {said}",)
    return _parse(done.stdout)


def _parse(text: str | None) -> _Found:
    gpus: list[Gpu] = []
    drivers: list[str] = []
    problems: list[str] = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < _FIELDS:
            problems.append(f"unexpected nvidia-smi line {line.strip()!r}")
            continue
        # A GPU name may hold a comma; the index comes first, memory and driver last.
        index, name, memory, driver = fields[0], ", ".join(fields[1:-2]), fields[-2], fields[-1]
        try:
            number = int(index)
        except ValueError:
            problems.append(f"unexpected nvidia-smi line {line.strip()!r}")
            continue
        gpus.append(Gpu(number, name, _mebibytes(memory)))
        if driver and driver not in drivers and not _not_available(driver):
            drivers.append(driver)
    return tuple(gpus), ", ".join(drivers) or None, tuple(problems)


def _hides_gpus(visible_devices: str | None) -> bool:
    return visible_devices is not None and visible_devices.strip().lower() in NO_DEVICES


def _mebibytes(text: str) -> int | None:
    """``15360 MiB`` (or ``15360`` with ``nounits``) -> 15360; ``[N/A]`` -> None."""
    number = text.removesuffix("MiB").strip()
    try:
        return int(number)
    except ValueError:
        return None


def _not_available(text: str) -> bool:
    return text.strip("[]").upper() == "N/A"


def _device_number(path: str) -> int:
    digits = "".join(char for char in path.rpartition("/")[2] if char.isdigit())
    return int(digits) if digits else -1


def _first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
