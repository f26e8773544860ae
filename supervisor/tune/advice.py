"""The advice of ``tune``: the memory size by a named strategy, the execution mode by a stated
rule, and the reason in one sentence.

Each measured Lambda size gets its figures (``size_figures``): the duration of a typical
input (measured, else predicted by the fit of duration on input size), its cost per
invocation, and whether it *fits* the typical input and the largest one.  A size fits an
input size when no run of a sample up to that size ran out of memory, timed out or failed,
every run of those samples ended within the budget (the function's timeout less the
reserve, less a margin), and the duration at that input size (measured, else predicted)
is within the budget too.

The rule (``advise``):

- the function asks for a GPU: ``batch`` (Lambda has none; nothing is measured);
- sizes that fit the largest input: ``lambda`` at the strategy's pick among them;
- else sizes that fit a typical input: ``lambda-batch`` at the pick among them (Lambda runs
  the typical inputs and hands the runs that would not end in time to Batch);
- else ``batch``: out of memory at every size, or too slow even at the fastest.

``batch`` keeps the function's Lambda at the smallest size, 128 MB: it only hands each event
to a Batch job.  A size the host could not give its CPU share (``capped``) has durations that are
upper bounds: it is never picked.

The strategies, as AWS Lambda Power Tuning's: ``cost`` (the cheapest; costs within 1% of
the cheapest tie, the fastest of them wins), ``speed`` (the fastest; durations within 5% of
the fastest tie, the cheapest of them wins), ``balanced`` (the least
``weight * cost / max cost + (1 - weight) * duration / max duration``).

Errors (under ``SupervisorError``):

    SupervisorError
     └── AdviceError   a strategy, weight or budget that cannot be used, or nothing measured
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from supervisor.errors import SupervisorError
from supervisor.lambda_sizes import ONE_VCPU_MB
from supervisor.tune.fit import Fit, fit_durations
from supervisor.tune.model import Measurement, Run, RunStatus
from supervisor.tune.prices import Prices, lambda_cost

__all__ = [
    "BATCH_MEMORY_MB",
    "EXECUTION_MODES",
    "FIFTEEN_MINUTES_S",
    "STRATEGIES",
    "Advice",
    "AdviceError",
    "Budget",
    "ExecutionMode",
    "SizeFigures",
    "Strategy",
    "advise",
    "size_figures",
]

Strategy = Literal["cost", "speed", "balanced"]
ExecutionMode = Literal["lambda", "lambda-batch", "batch"]
STRATEGIES: tuple[Strategy, ...] = ("cost", "speed", "balanced")
EXECUTION_MODES: tuple[ExecutionMode, ...] = ("lambda", "lambda-batch", "batch")
FIFTEEN_MINUTES_S = 900.0  # Lambda's longest timeout
BATCH_MEMORY_MB = 128  # a function that runs in Batch: its Lambda only submits the job
LAMBDA_MAX_MEMORY_MB = 10_240
COST_TIE = 0.01  # costs within 1% of the cheapest are the same price
SPEED_TIE = 0.05  # durations within 5% of the fastest are the same speed
_MIB = 1 << 20
_THOUSAND = 1000

# Every sentence the advice says, in one place.  {budget} reads "712 s (the 900 s timeout
# less the 10 s reserve, less a 20% margin)"; {why} is one of _WHY.
_REASONS = {
    "gpu": (
        "batch: the function asks for a GPU and Lambda has none, so nothing was measured on"
        " this host's CPUs and the function's Lambda, at {memory} MB, only hands each event"
        " to a Batch job"
    ),
    "lambda": (
        "lambda at {memory} MB: {pick} among the sizes where every run, measured or"
        " predicted, up to the largest input ({largest}) ends within {budget}"
    ),
    "lambda-batch": (
        "lambda-batch at {memory} MB: {pick} among the sizes where a typical input"
        " ({typical}) ends within {budget}, while at this size {larger}, so Lambda hands such"
        " inputs to Batch"
    ),
    "batch-oom": (
        "batch: the function runs out of memory on a typical input ({typical}) at every size"
        " measured ({sizes}){beyond}"
    ),
    "batch-slow": (
        "batch: no size runs a typical input ({typical}) within {budget}: at the {which},"
        " {memory} MB, it {why}"
    ),
    "all-capped": (
        "{mode} at no size yet: this host could not give any size measured ({sizes}) its CPU"
        " share, so their durations are only upper bounds; measure sizes up to {memory} MB"
        " (the {cpus} CPUs this host has) to pick one"
    ),
    "capped-note": (
        "; {sizes} would have changed this but {verb} left out: this host cannot give"
        " {them} {their} CPU share, so {their} durations are only upper bounds"
    ),
}
_OOM_BEYOND = {
    True: ": it needs over 10,240 MB, the most Lambda gives",
    False: "; 10,240 MB, the most Lambda gives, was not measured",
}
_LARGER = {
    "from": "inputs from {threshold} on would not (the largest, {largest}, {why})",
    "largest": "the largest input ({largest}) {why}",
    "unknown": (
        "the largest input ({largest}) was not measured and cannot be predicted (fewer than"
        " two input sizes ran ok to fit a line)"
    ),
}
_PICKS = {
    "cost": "the cheapest ({cost} per invocation, {seconds})",
    "cost-tie": (
        "the fastest of those within 1% of the cheapest cost ({cost} per invocation, {seconds})"
    ),
    "speed": "the fastest ({seconds}, {cost} per invocation)",
    "speed-tie": (
        "the cheapest of those within 5% of the fastest duration ({seconds}, {cost} per invocation)"
    ),
    "balanced": (
        "the best balance of cost and speed at weight {weight} ({cost} per invocation, {seconds})"
    ),
}
_WHY = {
    "oom": "runs out of memory on {sample} ({size})",
    "timeout": "times out on {sample} ({size})",
    "failed": "fails on {sample} ({size}{detail})",
    "slow": "takes {seconds} on {sample} ({size}), over {budget_s}",
    "predicted": (
        "would take {seconds} on a {size} input by the fit of duration on input size,"
        " over {budget_s}"
    ),
    "unknown": (
        "cannot be predicted on a {size} input (not measured, and fewer than two input sizes"
        " ran ok to fit a line)"
    ),
}


class AdviceError(SupervisorError, ValueError):
    """A strategy, weight or budget that cannot be used, or nothing to advise from."""


@dataclass(frozen=True)
class Budget:
    """How long a run may take: ``(timeout_s - reserve_s) * (1 - margin)``."""

    timeout_s: float
    reserve_s: float
    margin: float

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s <= FIFTEEN_MINUTES_S:
            raise AdviceError(
                f"the timeout must be over 0 and at most 900 s (Lambda's longest),"
                f" not {self.timeout_s:g} s"
            )
        if not 0 <= self.reserve_s < self.timeout_s:
            raise AdviceError(
                f"the reserve must be at least 0 and less than the {self.timeout_s:g} s"
                f" timeout, not {self.reserve_s:g} s"
            )
        if not 0 <= self.margin < 1:
            raise AdviceError(f"the margin must be at least 0 and below 1, not {self.margin:g}")

    @property
    def budget_s(self) -> float:
        return (self.timeout_s - self.reserve_s) * (1 - self.margin)

    def describe(self) -> str:
        """``712 s (the 900 s timeout less the 10 s reserve, less a 20% margin)``."""
        parts = f"the {_seconds(self.timeout_s)} timeout"
        if self.reserve_s:
            parts += f" less the {_seconds(self.reserve_s)} reserve"
        if self.margin:
            parts += f", less a {round(self.margin * 100, 6):g}% margin"
        return f"{_seconds(self.budget_s)} ({parts})"


@dataclass(frozen=True)
class SizeFigures:
    """What the advice reads of one Lambda size (and tune.json reports of it)."""

    memory_mb: int
    capped: bool
    status: RunStatus
    typical_s: float | None
    typical_predicted: bool
    min_s: float | None
    max_s: float | None
    peak_memory_mb: float
    cost_usd: dict[str, float] | None  # per invocation at typical_s, by architecture
    fit: Fit | None
    input_bytes_at_15_min: float | None
    input_bytes_at_budget: float | None
    fits_typical: bool
    fits_all: bool

    def to_json(self) -> dict[str, Any]:
        """The size's keys of tune.json but those of its target (name, label, CPU) and its
        runs, which the report adds."""
        return {
            "memory_mb": self.memory_mb,
            "capped": self.capped,
            "status": self.status,
            "typical_s": self.typical_s,
            "typical_predicted": self.typical_predicted,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "peak_memory_mb": self.peak_memory_mb,
            "cost_usd": None if self.cost_usd is None else dict(self.cost_usd),
            "fit": None if self.fit is None else self.fit.to_json(),
            "input_mb_at_15_min": _mb_or_none(self.input_bytes_at_15_min),
            "input_mb_at_budget": _mb_or_none(self.input_bytes_at_budget),
        }


@dataclass(frozen=True)
class Advice:
    """The recommendation: ``memory_mb`` is None only when no size can be recommended."""

    strategy: Strategy
    weight: float
    architecture: str
    memory_mb: int | None
    execution_mode: ExecutionMode
    reason: str
    figures: tuple[SizeFigures, ...]

    def chosen(self) -> SizeFigures | None:
        """The figures of the recommended Lambda size (None for ``batch``)."""
        if self.execution_mode == "batch":
            return None
        return next((f for f in self.figures if f.memory_mb == self.memory_mb), None)

    def to_json(self) -> dict[str, Any]:
        chosen = self.chosen()
        cost = None if chosen is None or chosen.cost_usd is None else chosen.cost_usd
        return {
            "strategy": self.strategy,
            "weight": self.weight,
            "memory_mb": self.memory_mb,
            "execution_mode": self.execution_mode,
            "reason": self.reason,
            "typical_s": None if chosen is None else chosen.typical_s,
            "cost_usd": None if cost is None else cost.get(self.architecture),
        }


@dataclass(frozen=True)
class _Misfit:
    """Why runs of an input size would not end within the budget at a size."""

    kind: str  # a key of _WHY
    text: str


@dataclass(frozen=True)
class _Size:
    """A measured size with its figures and why it does not fit (None: it fits)."""

    figures: SizeFigures
    typical_misfit: _Misfit | None
    largest_misfit: _Misfit | None

    @property
    def memory_mb(self) -> int:
        return self.figures.memory_mb


@dataclass(frozen=True)
class _Decision:
    mode: ExecutionMode
    size: _Size | None  # the pick for lambda and lambda-batch
    pick: str  # a key of _PICKS


def size_figures(
    measurement: Measurement,
    prices: Prices,
    budget: Budget,
    *,
    typical_bytes: int,
    largest_bytes: int,
) -> SizeFigures:
    """The figures of one measured Lambda size; the largest input is ``largest_bytes`` or
    the largest sample measured, whichever is larger."""
    largest = max(largest_bytes, _largest_sample([measurement]))
    return _assess(measurement, prices, budget, typical_bytes, largest).figures


def advise(
    measurements: Sequence[Measurement],
    prices: Prices,
    budget: Budget,
    *,
    strategy: Strategy = "cost",
    weight: float = 0.5,
    architecture: str = "x86_64",
    gpu: bool = False,
    typical_bytes: int,
    largest_bytes: int,
) -> Advice:
    """The memory size and execution mode for a function measured at Lambda sizes."""
    if strategy not in STRATEGIES:
        raise AdviceError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if not 0 <= weight <= 1:
        raise AdviceError(f"the weight must be between 0 (speed) and 1 (cost), not {weight:g}")
    prices.lambda_price(architecture)

    def advice(
        mode: ExecutionMode, memory: int | None, reason: str, figures: tuple[SizeFigures, ...]
    ) -> Advice:
        return Advice(strategy, weight, architecture, memory, mode, reason, figures)

    if gpu:
        return advice("batch", BATCH_MEMORY_MB, _REASONS["gpu"].format(memory=BATCH_MEMORY_MB), ())
    if not measurements:
        raise AdviceError("no Lambda size was measured: there is nothing to advise from")
    ordered = sorted(measurements, key=lambda m: m.target.memory_mb)
    # The same largest input for every size, though a size may not have run every sample.
    largest = max(largest_bytes, _largest_sample(ordered))
    sizes = [_assess(m, prices, budget, typical_bytes, largest) for m in ordered]
    figures = tuple(size.figures for size in sizes)
    choose = _Chooser(strategy, weight, architecture)
    context = _Context(budget, typical_bytes, largest)
    uncapped = [size for size in sizes if not size.figures.capped]
    if not uncapped:
        decision = choose.decide(sizes)
        if decision.mode == "batch":
            return advice("batch", BATCH_MEMORY_MB, context.batch_reason(sizes, sizes), figures)
        cpus = max(m.target.cpus_given for m in ordered)
        reason = _REASONS["all-capped"].format(
            mode=decision.mode,
            sizes=_sizes(sizes),
            memory=math.floor(cpus * ONE_VCPU_MB),
            cpus=f"{cpus:g}",
        )
        return advice(decision.mode, None, reason, figures)
    decision = choose.decide(uncapped)
    reason = context.reason(decision, sizes, uncapped, choose)
    everything = choose.decide(sizes)
    if (everything.mode, _memory(everything)) != (decision.mode, _memory(decision)):
        reason += _capped_note([size for size in sizes if size.figures.capped])
    memory = BATCH_MEMORY_MB if decision.size is None else decision.size.memory_mb
    return advice(decision.mode, memory, reason, figures)


class _Chooser:
    """The execution-mode rule and the strategy's pick among candidate sizes."""

    def __init__(self, strategy: Strategy, weight: float, architecture: str) -> None:
        self.strategy = strategy
        self.weight = weight
        self.architecture = architecture

    def decide(self, sizes: Sequence[_Size]) -> _Decision:
        everything = [s for s in sizes if s.largest_misfit is None and s.typical_misfit is None]
        if everything:
            return self._pick("lambda", everything)
        typical = [s for s in sizes if s.typical_misfit is None]
        if typical:
            return self._pick("lambda-batch", typical)
        return _Decision("batch", None, "")

    def cost(self, size: _Size) -> float:
        costs = size.figures.cost_usd
        assert costs is not None  # a size that fits a typical input has its duration
        return costs[self.architecture]

    @staticmethod
    def seconds(size: _Size) -> float:
        seconds = size.figures.typical_s
        assert seconds is not None
        return seconds

    def _pick(self, mode: ExecutionMode, sizes: Sequence[_Size]) -> _Decision:
        cost, seconds = self.cost, self.seconds
        if self.strategy == "cost":
            cheapest = min(sizes, key=lambda s: (cost(s), seconds(s), s.memory_mb))
            tied = [s for s in sizes if cost(s) <= cost(cheapest) * (1 + COST_TIE)]
            chosen = min(tied, key=lambda s: (seconds(s), cost(s), s.memory_mb))
            return _Decision(mode, chosen, "cost" if chosen is cheapest else "cost-tie")
        if self.strategy == "speed":
            fastest = min(sizes, key=lambda s: (seconds(s), cost(s), s.memory_mb))
            tied = [s for s in sizes if seconds(s) <= seconds(fastest) * (1 + SPEED_TIE)]
            chosen = min(tied, key=lambda s: (cost(s), seconds(s), s.memory_mb))
            return _Decision(mode, chosen, "speed" if chosen is fastest else "speed-tie")
        most_cost = max(cost(s) for s in sizes)
        most_seconds = max(seconds(s) for s in sizes)

        def score(size: _Size) -> float:
            by_cost = cost(size) / most_cost if most_cost else 0.0
            by_time = seconds(size) / most_seconds if most_seconds else 0.0
            return self.weight * by_cost + (1 - self.weight) * by_time

        chosen = min(sizes, key=lambda s: (score(s), cost(s), s.memory_mb))
        return _Decision(mode, chosen, "balanced")


@dataclass(frozen=True)
class _Context:
    """What the sentences say besides the sizes: the budget and the input sizes."""

    budget: Budget
    typical_bytes: int
    largest_bytes: int

    def reason(
        self,
        decision: _Decision,
        sizes: Sequence[_Size],
        uncapped: Sequence[_Size],
        choose: _Chooser,
    ) -> str:
        if decision.size is None:
            return self.batch_reason(sizes, uncapped)
        size = decision.size
        pick = _PICKS[decision.pick].format(
            cost=_usd(choose.cost(size)),
            seconds=_seconds(choose.seconds(size)),
            weight=f"{choose.weight:g}",
        )
        common = {
            "memory": size.memory_mb,
            "pick": pick,
            "budget": self.budget.describe(),
            "typical": _mb(self.typical_bytes),
            "largest": _mb(self.largest_bytes),
        }
        if decision.mode == "lambda":
            return _REASONS["lambda"].format(**common)
        return _REASONS["lambda-batch"].format(**common, larger=self._larger(size))

    def batch_reason(self, sizes: Sequence[_Size], uncapped: Sequence[_Size]) -> str:
        typical = _mb(self.typical_bytes)
        if all(s.typical_misfit is not None and s.typical_misfit.kind == "oom" for s in sizes):
            top = max(s.memory_mb for s in sizes)
            beyond = _OOM_BEYOND[top >= LAMBDA_MAX_MEMORY_MB]
            return _REASONS["batch-oom"].format(typical=typical, sizes=_sizes(sizes), beyond=beyond)
        timed = [s for s in uncapped if s.figures.typical_s is not None]
        if timed:
            which, size = "fastest", min(timed, key=lambda s: (_Chooser.seconds(s), s.memory_mb))
        else:
            which, size = "largest", max(uncapped, key=lambda s: s.memory_mb)
        misfit = size.typical_misfit
        assert misfit is not None  # no size fits a typical input
        return _REASONS["batch-slow"].format(
            typical=typical,
            budget=self.budget.describe(),
            which=which,
            memory=size.memory_mb,
            why=misfit.text,
        )

    def _larger(self, size: _Size) -> str:
        misfit = size.largest_misfit
        assert misfit is not None  # lambda-batch: the largest input does not fit
        threshold = size.figures.input_bytes_at_budget
        largest = _mb(self.largest_bytes)
        timed = misfit.kind in ("slow", "predicted")
        if timed and threshold is not None and self.typical_bytes < threshold < self.largest_bytes:
            return _LARGER["from"].format(
                threshold=_mb(threshold), largest=largest, why=misfit.text
            )
        if misfit.kind == "unknown":
            return _LARGER["unknown"].format(largest=largest)
        return _LARGER["largest"].format(largest=largest, why=misfit.text)


def _assess(
    measurement: Measurement, prices: Prices, budget: Budget, typical_bytes: int, largest_bytes: int
) -> _Size:
    target = measurement.target
    fit = fit_durations(measurement.points())
    typical_s, predicted = _duration_at(measurement, fit, typical_bytes)
    typical_ok = [
        run.duration_s for run in _runs_of(measurement, typical_bytes) if run.status == "ok"
    ]
    costs = None
    if typical_s is not None:
        costs = {
            name: lambda_cost(price, target.memory_mb, typical_s)
            for name, price in prices.lambda_prices.items()
        }
    typical_misfit = _misfit(measurement, fit, budget, typical_bytes)
    largest_misfit = _misfit(measurement, fit, budget, largest_bytes)
    figures = SizeFigures(
        memory_mb=target.memory_mb,
        capped=target.capped,
        status=measurement.status(),
        typical_s=typical_s,
        typical_predicted=predicted,
        min_s=min(typical_ok) if typical_ok else None,
        max_s=max(typical_ok) if typical_ok else None,
        peak_memory_mb=measurement.peak_memory_mb(),
        cost_usd=costs,
        fit=fit,
        input_bytes_at_15_min=None if fit is None else fit.input_for(FIFTEEN_MINUTES_S),
        input_bytes_at_budget=None if fit is None else fit.input_for(budget.budget_s),
        fits_typical=typical_misfit is None,
        fits_all=largest_misfit is None,
    )
    return _Size(figures, typical_misfit, largest_misfit)


def _runs_of(measurement: Measurement, input_bytes: float) -> list[Run]:
    return [run for run in measurement.runs if run.input_bytes == input_bytes]


def _duration_at(
    measurement: Measurement, fit: Fit | None, input_bytes: float
) -> tuple[float | None, bool]:
    """The duration of an input size and whether it is predicted: the median of the runs
    that ended ok of a sample of exactly that size (None if none did), else the fit's
    prediction, else None."""
    runs = _runs_of(measurement, input_bytes)
    if runs:
        durations = [run.duration_s for run in runs if run.status == "ok"]
        return (statistics.median(durations) if durations else None), False
    if fit is None:
        return None, False
    return max(0.0, fit.predict(input_bytes)), True


def _misfit(
    measurement: Measurement, fit: Fit | None, budget: Budget, input_bytes: float
) -> _Misfit | None:
    """Why a run of ``input_bytes`` would not end within the budget at this size; None
    when it would."""
    runs = sorted(
        (run for run in measurement.runs if run.input_bytes <= input_bytes),
        key=lambda run: (run.input_bytes, run.sample),
    )
    for status in ("oom", "timeout", "failed"):
        ended = next((run for run in runs if run.status == status), None)
        if ended is not None:
            detail = f": {ended.detail}" if ended.detail else ""
            text = _WHY[status].format(
                sample=ended.sample, size=_mb(ended.input_bytes), detail=detail
            )
            return _Misfit(status, text)
    limit = budget.budget_s
    slow = [run for run in runs if run.duration_s > limit]
    if slow:
        run = max(slow, key=lambda run: run.duration_s)
        text = _WHY["slow"].format(
            seconds=_seconds(run.duration_s),
            sample=run.sample,
            size=_mb(run.input_bytes),
            budget_s=_seconds(limit),
        )
        return _Misfit("slow", text)
    duration, _ = _duration_at(measurement, fit, input_bytes)
    if duration is None:
        return _Misfit("unknown", _WHY["unknown"].format(size=_mb(input_bytes)))
    if duration > limit:  # only a prediction can be: the measured runs are within it
        text = _WHY["predicted"].format(
            seconds=_seconds(duration), size=_mb(input_bytes), budget_s=_seconds(limit)
        )
        return _Misfit("predicted", text)
    return None


def _largest_sample(measurements: Sequence[Measurement]) -> int:
    return max((run.input_bytes for m in measurements for run in m.runs), default=0)


def _memory(decision: _Decision) -> int | None:
    return None if decision.size is None else decision.size.memory_mb


def _capped_note(capped: Sequence[_Size]) -> str:
    many = len(capped) > 1
    return _REASONS["capped-note"].format(
        sizes=_sizes(capped),
        verb="were" if many else "was",
        them="them" if many else "it",
        their="their" if many else "its",
    )


def _sizes(sizes: Sequence[_Size]) -> str:
    """``128 MB``, ``128 and 256 MB``, ``128 to 10240 MB``."""
    memories = sorted(size.memory_mb for size in sizes)
    if len(memories) == 1:
        return f"{memories[0]} MB"
    if len(memories) == 2:
        return f"{memories[0]} and {memories[1]} MB"
    return f"{len(memories)} sizes, {memories[0]} to {memories[-1]} MB"


def _seconds(value: float) -> str:
    """Three significant digits: ``3.2 s``, ``712 s``, ``1,234 s``."""
    return f"{value:,.0f} s" if value >= _THOUSAND else f"{value:.3g} s"


def _mb(input_bytes: float) -> str:
    mb = input_bytes / _MIB
    return f"{mb:,.0f} MB" if mb >= _THOUSAND else f"{mb:.3g} MB"


def _mb_or_none(input_bytes: float | None) -> float | None:
    return None if input_bytes is None else input_bytes / _MIB


def _usd(value: float) -> str:
    """Three significant digits, never in exponent notation: ``$0.0000533``."""
    if value <= 0:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"
