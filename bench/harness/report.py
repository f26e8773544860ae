"""What a run reports: statistics, the rows of the table, the machine, the table itself."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.settings import THEIRS_VERSION, Impl


@dataclass
class Row:
    case: str
    metric: str
    unit: str
    ours: float | str | None
    theirs: float | str | None = None
    ratio: float | None = None
    reference: float | str | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Results:
    machine: dict[str, Any]
    settings: dict[str, Any]
    cases: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    # Under --lambda-memory: per size ("128_mb"), the size, its cases and its cgroups.
    lambda_memory: dict[str, Any] = field(default_factory=dict)

    def row(
        self, case: str, metric: str, unit: str, ours: Any, theirs: Any = None, **more: Any
    ) -> None:
        if "ratio" not in more:
            more["ratio"] = ratio(ours, theirs)
        self.rows.append(Row(case, metric, unit, ours, theirs, **more))

    def jobs_row(self, case: str, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
        def cell(data: dict[str, Any]) -> str | None:
            if "jobs" not in data:
                return None
            return f"{data['jobs_verified']}/{data['jobs']}"

        o, t = cell(ours), cell(theirs)
        met = None if o is None else ours["jobs_verified"] == ours["jobs"] > 0
        self.row(case, "jobs found on the server with the event", "", o, t, goal="all", met=met)

    def latency_rows(self, case: str, data: dict[str, Any], what: str) -> None:
        ours, theirs = data.get("ours", {}), data.get("theirs", {})
        o, t = scaled(ours.get("median_s"), 1000.0), scaled(theirs.get("median_s"), 1000.0)
        self.row(
            case, f"{what}: median", "ms", o, t, goal="<= 0.5x theirs", met=le(ratio(o, t), 0.5)
        )
        o, t = scaled(ours.get("p90_s"), 1000.0), scaled(theirs.get("p90_s"), 1000.0)
        self.row(case, f"{what}: p90", "ms", o, t)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))])


def ratio(ours: Any, theirs: Any) -> float | None:
    if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs:
        return float(ours) / float(theirs)
    return None


def scaled(value: Any, factor: float) -> float | None:
    return None if not isinstance(value, int | float) else float(value) * factor


def le(value: Any, limit: float) -> bool | None:
    return None if not isinstance(value, int | float) else value <= limit


def ge(value: Any, limit: float) -> bool | None:
    return None if not isinstance(value, int | float) else value >= limit


def machine_info(impls: list[Impl]) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    with suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    pythons = {}
    for impl in impls:
        done = subprocess.run(
            [
                impl.python,
                "-c",
                "import sys, boto3; print(sys.version.split()[0], boto3.__version__)",
            ],
            capture_output=True,
            text=True,
        )
        version, _, sdk = done.stdout.strip().partition(" ")
        pythons[impl.name] = {
            "python": version,
            "boto3": sdk,
            "interpreter": impl.python,
            "started_with": "-S, PYTHONPATH" if impl.path else "site",
        }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "system": platform.platform(),
        "moto": metadata.version("moto"),
        "implementations": pythons,
        "theirs_version": THEIRS_VERSION if any(i.name == "theirs" for i in impls) else None,
    }


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("", "files/s", "MiB/s", "MiB") or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif unit == "s":
        text = f"{value:.2f}"
    else:
        text = f"{value:.1f}"
    return f"{text} {unit}" if unit not in ("", "x") else text


def table(rows: list[Row]) -> str:
    header = ("case", "metric", "ours", "theirs", "ours/theirs", "raw boto3", "goal", "met")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.case,
                row.metric,
                _cell(row.ours, row.unit),
                _cell(row.theirs, row.unit),
                "" if row.ratio is None else f"{row.ratio:.2f}x",
                "" if row.reference is None else _cell(row.reference, row.unit),
                row.goal,
                "" if row.met is None else ("yes" if row.met else "NO"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    previous = ""
    for index, line in enumerate(lines):
        cells = list(line)
        if index and cells[0] == previous:
            cells[0] = ""
        else:
            previous = cells[0]
        out.append(
            "  ".join(
                cell.ljust(width) if i < 2 or i > 5 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)
