"""Lambda memory sizes, and running processes on this host as if they had one.

A Lambda function's memory size also sets its CPU: Lambda documents one vCPU at 1,769 MB
and six vCPUs at 10,240 MB, the CPU time in proportion to the memory.  ``LambdaSize`` does
that arithmetic; ``InstanceSize`` is a Batch instance type (its vCPUs and memory).  Either
is a ``Size``: ``CgroupLimiter`` gives a process (and the children it starts afterwards)
that CPU share and that memory limit on a Linux host with the cgroup v1 ``cpu`` and
``memory`` hierarchies, so that a function can be measured at a size without deploying it:

    size = LambdaSize(128)
    with CgroupLimiter(size) as limiter:
        limiter.add(process.pid)
        ...
        usage = limiter.usage()   # peak memory, OOM kills, CPU throttling

A process that has to start at full speed (Lambda's init phase: the interpreter's start,
the handler's imports) and be limited only afterwards moves itself in: its parent passes
it ``limiter.handoff()`` (plain JSON data) and, when its init is done, it calls
``enter_cgroup(handoff)``.

Errors (both under ``SupervisorError``):

    SupervisorError
     ├── LambdaSizeError        a memory size Lambda does not allow (128 to 10,240 MB), or
     │                          an instance's vCPUs or memory that are not whole numbers above 0
     └── CgroupUnavailableError  no writable cgroup v1 cpu and memory hierarchy here

Only cgroup v1 is written: a host with the v2 (unified) hierarchy alone is detected and
named in the error.  Inside Lambda itself there is nothing to emulate: the size is real.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from supervisor.errors import SupervisorError

__all__ = [
    "CFS_PERIOD_US",
    "MAX_MEMORY_MB",
    "MIN_MEMORY_MB",
    "ONE_VCPU_MB",
    "CgroupLimiter",
    "CgroupUnavailableError",
    "CgroupUsage",
    "InstanceSize",
    "LambdaSize",
    "LambdaSizeError",
    "Size",
    "available_cpus",
    "enter_cgroup",
    "parse_sizes",
]

MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
ONE_VCPU_MB = 1_769
CFS_PERIOD_US = 100_000
_MIN_QUOTA_US = 1_000  # the kernel refuses a smaller cpu.cfs_quota_us
_MIB = 1 << 20
_GROUP = "serverless-supervisor"
_CONTROLLERS = ("cpu", "memory")
_REMOVE_TRIES = 100  # rmdir of a cgroup whose last task is still exiting: EBUSY briefly


class LambdaSizeError(SupervisorError, ValueError):
    """A memory size that Lambda does not allow, or an instance size that is none."""


class CgroupUnavailableError(SupervisorError):
    """The cgroups needed to emulate a size cannot be created on this host."""


class Size(Protocol):
    """What ``CgroupLimiter`` reads of a size: its memory and its CPU share (``name`` is how
    tables call it)."""

    @property
    def name(self) -> str: ...

    @property
    def memory_mb(self) -> int: ...

    @property
    def memory_bytes(self) -> int: ...

    @property
    def cpu_share(self) -> float: ...

    def quota_us(self, host_cpus: float, period_us: int = CFS_PERIOD_US) -> int: ...

    def capped(self, host_cpus: float) -> bool: ...

    def describe(self, host_cpus: float) -> str: ...


@dataclass(frozen=True)
class LambdaSize:
    """A Lambda memory size and the CPU that Lambda gives it.

    ``cpu_share = memory_mb / 1769``: the CPUs' worth of time a handler call gets
    (0.072 at 128 MB, 1.0 at 1,769 MB, 1.70 at 3,008 MB, 5.79 at 10,240 MB, which Lambda
    spreads over ``vcpus = ceil(cpu_share)`` = 6 vCPUs).  The init phase of a function is
    not limited this way: Lambda runs it at full speed.
    """

    memory_mb: int

    def __post_init__(self) -> None:
        value = self.memory_mb
        if isinstance(value, bool) or not isinstance(value, int):
            raise LambdaSizeError(f"a Lambda memory size is a whole number of MB, got {value!r}")
        if not MIN_MEMORY_MB <= value <= MAX_MEMORY_MB:
            raise LambdaSizeError(
                f"Lambda allows {MIN_MEMORY_MB} to {MAX_MEMORY_MB:,} MB of memory, got {value} MB"
            )

    @property
    def cpu_share(self) -> float:
        """CPUs' worth of time per second: ``memory_mb / 1769``."""
        return self.memory_mb / ONE_VCPU_MB

    @property
    def vcpus(self) -> int:
        """How many vCPUs Lambda spreads that share over."""
        return math.ceil(self.cpu_share)

    @property
    def memory_bytes(self) -> int:
        """The memory limit: Lambda's MB are MiB."""
        return self.memory_mb * _MIB

    @property
    def name(self) -> str:
        """``128 MB``."""
        return f"{self.memory_mb} MB"

    def capped(self, host_cpus: float) -> bool:
        """True when this host has fewer CPUs than the share: the size then gets only the
        host's CPUs, and a measurement at this size must say so."""
        return self.cpu_share > host_cpus

    def quota_us(self, host_cpus: float, period_us: int = CFS_PERIOD_US) -> int:
        """``cpu.cfs_quota_us`` for ``period_us``: the share (the host's CPUs when capped)
        times the period, at least the kernel's 1 ms."""
        return _quota_us(self.cpu_share, host_cpus, period_us)

    def describe(self, host_cpus: float) -> str:
        """``128 MB (7.2% of a CPU)``, ``10240 MB (capped: 2 CPUs, not 5.79)``."""
        if self.capped(host_cpus):
            return f"{self.memory_mb} MB (capped: {host_cpus:g} CPUs, not {self.cpu_share:.2f})"
        if self.cpu_share < 1:
            return f"{self.memory_mb} MB ({self.cpu_share:.1%} of a CPU)"
        return f"{self.memory_mb} MB ({self.cpu_share:.2f} CPUs)"


@dataclass(frozen=True)
class InstanceSize:
    """A Batch instance type: its vCPUs (the CPU share, all of them for the job) and its
    memory in MiB (``m5.large``: 2 vCPUs, 8,192 MiB)."""

    name: str
    vcpus: int
    memory_mib: int

    def __post_init__(self) -> None:
        for what, value in (("vCPUs", self.vcpus), ("memory in MiB", self.memory_mib)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LambdaSizeError(
                    f"instance {self.name}: its {what} are a whole number above 0, got {value!r}"
                )

    @property
    def memory_mb(self) -> int:
        return self.memory_mib

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * _MIB

    @property
    def cpu_share(self) -> float:
        return float(self.vcpus)

    def capped(self, host_cpus: float) -> bool:
        """True when this host has fewer CPUs than the instance."""
        return self.cpu_share > host_cpus

    def quota_us(self, host_cpus: float, period_us: int = CFS_PERIOD_US) -> int:
        """``cpu.cfs_quota_us``: the vCPUs (the host's CPUs when capped) times the period."""
        return _quota_us(self.cpu_share, host_cpus, period_us)

    def describe(self, host_cpus: float) -> str:
        """``m5.large (2 vCPUs, 8192 MiB)``, ``m5.2xlarge (capped: 2 CPUs, not 8)``."""
        if self.capped(host_cpus):
            return f"{self.name} (capped: {host_cpus:g} CPUs, not {self.vcpus})"
        return f"{self.name} ({self.vcpus} vCPUs, {self.memory_mib} MiB)"


def _quota_us(share: float, host_cpus: float, period_us: int) -> int:
    return max(_MIN_QUOTA_US, round(min(share, host_cpus) * period_us))


def parse_sizes(text: str) -> list[LambdaSize]:
    """``"128,512,1769"`` -> the sizes, in that order, each once."""
    sizes: list[LambdaSize] = []
    for item in text.split(","):
        if not item.strip():
            continue
        try:
            size = LambdaSize(int(item.strip().removesuffix("MB").strip()))
        except ValueError as exc:
            if isinstance(exc, LambdaSizeError):
                raise
            raise LambdaSizeError(
                f"expected memory sizes in MB separated by commas, got {item.strip()!r}"
            ) from None
        if size not in sizes:
            sizes.append(size)
    if not sizes:
        raise LambdaSizeError(f"expected memory sizes in MB separated by commas, got {text!r}")
    return sizes


@dataclass(frozen=True)
class CgroupUsage:
    """What the processes of a cgroup used, read from its files."""

    peak_memory_bytes: int  # memory.max_usage_in_bytes
    memory_failures: int  # memory.failcnt: times the limit was hit
    oom_kills: int | None  # memory.oom_control's oom_kill (None: this kernel lacks it)
    cpu_periods: int  # cpu.stat nr_periods
    cpu_throttled_periods: int  # cpu.stat nr_throttled
    cpu_throttled_s: float  # cpu.stat throttled_time

    def oom_killed(self, returncode: int | None = None) -> bool:
        """Whether the OOM killer fired: its counter, or (on a kernel without one) the limit
        hit and ``returncode`` saying the process died of SIGKILL."""
        if self.oom_kills is not None:
            return self.oom_kills > 0
        return self.memory_failures > 0 and returncode == -signal.SIGKILL


class CgroupLimiter:
    """A fresh cgroup v1 pair (``cpu`` and ``memory``) limited to a size (``Size``: a
    Lambda memory size, a Batch instance).

    The cgroups are made under the caller's own (from ``/proc/self/cgroup``), so that limits
    already placed on the caller (a container, a CI job) keep applying:
    ``<root>/<controller>/<own>/serverless-supervisor/<name>``.  ``add(pid)`` moves a process
    in; the children it starts afterwards are born inside.  ``remove()`` moves whatever is
    left back to the caller's cgroup and deletes both (the ``serverless-supervisor`` folder
    stays, empty, as others may be using it).

    Recent kernels no longer move a process's memory charges when it joins (charge moving
    was deprecated, then removed; ``moves_charges`` is then False): the pages it touched
    before stay counted outside.
    ``account_outside(n)`` lowers the limit by ``n`` bytes so that the total stays the size's
    (``enter_cgroup`` does it for a process that moves itself in).
    """

    def __init__(
        self,
        size: Size,
        *,
        root: Path = Path("/sys/fs/cgroup"),
        name: str | None = None,
        host_cpus: float | None = None,
        own_cgroups: Path = Path("/proc/self/cgroup"),
    ) -> None:
        self.size = size
        self.root = root
        self.name = name or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.host_cpus = host_cpus if host_cpus is not None else float(available_cpus())
        self._own_cgroups = own_cgroups
        self.paths: dict[str, Path] = {}
        self._parents: dict[str, Path] = {}
        self.moves_charges = False
        self.period_us = CFS_PERIOD_US

    # -- set-up ----------------------------------------------------------------------

    def create(self) -> CgroupLimiter:
        """Make both cgroups and write the limits; raise ``CgroupUnavailableError``."""
        hierarchies = check_hierarchies(self.root)
        own = _own_paths(self._own_cgroups)
        for controller, hierarchy in hierarchies.items():
            parent = hierarchy / own.get(controller, "").lstrip("/")
            if not parent.is_dir():  # a cgroup namespace shows another root: use the top
                parent = hierarchy
            self._parents[controller] = parent
            path = parent / _GROUP / self.name
            try:
                path.mkdir(parents=True)
            except OSError as exc:
                self.remove()
                raise _unavailable(path, exc) from exc
            self.paths[controller] = path
        try:
            self._write_limits()
        except OSError as exc:
            self.remove()
            raise CgroupUnavailableError(
                f"cannot set the limits of {self.size.describe(self.host_cpus)} in "
                f"{self.paths}: {exc}"
            ) from exc
        return self

    def _write_limits(self) -> None:
        cpu, memory = self.paths["cpu"], self.paths["memory"]
        self.period_us = int(_read(cpu / "cpu.cfs_period_us") or CFS_PERIOD_US)
        _write(cpu / "cpu.cfs_quota_us", self.size.quota_us(self.host_cpus, self.period_us))
        _write(memory / "memory.limit_in_bytes", self.size.memory_bytes)
        if (memory / "memory.memsw.limit_in_bytes").exists():  # swap must not hide an OOM
            _write(memory / "memory.memsw.limit_in_bytes", self.size.memory_bytes)
        try:
            _write(memory / "memory.move_charge_at_immigrate", 3)  # anonymous + file pages
            self.moves_charges = True
        except OSError:
            self.moves_charges = False

    def __enter__(self) -> CgroupLimiter:
        return self.create()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()

    # -- use -------------------------------------------------------------------------

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files: a process writes its pid to each to move itself in."""
        return [self.paths[c] / "cgroup.procs" for c in _CONTROLLERS]

    @property
    def memory_limit_file(self) -> Path:
        return self.paths["memory"] / "memory.limit_in_bytes"

    def handoff(self) -> dict[str, Any]:
        """What a process needs to move itself in with ``enter_cgroup``, as JSON data:
        ``procs`` (the ``cgroup.procs`` files), ``memory_limit_file``, ``memory_bytes`` (the
        size's limit) and ``moves_charges``."""
        return {
            "procs": [str(path) for path in self.procs_files],
            "memory_limit_file": str(self.memory_limit_file),
            "memory_bytes": self.size.memory_bytes,
            "moves_charges": self.moves_charges,
        }

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into both cgroups."""
        for procs in self.procs_files:
            _write(procs, pid)

    def account_outside(self, charged_bytes: int) -> None:
        """Lower the memory limit by what a process moved in still has charged outside."""
        if not self.moves_charges and charged_bytes > 0:
            _write(self.memory_limit_file, max(_MIB, self.size.memory_bytes - charged_bytes))

    def reset_peak(self) -> None:
        """Start ``peak_memory_bytes`` again from the current usage."""
        _write(self.paths["memory"] / "memory.max_usage_in_bytes", 0)

    def pids(self) -> list[int]:
        """The processes in the cgroups now."""
        found: set[int] = set()
        for path in self.paths.values():
            found.update(int(item) for item in (_read(path / "cgroup.procs") or "").split())
        return sorted(found)

    def usage(self) -> CgroupUsage:
        memory, cpu = self.paths["memory"], self.paths["cpu"]
        oom = _fields(_read(memory / "memory.oom_control"))
        stat = _fields(_read(cpu / "cpu.stat"))
        return CgroupUsage(
            peak_memory_bytes=int(_read(memory / "memory.max_usage_in_bytes") or 0),
            memory_failures=int(_read(memory / "memory.failcnt") or 0),
            oom_kills=oom.get("oom_kill"),
            cpu_periods=stat.get("nr_periods", 0),
            cpu_throttled_periods=stat.get("nr_throttled", 0),
            cpu_throttled_s=stat.get("throttled_time", 0) / 1e9,
        )

    # -- tear-down -------------------------------------------------------------------

    def remove(self) -> None:
        """Move the processes left back to the caller's cgroups, delete both cgroups."""
        for controller, path in list(self.paths.items()):
            _remove(path, self._parents[controller] / "cgroup.procs")
            del self.paths[controller]


def enter_cgroup(handoff: dict[str, Any]) -> dict[str, Any]:
    """Move this process into the cgroups of ``handoff`` (``CgroupLimiter.handoff()``).

    Where the kernel does not move memory charges along (``moves_charges`` false), the
    process's RSS stays charged outside: the memory limit is lowered by it, so that the
    total is still the size's.  Returns ``rss_at_move_bytes`` (that RSS) and
    ``moves_charges``; a peak read from the cgroup adds the RSS back when charges stay out.
    """
    for path in handoff["procs"]:
        _write(Path(path), os.getpid())
    rss = _rss_bytes()
    moves = bool(handoff["moves_charges"])
    if not moves:
        limit = max(_MIB, int(handoff["memory_bytes"]) - rss)
        _write(Path(handoff["memory_limit_file"]), limit)
    return {"rss_at_move_bytes": rss, "moves_charges": moves}


def _rss_bytes() -> int:
    """This process's resident set (``VmRSS`` of ``/proc/self/status``)."""
    for line in (_read(Path("/proc/self/status")) or "").splitlines():
        name, _, rest = line.partition(":")
        if name == "VmRSS":
            return int(rest.split()[0]) * 1024
    return 0


def _remove(path: Path, parent_procs: Path) -> None:
    """Empty the cgroup ``path`` into ``parent_procs``, then delete it."""
    for _ in range(_REMOVE_TRIES):
        for pid in (_read(path / "cgroup.procs") or "").split():
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                _write(parent_procs, pid)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.01)
    raise CgroupUnavailableError(f"cannot remove {path}: processes keep it busy")


def check_hierarchies(root: Path = Path("/sys/fs/cgroup")) -> dict[str, Path]:
    """The v1 ``cpu`` and ``memory`` hierarchies under ``root``, or the error saying which
    is missing (and whether this host has cgroup v2 alone)."""
    found: dict[str, Path] = {}
    probes = {"cpu": "cpu.cfs_quota_us", "memory": "memory.limit_in_bytes"}
    for controller, probe in probes.items():
        hierarchy = root / controller
        if not (hierarchy / probe).is_file():
            raise CgroupUnavailableError(_missing(root, controller, probe))
        found[controller] = hierarchy
    return found


def _missing(root: Path, controller: str, probe: str) -> str:
    if (root / "cgroup.controllers").is_file():
        return (
            f"{root} is a cgroup v2 (unified) hierarchy alone; emulating a Lambda size needs "
            "the cgroup v1 cpu and memory hierarchies: run on a host with cgroup v1 (for "
            "systemd, boot with systemd.unified_cgroup_hierarchy=0)"
        )
    return (
        f"no cgroup v1 {controller} hierarchy at {root / controller} (no {probe}); emulating "
        "a Lambda size needs the cgroup v1 cpu and memory hierarchies mounted there, on Linux, "
        "outside Lambda"
    )


def _unavailable(path: Path, exc: OSError) -> CgroupUnavailableError:
    if exc.errno in (errno.EACCES, errno.EPERM):
        advice = "run as root, or give this user a cgroup of its own to create cgroups in"
    elif exc.errno == errno.EROFS:
        advice = "the cgroup file system is read-only (in a container: run it privileged)"
    else:
        advice = "check that the cgroup v1 cpu and memory hierarchies are writable"
    return CgroupUnavailableError(f"cannot create the cgroup {path}: {exc.strerror}; {advice}")


def _own_paths(own_cgroups: Path) -> dict[str, str]:
    """Controller -> the caller's cgroup path in that v1 hierarchy."""
    paths: dict[str, str] = {}
    text = _read(own_cgroups) or ""
    for line in text.splitlines():
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        for controller in controllers.split(","):
            if controller in _CONTROLLERS:
                paths[controller] = path
    return paths


def available_cpus() -> int:
    """The CPUs this process may run on: what a size's share is capped to."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _fields(text: str | None) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            fields[key] = int(value)
    return fields


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _write(path: Path, value: int | str) -> None:
    # One write(2) per value, as the cgroup files expect.
    with open(path, "w") as handle:
        handle.write(str(value))
