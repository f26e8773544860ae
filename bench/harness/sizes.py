"""Running the cases at Lambda memory sizes (``--lambda-memory``): one pass per size.

Each driver of a pass gets a fresh cgroup v1 of the size (``supervisor.lambda_sizes``),
made by the runner, into which the driver moves itself after its init phase
(``drivers.drive``).  The rows of a pass carry the size in their case label, with
"capped" when this host has fewer CPUs than the size's share; its results go to
``results.lambda_memory["<MB>_mb"]``, with its rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from supervisor.lambda_sizes import CgroupLimiter, CgroupUnavailableError, LambdaSize

if TYPE_CHECKING:
    from harness.session import Bench

SIZE_NOTES = (
    "--lambda-memory: each driver imports its handler module at full speed (the init "
    "phase; its time is the init duration, without the interpreter's start, as Lambda "
    "counts it), then moves itself into a cgroup v1 with the size's CPU share (memory / "
    "1,769 MB of one CPU) and memory limit; every handler call and script runs inside.",
)
CHARGES_NOTE = (
    "this kernel does not move memory charges with a process: the pages a driver touched "
    "during its init stay charged outside its cgroup, so the driver lowers the cgroup's limit "
    "by its RSS when it moves in, and the peak memory rows add that RSS back."
)


def cgroup_problem(size: LambdaSize) -> str | None:
    """Why a cgroup of ``size`` cannot be made here, or None (one is made and removed)."""
    try:
        CgroupLimiter(size).create().remove()
    except CgroupUnavailableError as exc:
        return str(exc)
    return None


def size_notes(size: LambdaSize) -> list[str]:
    """The notes of a run at Lambda sizes (``size``: one of them, to ask the kernel)."""
    with CgroupLimiter(size) as limiter:
        moves = limiter.moves_charges
    return [*SIZE_NOTES] if moves else [*SIZE_NOTES, CHARGES_NOTE]


def run_at_size(
    bench: Bench,
    size: LambdaSize,
    numbers: list[int],
    run_case: Callable[[Bench, int], bool],
) -> bool:
    """The cases ``numbers`` at ``size``; True when one of them failed as a whole."""
    host_cpus = CgroupLimiter(size).host_cpus
    bench.size = size
    bench.results.cases = {}
    first_row, first_cgroup = len(bench.results.rows), len(bench.cgroups)
    failed = False
    try:
        for number in numbers:
            rows, cgroups = len(bench.results.rows), len(bench.cgroups)
            failed = run_case(bench, number) or failed
            label = bench.results.rows[-1].case if len(bench.results.rows) > rows else f"{number}"
            _cgroup_rows(bench, label, bench.cgroups[cgroups:])
    finally:
        bench.size = None
    for row in bench.results.rows[first_row:]:
        row.case = f"{row.case} @ {size.describe(host_cpus)}"
        if "raw" in row.goal:  # the raw side runs in the runner, at full CPU
            row.goal, row.met = "", None
    bench.results.lambda_memory[f"{size.memory_mb}_mb"] = {
        "memory_mb": size.memory_mb,
        "cpu_share": size.cpu_share,
        "host_cpus": host_cpus,
        "capped": size.capped(host_cpus),
        "cfs_quota_us": size.quota_us(host_cpus),
        "memory_limit_bytes": size.memory_bytes,
        "cases": bench.results.cases,
        "cgroups": bench.cgroups[first_cgroup:],
        "rows": [asdict(row) for row in bench.results.rows[first_row:]],
    }
    bench.results.cases = {}
    return failed


def _cgroup_rows(bench: Bench, case: str, cgroups: list[dict[str, Any]]) -> None:
    """Per implementation: the largest peak memory of its drivers, and the OOM kills."""
    peaks: dict[str, float | None] = {}
    kills: dict[str, str | None] = {}
    for name in ("ours", "theirs"):
        mine = [entry for entry in cgroups if entry["impl"] == name]
        peaks[name] = max((e["peak_memory_mib"] for e in mine), default=None)
        killed = sum(1 for entry in mine if entry["oom_killed"])
        kills[name] = f"{killed}/{len(mine)}" if mine else None
    bench.results.row(
        case, "peak memory of a driver and its scripts", "MiB", peaks["ours"], peaks["theirs"]
    )
    bench.results.row(
        case,
        "runs with an OOM kill",
        "",
        kills["ours"],
        kills["theirs"],
        goal="0",
        met=_none(kills),
    )


def _none(kills: dict[str, str | None]) -> bool | None:
    ours = kills.get("ours")
    return None if ours is None else ours.startswith("0/")
