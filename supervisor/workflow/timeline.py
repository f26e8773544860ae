"""The record of a workflow run: every invocation, where it ran and when.

An invocation is triggered by an object landing in a function's input folder; it waits
for a free Lambda slot (``queued``), runs in Lambda (``lambda``), and, when handed to
Batch, waits in the job queue (``batch-pending``) and runs there (``batch-running``).
Times are seconds since the run started.  ``Timeline`` writes that as JSON, as a summary
per function for a person, and as a chart drawn like Figure 8 of the paper this runtime
comes from (one bar per invocation, Lambda and Batch side by side), with matplotlib.
"""

from __future__ import annotations

import json
import statistics
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Invocation", "Phase", "Timeline"]

Phase = Literal["queued", "lambda", "batch-pending", "batch-running"]
PHASES: tuple[Phase, ...] = ("queued", "lambda", "batch-pending", "batch-running")

# Lambda bars take the function's colour; Batch is blue while pending, yellow while running,
# as in the paper's Figure 8.
_FUNCTION_COLOURS = ("#7b3294", "#1b9e77", "#d95f02", "#e7298a", "#66a61e", "#a6761d")
_QUEUED, _PENDING, _RUNNING = "#d9d9d9", "#2c7bb6", "#fdd835"


@dataclass
class Invocation:
    """One invocation of one function for one object."""

    number: int
    function: str
    mode: str
    bucket: str
    key: str
    triggered: float
    request_id: str = ""
    status: str = "queued"  # queued, running, succeeded, delegated, failed
    lambda_start: float | None = None
    lambda_end: float | None = None
    job_id: str | None = None
    job_status: str = ""  # RUNNABLE, RUNNING, SUCCEEDED, FAILED
    batch_submitted: float | None = None
    batch_started: float | None = None
    batch_ended: float | None = None
    exit_code: int | None = None
    gpu: bool = False
    uploaded: list[str] = field(default_factory=list)
    error: str = ""
    log: str = ""
    job_log: str = ""

    @property
    def where(self) -> str:
        if self.job_id is None:
            return "lambda"
        return "batch" if self.mode == "batch" else "lambda, then batch"

    @property
    def finished(self) -> bool:
        if self.status in ("queued", "running"):
            return False
        return self.job_id is None or self.job_status in ("SUCCEEDED", "FAILED")

    @property
    def failed(self) -> bool:
        return self.status == "failed" or self.job_status == "FAILED"

    @property
    def ended(self) -> float | None:
        return self.batch_ended if self.job_id is not None else self.lambda_end

    def phases(self, now: float) -> list[tuple[Phase, float, float]]:
        """The phases it went through, as (phase, start, end); an open phase ends ``now``."""
        spans: list[tuple[Phase, float, float]] = []
        bounds: tuple[tuple[Phase, float | None, float | None], ...] = (
            ("queued", self.triggered, self.lambda_start),
            ("lambda", self.lambda_start, self.lambda_end),
            ("batch-pending", self.batch_submitted, self.batch_started),
            ("batch-running", self.batch_started, self.batch_ended),
        )
        for phase, start, end in bounds:
            if start is None:
                continue
            if end is None:
                # A job stopped before it ran was pending until it was stopped.
                end = self.batch_ended if phase == "batch-pending" and self.batch_ended else now
            spans.append((phase, start, max(start, end)))
        return spans

    def to_dict(self, now: float) -> dict[str, Any]:
        data = {
            name: round(value, 3) if isinstance(value, float) else value
            for name, value in asdict(self).items()
        }
        data["where"] = self.where
        data["phases"] = [
            {"phase": phase, "start": round(start, 3), "end": round(end, 3)}
            for phase, start, end in self.phases(now)
        ]
        return data


@dataclass
class FunctionSummary:
    function: str
    invocations: int = 0
    in_lambda: int = 0
    in_batch: int = 0
    failed: int = 0
    lambda_s: list[float] = field(default_factory=list)
    pending_s: list[float] = field(default_factory=list)
    running_s: list[float] = field(default_factory=list)


class Timeline:
    """The invocations of a run, added and updated from the runner's threads."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self._invocations: list[Invocation] = []
        self._lock = threading.Lock()

    def add(self, **fields: Any) -> Invocation:
        with self._lock:
            invocation = Invocation(number=len(self._invocations) + 1, **fields)
            self._invocations.append(invocation)
            return invocation

    @property
    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    def _names(self, functions: Iterable[str]) -> list[str]:
        """``functions`` in their order, then any other function that was invoked."""
        return list(dict.fromkeys([*functions, *(item.function for item in self.invocations)]))

    def summaries(self, functions: Iterable[str]) -> list[FunctionSummary]:
        table = {name: FunctionSummary(name) for name in functions}
        for item in self.invocations:
            summary = table.setdefault(item.function, FunctionSummary(item.function))
            summary.invocations += 1
            summary.failed += item.failed
            if item.job_id is None:
                summary.in_lambda += item.status == "succeeded"
            else:
                summary.in_batch += 1
            if item.lambda_start is not None and item.lambda_end is not None:
                summary.lambda_s.append(item.lambda_end - item.lambda_start)
            if item.batch_submitted is not None and item.batch_started is not None:
                summary.pending_s.append(item.batch_started - item.batch_submitted)
            if item.batch_started is not None and item.batch_ended is not None:
                summary.running_s.append(item.batch_ended - item.batch_started)
        return list(table.values())

    def figures(self, functions: Iterable[str]) -> dict[str, Any]:
        """The run in numbers: per function where its invocations ran and for how long
        (means and maxima, seconds), and how many ran at once."""
        items = self.invocations
        lambda_spans = [
            (item.lambda_start, item.lambda_end)
            for item in items
            if item.lambda_start is not None and item.lambda_end is not None
        ]
        ends = [end for item in items if (end := item.ended) is not None]
        result: dict[str, Any] = {
            "lambda_max_running": _most_at_once(lambda_spans),
            "span_s": round(max(ends) - min(item.triggered for item in items), 3) if ends else 0.0,
            "functions": {},
        }
        for summary in self.summaries(functions):
            running = [
                (item.batch_started, item.batch_ended)
                for item in items
                if item.function == summary.function
                and item.batch_started is not None
                and item.batch_ended is not None
            ]
            result["functions"][summary.function] = {
                "invocations": summary.invocations,
                "in_lambda": summary.in_lambda,
                "in_batch": summary.in_batch,
                "failed": summary.failed,
                "lambda_mean_s": _mean(summary.lambda_s),
                "lambda_max_s": _max(summary.lambda_s),
                "batch_pending_mean_s": _mean(summary.pending_s),
                "batch_pending_max_s": _max(summary.pending_s),
                "batch_running_mean_s": _mean(summary.running_s),
                "batch_running_max_s": _max(summary.running_s),
                "batch_max_running": _most_at_once(running),
            }
        return result

    def report(self, functions: Sequence[str]) -> str:
        """A table per function for a person, then every failure with its error and log."""
        lines = [
            f"{'function':<24} {'invocations':>11} {'lambda':>6} {'batch':>5} {'failed':>6}"
            f"  {'lambda s':>15}  {'batch pending s':>15}  {'batch running s':>15}"
        ]
        for summary in self.summaries(functions):
            lines.append(
                f"{summary.function:<24} {summary.invocations:>11} {summary.in_lambda:>6} "
                f"{summary.in_batch:>5} {summary.failed:>6}  {_spread(summary.lambda_s):>15}  "
                f"{_spread(summary.pending_s):>15}  {_spread(summary.running_s):>15}"
            )
        lines.append("(times: median / max)")
        figures = self.figures(functions)
        at_once = ", ".join(
            f"{name} {data['batch_max_running']}"
            for name, data in figures["functions"].items()
            if data["in_batch"]
        )
        lines.append(
            f"at most {figures['lambda_max_running']} Lambda invocation(s) at once"
            + (f"; Batch jobs at once: {at_once}" if at_once else "")
            + f"; from the first trigger to the last end: {figures['span_s']:.2f} s"
        )
        failures = [item for item in self.invocations if item.failed or not item.finished]
        for item in failures:
            where = " ".join(part for part in (item.status, item.job_status) if part)
            state = "failed" if item.failed else f"unfinished ({where})"
            lines.append(f"\n{item.function} #{item.number} for {item.bucket}/{item.key}: {state}")
            if item.error:
                lines.append(f"  error: {item.error}")
            for label, path in (("log", item.log), ("Batch job log", item.job_log)):
                if path:
                    lines.append(f"  {label}: {path}")
                    lines.extend(f"    {line}" for line in _tail(Path(path)))
        return "\n".join(lines)

    def to_json(
        self,
        path: Path,
        *,
        now: float,
        extra: dict[str, Any] | None = None,
        functions: Sequence[str] = (),
    ) -> None:
        names = self._names(functions)
        data = {
            **(extra or {}),
            "duration_s": round(now, 3),
            "figures": self.figures(names),
            "invocations": [item.to_dict(now) for item in self.invocations],
        }
        path.write_text(json.dumps(data, indent=2) + "\n")

    def draw(
        self, path: Path, *, now: float, title: str = "", functions: Sequence[str] = ()
    ) -> None:
        """The chart: a bar per invocation (the first at the top), coloured by phase; Lambda
        colours follow the order of ``functions`` (the workflow's), then first appearance."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
        from matplotlib.patches import Patch

        items = self.invocations
        names = self._names(functions)
        colours = {
            name: _FUNCTION_COLOURS[index % len(_FUNCTION_COLOURS)]
            for index, name in enumerate(names)
        }
        height = max(2.5, 0.32 * len(items) + 1.6)
        figure, axes = pyplot.subplots(figsize=(12, height))
        for row, item in enumerate(items):
            for phase, start, end in item.phases(now):
                colour = {
                    "queued": _QUEUED,
                    "lambda": colours[item.function],
                    "batch-pending": _PENDING,
                    "batch-running": _RUNNING,
                }[phase]
                axes.barh(row, max(end - start, now * 0.002), left=start, height=0.7, color=colour)
            if item.failed:
                axes.text(item.ended or now, row, "  failed", va="center", color="red", fontsize=8)
        axes.set_yticks(range(len(items)))
        axes.set_yticklabels(
            [f"{item.function}: {Path(item.key).name}" for item in items], fontsize=7
        )
        axes.invert_yaxis()
        axes.set_xlabel("seconds since the run started")
        axes.set_xlim(left=0)
        axes.grid(axis="x", alpha=0.3)
        legend = [Patch(color=colours[name], label=f"{name} (Lambda)") for name in names]
        legend += [
            Patch(color=_PENDING, label="Batch: pending in the job queue"),
            Patch(color=_RUNNING, label="Batch: running"),
            Patch(color=_QUEUED, label="waiting for a Lambda slot"),
        ]
        axes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        axes.set_title(title or f"{len(items)} invocations")
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        pyplot.close(figure)


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _max(values: Sequence[float]) -> float | None:
    return round(max(values), 3) if values else None


def _most_at_once(spans: Sequence[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` spans open at one instant (an end before a
    start at the same instant)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def _spread(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
