"""What ``tune`` prints and writes: the table per memory size, the Batch estimate, the
recommendation, and ``tune.json`` (which ``chart`` draws)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor import __version__
from supervisor.lambda_sizes import LambdaSize
from supervisor.tune.advice import Advice, Budget, SizeFigures
from supervisor.tune.model import Measurement, Sample
from supervisor.tune.prices import Instance, Prices, batch_cost

__all__ = ["Tuning", "lines", "tune_json", "write_json"]

_MIB = 1 << 20


@dataclass(frozen=True)
class Tuning:
    """Everything one tuning run found, for the table and tune.json."""

    function: str
    definition: Path
    samples: tuple[Sample, ...]
    runs: int
    prices: Prices
    architecture: str
    budget: Budget
    typical_bytes: int
    largest_bytes: int
    gpu: bool
    measurements: tuple[Measurement, ...]  # the Lambda sizes, in the order asked
    batch: Measurement | None  # the Batch instance, when measured
    instance: Instance
    advice: Advice
    host_cpus: int
    script_user: str | None  # who runs the script (None: tune's own user)

    def figures(self, memory_mb: int) -> SizeFigures | None:
        return next((f for f in self.advice.figures if f.memory_mb == memory_mb), None)


def tune_json(tuning: Tuning) -> dict[str, Any]:
    """The tune.json document."""
    budget = tuning.budget
    return {
        "tool": f"serverless-supervisor {__version__}",
        "function": tuning.function,
        "definition": str(tuning.definition),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"cpus": tuning.host_cpus, "cpu": _cpu_model()},
        "prices": {
            "date": tuning.prices.date,
            "region": tuning.prices.region,
            "source": tuning.prices.source,
        },
        "architecture": tuning.architecture,
        "timeout_s": budget.timeout_s,
        "reserve_s": budget.reserve_s,
        "margin": budget.margin,
        "budget_s": budget.budget_s,
        "runs_per_input": tuning.runs,
        "script_user": tuning.script_user,
        "samples": [{"name": s.name, "bytes": s.size_bytes} for s in tuning.samples],
        "typical_bytes": tuning.typical_bytes,
        "largest_bytes": tuning.largest_bytes,
        "gpu": {
            "asked": tuning.gpu,
            "measured": not tuning.gpu,
            "note": _GPU_NOTE if tuning.gpu else "",
        },
        "sizes": [_size_json(tuning, m) for m in tuning.measurements],
        "batch": _batch_json(tuning),
        "recommendation": tuning.advice.to_json(),
    }


_GPU_NOTE = (
    "the function asks for a GPU (batch.enable_gpu), which Lambda does not have: it runs in "
    "Batch, and was not measured at Lambda's sizes"
)


def _size_json(tuning: Tuning, measurement: Measurement) -> dict[str, Any]:
    target = measurement.target
    figures = tuning.figures(target.memory_mb)
    data: dict[str, Any] = {
        "memory_mb": target.memory_mb,
        "name": target.name,
        "cpu_share": round(target.cpu_share, 4),
        "cpus_given": round(target.cpus_given, 4),
        "capped": target.capped,
        "label": LambdaSize(target.memory_mb).describe(tuning.host_cpus),
    }
    if figures is not None:
        data.update(figures.to_json())
    data["runs"] = [run.to_json() for run in measurement.runs]
    return data


def _batch_json(tuning: Tuning) -> dict[str, Any] | None:
    measurement, instance = tuning.batch, tuning.instance
    if measurement is None:
        return None
    typical = _typical_sample(tuning)
    median = measurement.median_s(typical.name) if typical else None
    cost = batch_cost(tuning.prices, instance, median) if median is not None else None
    return {
        "instance": instance.name,
        "vcpus": instance.vcpus,
        "memory_mib": instance.memory_mib,
        "gpus": instance.gpus,
        "usd_per_hour": instance.usd_per_hour,
        "capped": measurement.target.capped,
        "cpus_given": round(measurement.target.cpus_given, 4),
        "status": measurement.status(),
        "typical_s": median,
        "billed_s": None if cost is None else cost.billed_s,
        "cost_usd": None if cost is None else cost.usd,
        "pending_s": tuning.prices.pending_s,
        "runs": [run.to_json() for run in measurement.runs],
    }


def _typical_sample(tuning: Tuning) -> Sample | None:
    return next((s for s in tuning.samples if s.size_bytes == tuning.typical_bytes), None)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the printed report -------------------------------------------------------------------


def lines(tuning: Tuning) -> list[str]:
    """The report a person reads: what was measured, the table, Batch, the advice."""
    out = _heading(tuning)
    if tuning.gpu:
        out += ["", f"not measured: {_GPU_NOTE}."]
    else:
        out += ["", *_table(tuning)]
        out += _notes(tuning)
        out += _batch_lines(tuning)
    advice = tuning.advice
    memory = "" if advice.memory_mb is None else f" at {advice.memory_mb} MB"
    out += ["", f"recommendation ({advice.strategy}): {advice.execution_mode}{memory}"]
    out.append(f"  {advice.reason}")
    return out


def _heading(tuning: Tuning) -> list[str]:
    samples = ", ".join(f"{s.name} ({_mb(s.size_bytes)})" for s in tuning.samples)
    budget = tuning.budget
    return [
        f"tune {tuning.function}: {len(tuning.samples)} input(s): {samples}; "
        f"{tuning.runs} run(s) each",
        f"typical input {_mb(tuning.typical_bytes)}, largest {_mb(tuning.largest_bytes)}; "
        f"a run must end within {budget.budget_s:g} s (the {budget.timeout_s:g} s timeout less "
        f"the {budget.reserve_s:g} s reserve, less a {budget.margin:.0%} margin)",
        f"host: {tuning.host_cpus} CPUs ({_cpu_model()}); prices of {tuning.prices.date} "
        f"({tuning.prices.region}), {tuning.architecture}; the script runs as "
        f"{tuning.script_user or 'this user'}",
    ]


def _table(tuning: Tuning) -> list[str]:
    names = [s.name for s in tuning.samples]
    header = ["memory", "CPU", *[f"{n} median (min-max)" for n in names]]
    header += ["peak MiB", "status", "$/call x86_64", "$/call arm64", "15 min from"]
    rows = [header]
    for measurement in tuning.measurements:
        rows.append(_row(tuning, measurement, names))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _row(tuning: Tuning, measurement: Measurement, names: Sequence[str]) -> list[str]:
    target = measurement.target
    figures = tuning.figures(target.memory_mb)
    cpu = (
        f"capped: {target.cpus_given:g} of {target.cpu_share:.2f} CPUs"
        if target.capped
        else f"{target.cpu_share:.1%} of a CPU"
        if target.cpu_share < 1
        else f"{target.cpu_share:.2f} CPUs"
    )
    cells = [target.name, cpu]
    for name in names:
        median, spread = measurement.median_s(name), measurement.spread_s(name)
        if median is None or spread is None:
            cells.append(measurement.status(name))
        elif len(measurement.ok_runs(name)) == 1:
            cells.append(_s(median))
        else:
            low, high = (_s(value).removesuffix(" s") for value in spread)
            cells.append(f"{_s(median)} ({low}-{high})")
    cells.append(f"{measurement.peak_memory_mb():.0f}")
    cells.append(measurement.status())
    cost = figures.cost_usd if figures else None
    for architecture in ("x86_64", "arm64"):
        cells.append("-" if not cost else f"${cost[architecture]:.7f}")
    at_15 = figures.input_bytes_at_15_min if figures else None
    cells.append("-" if at_15 is None else _mb(int(at_15)))
    return cells


def _notes(tuning: Tuning) -> list[str]:
    out = []
    if any(m.target.capped for m in tuning.measurements):
        out.append(
            f"capped: this host has {tuning.host_cpus} CPUs, fewer than Lambda gives those "
            "sizes: their durations are upper bounds, and they are never recommended"
        )
    if any(f.fit is not None for f in tuning.advice.figures):
        out.append(
            "15 min from: the input size from which a run would pass Lambda's 15 minutes, by "
            "the line fitted to duration against input size at that memory size"
        )
    if any(f.typical_predicted for f in tuning.advice.figures):
        out.append("typical durations not measured are predicted by the fit against input size")
    return out


def _batch_lines(tuning: Tuning) -> list[str]:
    batch = _batch_json(tuning)
    if batch is None:
        return []
    instance = tuning.instance
    shape = f"{instance.vcpus} vCPUs, {instance.memory_mib / 1024:g} GiB"
    if batch["capped"]:
        shape += f", capped to {batch['cpus_given']:g} CPUs here"
    pending = batch["pending_s"]
    waiting = ", ".join(f"{how.replace('_', ' ')}: about {s:g} s" for how, s in pending.items())
    if batch["typical_s"] is None:
        return ["", f"Batch on {instance.name} ({shape}): {batch['status']}"]
    return [
        "",
        f"Batch on {instance.name} ({shape}): {_s(batch['typical_s'])} for the typical input, "
        f"${batch['cost_usd']:.5f} per job (billed {batch['billed_s']:g} s at "
        f"${instance.usd_per_hour:g}/hour: per-second billing, "
        f"{tuning.prices.batch_minimum_s:g} s minimum); pending before it runs: {waiting}",
    ]


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _mb(size: int) -> str:
    if size < _MIB // 10:
        return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"
    return f"{size / _MIB:.1f} MB" if size < 10 * _MIB else f"{size / _MIB:,.0f} MB"


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write tune.json (atomically: a reader never sees half of it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
