"""What ``tune`` measures: plain data shared by its modules and written to ``tune.json``.

A *target* is where runs are measured: a Lambda memory size, or the Batch instance that
would run the function's jobs.  A *run* is one invocation of the function's script on one
sample input at one target, through the supervisor's pipeline; a *measurement* is all the
runs at one target.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "RUN_STATUSES",
    "Measurement",
    "Run",
    "RunStatus",
    "Sample",
    "Target",
    "TargetKind",
    "samples_by_size",
]

# ok: the invocation succeeded; failed: the script exited non-zero or the pipeline failed;
# oom: killed by the memory limit; timeout: killed by the watchdog at the timeout less the
# reserve.
RunStatus = Literal["ok", "failed", "oom", "timeout"]
RUN_STATUSES: tuple[RunStatus, ...] = ("ok", "failed", "oom", "timeout")
TargetKind = Literal["lambda", "batch"]
_MIB = 1 << 20


@dataclass(frozen=True)
class Sample:
    """A sample input file: ``name`` is how tables and tune.json call it."""

    path: Path
    name: str
    size_bytes: int

    @classmethod
    def of(cls, path: Path) -> Sample:
        return cls(path=path, name=path.name, size_bytes=path.stat().st_size)

    @property
    def size_mb(self) -> float:
        return self.size_bytes / _MIB


@dataclass(frozen=True)
class Target:
    """Where runs are measured.

    ``cpu_share`` is the CPUs' worth of time the target would get (Lambda: memory / 1,769 MB;
    Batch: the instance's vCPUs); ``cpus_given`` what this host could give (less when
    ``capped``: then durations are upper bounds, never reported as measured at the share).
    """

    kind: TargetKind
    name: str  # "1024 MB", "m5.large"
    memory_mb: int
    cpu_share: float
    cpus_given: float
    capped: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Run:
    """One invocation: its status, the handler's duration (what Lambda bills, the
    interpreter's start and the definition's loading excluded) and the peak memory of
    everything in the cgroup (the supervisor and the script)."""

    sample: str
    input_bytes: int
    status: RunStatus
    duration_s: float
    peak_memory_mb: float
    detail: str = ""  # one line: why a run that is not ok ended as it did

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        return cls(**data)


@dataclass(frozen=True)
class Measurement:
    """All the runs at one target, with the figures the report and the advice read."""

    target: Target
    runs: tuple[Run, ...]

    def of_sample(self, sample: str) -> tuple[Run, ...]:
        return tuple(run for run in self.runs if run.sample == sample)

    def ok_runs(self, sample: str | None = None) -> tuple[Run, ...]:
        runs = self.runs if sample is None else self.of_sample(sample)
        return tuple(run for run in runs if run.status == "ok")

    def status(self, sample: str | None = None) -> RunStatus:
        """The worst status of the runs (of ``sample``): oom, then timeout, then failed."""
        runs = self.runs if sample is None else self.of_sample(sample)
        found = {run.status for run in runs}
        for status in ("oom", "timeout", "failed"):
            if status in found:
                return status
        return "ok"

    def median_s(self, sample: str) -> float | None:
        """The median duration of the sample's runs that ended ok, or None."""
        durations = [run.duration_s for run in self.ok_runs(sample)]
        return statistics.median(durations) if durations else None

    def spread_s(self, sample: str) -> tuple[float, float] | None:
        """The shortest and longest duration of the sample's runs that ended ok."""
        durations = [run.duration_s for run in self.ok_runs(sample)]
        return (min(durations), max(durations)) if durations else None

    def peak_memory_mb(self) -> float:
        return max((run.peak_memory_mb for run in self.runs), default=0.0)

    def points(self) -> list[tuple[int, float]]:
        """(input bytes, median duration) of each sample whose runs ended ok: what the fit
        of duration against input size reads."""
        samples: dict[str, int] = {}
        for run in self.runs:
            samples.setdefault(run.sample, run.input_bytes)
        found = []
        for sample, size in samples.items():
            median = self.median_s(sample)
            if median is not None:
                found.append((size, median))
        return sorted(found)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target.to_json(), "runs": [run.to_json() for run in self.runs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            target=Target(**data["target"]),
            runs=tuple(Run.from_json(run) for run in data["runs"]),
        )


def samples_by_size(samples: Iterable[Sample]) -> list[Sample]:
    """The samples, smallest first (the name breaking ties)."""
    return sorted(samples, key=lambda sample: (sample.size_bytes, sample.name))
