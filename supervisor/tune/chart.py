"""``tune.png``: duration and cost against memory size, drawn from the ``tune.json`` data.

The chart reads like AWS Lambda Power Tuning's: one category per memory size on the x axis,
the median duration at the typical input on the left axis (bars from the shortest to the
longest run) and the cost per invocation on the right axis.  What the numbers do not say by
themselves is drawn too: the recommended size, sizes the host could not give their full CPU
share (capped: their durations are upper bounds), sizes whose runs ran out of memory, timed
out or failed, durations predicted from the fit rather than measured (hollow, dashed), and
the Batch estimate.  A function that asks for a GPU is not measured on CPU: its chart says so.

matplotlib is optional (the ``tune`` extra): without it ``draw`` returns None and the tables
and tune.json are the whole report.  It draws on its own Agg canvas, never through pyplot's
global state.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = ["MISSING_MATPLOTLIB", "draw"]

logger = logging.getLogger(__name__)

MISSING_MATPLOTLIB = (
    "matplotlib is not installed: no tune.png (pip install 'serverless-supervisor[tune]')"
)

_SIZE_IN = (10.0, 6.0)
_DPI = 100
_DURATION = "#1f5fa8"
_COST = "#d95f02"
_RECOMMENDED = "#c7e9b4"
_TROUBLE = "#d7191c"
_CAPPED = "#8c8c8c"
_NOTE_BOX = {"boxstyle": "round,pad=0.4", "facecolor": "#f4f4f4", "edgecolor": "#9e9e9e"}
_STATUS_WORDS = {"oom": "OOM", "timeout": "timeout", "failed": "failed"}
_MIB = 1 << 20
_LINE = 0.022  # a line of 8-point text, in fractions of the figure's height


def draw(data: Mapping[str, Any], path: Path) -> Path | None:
    """Draw the chart of a tuning run (the ``tune.json`` data) into ``path`` (PNG, about
    1000x600 pixels); ``path``, or None when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning(MISSING_MATPLOTLIB)
        return None
    figure = Figure(figsize=_SIZE_IN, dpi=_DPI, facecolor="white")
    FigureCanvasAgg(figure)
    if _measured(data):
        _draw_sizes(figure, data)
    else:
        _draw_unmeasured(figure, data)
    figure.savefig(path, dpi=_DPI, facecolor="white")
    return path


def _measured(data: Mapping[str, Any]) -> bool:
    gpu = data.get("gpu") or {}
    return bool(data.get("sizes")) and gpu.get("measured", True) is not False


def _draw_sizes(figure: Any, data: Mapping[str, Any]) -> None:
    sizes: Sequence[Mapping[str, Any]] = data["sizes"]
    architecture = str(data.get("architecture", "x86_64"))
    recommendation = data.get("recommendation") or {}
    handles = _legend(sizes, architecture, recommendation)
    footer = _footer_text(data)
    note = _batch_note(data.get("batch"))
    # Bottom up, in fractions of the figure's height: the footer, the Batch note, the
    # legend, the axis' ticks and label, then the axes.
    footer_top = 0.015 + _LINE * (footer.count("\n") + 1)
    note_top = footer_top + (_LINE * (note.count("\n") + 1) + 0.03 if note else 0.0)
    legend_top = note_top + _LINE * 1.35 * math.ceil(len(handles) / 2) + 0.01
    figure.subplots_adjust(left=0.08, right=0.9, top=0.87, bottom=legend_top + 0.1)
    figure.text(0.02, 0.015, footer, fontsize=7.5, color="#333333", va="bottom")
    if note:
        figure.text(0.02, footer_top + 0.015, note, fontsize=8, va="bottom", bbox=_NOTE_BOX)
    figure.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, legend_top),
        ncol=2,
        fontsize=8,
        frameon=False,
        borderaxespad=0,
    )
    axes = figure.add_subplot()
    cost_axes = axes.twinx()
    _mark_backgrounds(axes, sizes, recommendation)
    durations = _plot_durations(axes, sizes)
    costs = _plot_costs(cost_axes, sizes, architecture)
    _mark_troubles(axes, sizes)
    axes.set_xticks(range(len(sizes)))
    axes.set_xticklabels([str(size["memory_mb"]) for size in sizes])
    # At least three categories wide: a single size is a point, not the whole width.
    padding = max(0.5, (4 - len(sizes)) / 2)
    axes.set_xlim(-padding, len(sizes) - 1 + padding)
    axes.set_xlabel("memory (MB)")
    axes.set_ylabel(f"duration at the typical input{_typical_input(data)} (s)", color=_DURATION)
    axes.set_ylim(0, _top(durations))
    axes.grid(axis="y", alpha=0.3)
    cost_axes.set_ylabel(f"cost per invocation, {architecture} (µ$, millionths of a dollar)")
    cost_axes.yaxis.label.set_color(_COST)
    cost_axes.set_ylim(0, _top(costs))
    cost_axes.yaxis.set_major_formatter(_micro_dollars())
    axes.set_title(_title(data), fontsize=11)


def _mark_backgrounds(
    axes: Any, sizes: Sequence[Mapping[str, Any]], recommendation: Mapping[str, Any]
) -> None:
    """Bands behind the data: the recommended size (labelled with the execution mode), the
    capped sizes (hatched, with the CPUs given), the sizes with runs that did not end ok
    (light red)."""
    from matplotlib.transforms import blended_transform_factory

    across = blended_transform_factory(axes.transData, axes.transAxes)
    recommended = None
    for index, size in enumerate(sizes):
        if size["memory_mb"] == recommendation.get("memory_mb"):
            recommended = index
            axes.axvspan(index - 0.5, index + 0.5, color=_RECOMMENDED, zorder=0)
            axes.text(
                index,
                0.98,
                f"recommended\n{recommendation.get('execution_mode', '')}",
                transform=across,
                ha="center",
                va="top",
                fontsize=8,
                fontweight="bold",
                color="#238b45",
            )
        if size.get("status", "ok") != "ok":
            axes.axvspan(
                index - 0.5, index + 0.5, color=_TROUBLE, alpha=0.08, linewidth=0, zorder=0
            )
    for first, last in _capped_runs(sizes):
        axes.axvspan(
            first - 0.5,
            last + 0.5,
            facecolor="none",
            edgecolor=_CAPPED,
            hatch="//",
            linewidth=0,
            alpha=0.6,
            zorder=0,
        )
        below = recommended is not None and first <= recommended <= last
        axes.text(
            (first + last) / 2,
            0.83 if below else 0.98,
            _capped_label(sizes[first : last + 1]),
            transform=across,
            ha="center",
            va="top",
            fontsize=8,
            color="#404040",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
        )


def _capped_runs(sizes: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """The first and last index of each stretch of neighbouring capped sizes."""
    runs: list[tuple[int, int]] = []
    for index, size in enumerate(sizes):
        if not size.get("capped"):
            continue
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def _capped_label(sizes: Sequence[Mapping[str, Any]]) -> str:
    """'capped\n2 of 5.8 CPUs' for one size; for several, the CPUs given and the range of
    the shares they would get."""
    given = sorted({float(size.get("cpus_given", 0)) for size in sizes})
    shares = [float(size.get("cpu_share", 0)) for size in sizes]
    if len(sizes) == 1:
        return f"capped\n{given[0]:.2g} of {shares[0]:.2g} CPUs"
    cpus = f"{given[0]:.2g}" if len(given) == 1 else f"{given[0]:.2g} to {given[-1]:.2g}"
    return f"capped: {cpus} CPUs given\n(the sizes get {min(shares):.2g} to {max(shares):.2g})"


def _plot_durations(axes: Any, sizes: Sequence[Mapping[str, Any]]) -> list[float]:
    """The median durations, measured filled and predicted hollow, with the spread of the
    measured runs as error bars; every value drawn (for the axis' range)."""
    points = [
        (index, float(size["typical_s"]), bool(size.get("typical_predicted")))
        for index, size in enumerate(sizes)
        if size.get("typical_s") is not None
    ]
    _plot_line(axes, points, colour=_DURATION, marker="o")
    bars = [
        (index, float(size["typical_s"]), float(size["min_s"]), float(size["max_s"]))
        for index, size in enumerate(sizes)
        if size.get("typical_s") is not None
        and not size.get("typical_predicted")
        and size.get("min_s") is not None
        and size.get("max_s") is not None
    ]
    if bars:
        axes.errorbar(
            [index for index, _, _, _ in bars],
            [median for _, median, _, _ in bars],
            yerr=[
                [max(0.0, median - low) for _, median, low, _ in bars],
                [max(0.0, high - median) for _, median, _, high in bars],
            ],
            fmt="none",
            ecolor=_DURATION,
            elinewidth=1.2,
            capsize=4,
            zorder=3,
        )
    return [value for _, value, _ in points] + [high for _, _, _, high in bars]


def _plot_costs(axes: Any, sizes: Sequence[Mapping[str, Any]], architecture: str) -> list[float]:
    """The cost per invocation in millionths of a dollar, predicted ones hollow."""
    points = []
    for index, size in enumerate(sizes):
        cost = (size.get("cost_usd") or {}).get(architecture)
        if cost is not None:
            points.append((index, float(cost) * 1e6, bool(size.get("typical_predicted"))))
    _plot_line(axes, points, colour=_COST, marker="s")
    return [value for _, value, _ in points]


def _plot_line(
    axes: Any, points: Sequence[tuple[int, float, bool]], *, colour: str, marker: str
) -> None:
    """Neighbouring sizes joined, dashed where either end is predicted; no line across a size
    without a value."""
    for (left, low, left_predicted), (right, high, right_predicted) in pairwise(points):
        if right == left + 1:
            style = "--" if left_predicted or right_predicted else "-"
            axes.plot([left, right], [low, high], linestyle=style, color=colour, linewidth=1.8)
    for predicted in (False, True):
        chosen = [(index, value) for index, value, flag in points if flag is predicted]
        if chosen:
            axes.plot(
                [index for index, _ in chosen],
                [value for _, value in chosen],
                linestyle="none",
                marker=marker,
                markersize=7,
                markeredgewidth=1.6,
                color=colour,
                markerfacecolor="white" if predicted else colour,
                zorder=4,
            )


def _mark_troubles(axes: Any, sizes: Sequence[Mapping[str, Any]]) -> None:
    """OOM / timeout / failed at the sizes whose runs ended so: in the middle of the axes
    when the typical input has no duration, above the point when only other inputs failed."""
    from matplotlib.transforms import blended_transform_factory

    across = blended_transform_factory(axes.transData, axes.transAxes)
    for index, size in enumerate(sizes):
        status = size.get("status", "ok")
        typical = size.get("typical_s")
        if typical is None:
            word = _STATUS_WORDS.get(status, "no result")
            axes.text(
                index,
                0.5,
                word,
                transform=across,
                ha="center",
                va="center",
                fontsize=10,
                fontweight="bold",
                color=_TROUBLE if status in _STATUS_WORDS else _CAPPED,
            )
        elif status in _STATUS_WORDS:
            axes.annotate(
                _partial_trouble(size, status),
                (index, typical),
                xytext=(0, 10),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color=_TROUBLE,
            )


def _partial_trouble(size: Mapping[str, Any], status: str) -> str:
    """'OOM from 4.8 MB': the smallest input whose run ended so."""
    failing = [
        int(run["input_bytes"])
        for run in size.get("runs") or []
        if run.get("status") == status and run.get("input_bytes") is not None
    ]
    word = _STATUS_WORDS[status]
    return f"{word} from {min(failing) / _MIB:.3g} MB" if failing else word


def _legend(
    sizes: Sequence[Mapping[str, Any]], architecture: str, recommendation: Mapping[str, Any]
) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Line2D(
            [],
            [],
            color=_DURATION,
            marker="o",
            label="median duration at the typical input (bars: shortest to longest run)",
        ),
        Line2D([], [], color=_COST, marker="s", label=f"cost per invocation ({architecture})"),
    ]
    if any(size.get("typical_predicted") for size in sizes):
        handles.append(
            Line2D(
                [],
                [],
                color="#555555",
                marker="o",
                markerfacecolor="white",
                linestyle="--",
                label="predicted from the fit of duration against input size, not measured",
            )
        )
    if any(size["memory_mb"] == recommendation.get("memory_mb") for size in sizes):
        handles.append(Patch(color=_RECOMMENDED, label="recommended size"))
    if any(size.get("capped") for size in sizes):
        handles.append(
            Patch(
                facecolor="white",
                edgecolor=_CAPPED,
                hatch="//",
                label="capped: this host has fewer CPUs than the size gets (upper bounds)",
            )
        )
    if any(size.get("status", "ok") != "ok" for size in sizes):
        handles.append(
            Patch(color=_TROUBLE, alpha=0.25, label="runs out of memory (OOM), timed out or failed")
        )
    return handles


def _footer_text(data: Mapping[str, Any]) -> str:
    """The reason for the recommendation, then where and when it was measured."""
    lines = []
    reason = (data.get("recommendation") or {}).get("reason")
    if reason:
        lines.append(textwrap.fill(f"Why: {reason}", 160))
    lines.append(_provenance(data))
    return "\n".join(lines)


def _draw_unmeasured(figure: Any, data: Mapping[str, Any]) -> None:
    """The chart of a function with nothing measured: a page of text instead of empty axes."""
    gpu = data.get("gpu") or {}
    function = data.get("function", "the function")
    if gpu.get("asked"):
        headline = f"{function} asks for a GPU: not measured on this host"
        detail = gpu.get("note") or (
            "Its runs on CPU would say nothing about its runs on a GPU, so no size was measured."
        )
    else:
        headline = f"{function}: nothing was measured"
        detail = gpu.get("note") or "No memory size was measured."
    recommendation = data.get("recommendation") or {}
    lines = [textwrap.fill(str(detail), 95), "", _recommended(recommendation)]
    if recommendation.get("reason"):
        lines.append(textwrap.fill(str(recommendation["reason"]), 95))
    figure.text(0.5, 0.8, headline, ha="center", va="center", fontsize=16, fontweight="bold")
    figure.text(0.5, 0.62, "\n".join(lines), ha="center", va="top", fontsize=11, linespacing=1.5)
    note = _batch_note(data.get("batch"))
    if note:
        figure.text(0.5, 0.2, note, ha="center", va="center", fontsize=9, bbox=_NOTE_BOX)
    figure.text(0.02, 0.02, _provenance(data), fontsize=7.5, color="#333333")


def _title(data: Mapping[str, Any]) -> str:
    recommendation = data.get("recommendation") or {}
    strategy = recommendation.get("strategy", "")
    if strategy == "balanced" and recommendation.get("weight") is not None:
        strategy = f"balanced, weight {recommendation['weight']:g}"
    named = f" (strategy: {strategy})" if strategy else ""
    return (
        f"{data.get('function', 'function')}: duration and cost by memory size{named}\n"
        f"{_recommended(recommendation)}"
    )


def _recommended(recommendation: Mapping[str, Any]) -> str:
    memory = recommendation.get("memory_mb")
    mode = recommendation.get("execution_mode")
    if memory is None:
        return f"recommended: {mode}" if mode else "nothing can be recommended"
    figures = []
    if recommendation.get("typical_s") is not None:
        figures.append(_seconds(float(recommendation["typical_s"])))
    if recommendation.get("cost_usd") is not None:
        figures.append(f"{_dollars(float(recommendation['cost_usd']))} per invocation")
    shown = f" ({', '.join(figures)})" if figures else ""
    return f"recommended: {memory} MB, {mode}{shown}"


def _batch_note(batch: Mapping[str, Any] | None) -> str | None:
    """The Batch estimate in a sentence or two, or None when Batch was not measured."""
    if not batch:
        return None
    instance = batch.get("instance", "the instance")
    shape = f"{batch.get('vcpus', '?')} vCPUs, {float(batch.get('memory_mib', 0)) / 1024:g} GiB"
    if batch.get("gpus"):
        shape += f", {batch['gpus']} GPU(s)"
    lines = [f"AWS Batch on {instance} ({shape}): {_batch_result(batch)}"]
    if batch.get("capped"):
        lines.append(
            f"capped: this host gave {float(batch.get('cpus_given', 0)):g} CPUs,"
            " so the duration is an upper bound"
        )
    pending = batch.get("pending_s") or {}
    if pending.get("instance_running") is not None and pending.get("new_instance") is not None:
        lines.append(
            f"expect {float(pending['instance_running']):g} s in the queue with an instance"
            f" running, {float(pending['new_instance']):g} s when one has to start"
        )
    return "\n".join(textwrap.fill(line, 140) for line in lines)


def _batch_result(batch: Mapping[str, Any]) -> str:
    status = batch.get("status", "ok")
    if batch.get("typical_s") is None or status in _STATUS_WORDS:
        return f"runs ended {_STATUS_WORDS.get(status, 'without a result')}"
    result = f"{_seconds(float(batch['typical_s']))} per job"
    if batch.get("cost_usd") is not None:
        result += f", {_dollars(float(batch['cost_usd']))} per job"
    if batch.get("billed_s") is not None:
        result += f" (billed {float(batch['billed_s']):g} s)"
    return result


def _provenance(data: Mapping[str, Any]) -> str:
    host = data.get("host") or {}
    prices = data.get("prices") or {}
    parts = []
    if host.get("cpus") is not None:
        described = f" ({host['cpu']})" if host.get("cpu") else ""
        parts.append(f"host: {host['cpus']} CPUs{described}")
    if data.get("runs_per_input") is not None:
        parts.append(f"{data['runs_per_input']} run(s) per input")
    if prices.get("date"):
        parts.append(f"prices of {prices['date']}, {prices.get('region', '')}".rstrip(", "))
    if data.get("measured_at"):
        parts.append(str(data["measured_at"]))
    return "; ".join(parts)


def _typical_input(data: Mapping[str, Any]) -> str:
    size = data.get("typical_bytes")
    return f" ({int(size) / _MIB:.3g} MB)" if size is not None else ""


def _top(values: Sequence[float]) -> float:
    """The top of an axis: room above the highest value for the labels drawn there."""
    highest = max(values, default=0.0)
    return highest * 1.45 if highest > 0 else 1.0


def _micro_dollars() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _position: f"{value:g}")


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value:.2f} s" if value >= 0.1 else f"{value:.3f} s"


def _dollars(value: float) -> str:
    """``$0.000053``: two significant digits at least, never an exponent."""
    if value <= 0:
        return "$0"
    decimals = max(2, 1 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"
