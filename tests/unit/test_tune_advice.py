"""The advice of ``tune`` from hand-built measurements: each strategy, each execution mode,
capped sizes, ties, and the cost figures against arithmetic done here by hand."""

from __future__ import annotations

import json
import math

import pytest

from supervisor.errors import SupervisorError
from supervisor.tune.advice import (
    Advice,
    AdviceError,
    Budget,
    SizeFigures,
    Strategy,
    advise,
    size_figures,
)
from supervisor.tune.model import Measurement, Run, RunStatus, Target
from supervisor.tune.prices import PricesError, load_prices

MB = 1 << 20
X86_GB_S = 0.0000166667  # Lambda's published prices, us-east-1
ARM_GB_S = 0.0000133334
REQUEST = 0.20 / 1_000_000
BUDGET = Budget(timeout_s=900, reserve_s=10, margin=0.2)  # 712 s
BUDGET_TEXT = "712 s (the 900 s timeout less the 10 s reserve, less a 20% margin)"
PRICES = load_prices()
HOST_CPUS = 2.0


def runs(
    sample: str, size: int, *durations: float, status: RunStatus = "ok", detail: str = ""
) -> tuple[Run, ...]:
    return tuple(
        Run(sample, size, status, duration, peak_memory_mb=90.0, detail=detail)
        for duration in durations
    )


def measured(memory_mb: int, *groups: tuple[Run, ...], capped: bool = False) -> Measurement:
    share = memory_mb / 1769
    target = Target(
        kind="lambda",
        name=f"{memory_mb} MB",
        memory_mb=memory_mb,
        cpu_share=share,
        cpus_given=min(share, HOST_CPUS),
        capped=capped,
    )
    return Measurement(target, tuple(run for group in groups for run in group))


def x86(memory_mb: int, seconds: float) -> float:
    """By hand: GB-seconds (1 GB = 1,024 MB) times the price, plus the request."""
    return memory_mb / 1024 * seconds * X86_GB_S + REQUEST


def cpu_bound(*, capped_3008: bool = False, seconds_3008: float = 7.3) -> list[Measurement]:
    """A single-threaded script on a 1 MB input: its duration halves as the memory (and the
    CPU) doubles, up to one vCPU at 1,769 MB, then stays about flat."""
    return [
        measured(128, runs("a.bin", MB, 99.0, 100.0, 101.0)),
        measured(256, runs("a.bin", MB, 50.0, 50.0, 50.0)),
        measured(512, runs("a.bin", MB, 25.0, 25.0, 25.0)),
        measured(1024, runs("a.bin", MB, 12.5, 12.4, 12.6)),
        measured(1769, runs("a.bin", MB, 7.4, 7.4, 7.4)),
        measured(3008, runs("a.bin", MB, *[seconds_3008] * 3), capped=capped_3008),
    ]


def advice_of(
    measurements: list[Measurement],
    strategy: Strategy = "cost",
    *,
    weight: float = 0.5,
    architecture: str = "x86_64",
    typical: int = MB,
    largest: int = MB,
) -> Advice:
    return advise(
        measurements,
        PRICES,
        BUDGET,
        strategy=strategy,
        weight=weight,
        architecture=architecture,
        typical_bytes=typical,
        largest_bytes=largest,
    )


def test_the_budget_is_the_timeout_less_the_reserve_less_the_margin() -> None:
    assert BUDGET.budget_s == pytest.approx(712.0)
    assert BUDGET.describe() == BUDGET_TEXT
    assert Budget(300, 0, 0).describe() == "300 s (the 300 s timeout)"
    assert Budget(300, 0, 0.1).describe() == "270 s (the 300 s timeout, less a 10% margin)"


@pytest.mark.parametrize(
    ("timeout", "reserve", "margin", "message"),
    [
        (901, 10, 0.2, "at most 900 s"),
        (0, 0, 0.2, "at most 900 s"),
        (60, 60, 0.2, "less than the 60 s timeout"),
        (60, -1, 0.2, "reserve"),
        (60, 5, 1.0, "margin"),
        (60, 5, -0.1, "margin"),
    ],
)
def test_a_budget_that_cannot_be_is_refused(
    timeout: float, reserve: float, margin: float, message: str
) -> None:
    with pytest.raises(AdviceError, match=message):
        Budget(timeout, reserve, margin)


def test_the_cost_of_a_size_is_worked_out_from_the_published_prices() -> None:
    figures = size_figures(
        measured(1024, runs("a.bin", MB, 12.5, 12.4, 12.6)),
        PRICES,
        BUDGET,
        typical_bytes=MB,
        largest_bytes=MB,
    )
    # 12.5 s (the median) at 1 GB is 12.5 GB-s.
    assert figures.cost_usd == {
        "x86_64": pytest.approx(12.5 * 1.0 * X86_GB_S + REQUEST, rel=1e-12),
        "arm64": pytest.approx(12.5 * 1.0 * ARM_GB_S + REQUEST, rel=1e-12),
    }
    assert (figures.typical_s, figures.min_s, figures.max_s) == (12.5, 12.4, 12.6)
    assert not figures.typical_predicted
    assert figures.status == "ok"
    assert figures.peak_memory_mb == 90.0
    assert figures.fit is None  # one input size
    assert figures.input_bytes_at_budget is None
    assert figures.fits_typical
    assert figures.fits_all


def test_the_cost_strategy_picks_the_cheapest_and_among_equal_costs_the_fastest() -> None:
    advice = advice_of(cpu_bound())
    # 128 to 1,024 MB all cost 12.5 GB-s; 1,769 MB 12.8 GB-s (2% more); 3,008 MB 21.4.
    assert (advice.execution_mode, advice.memory_mb) == ("lambda", 1024)
    assert advice.reason == (
        "lambda at 1024 MB: the cheapest ($0.000209 per invocation, 12.5 s) among the sizes"
        " where every run, measured or predicted, up to the largest input (1 MB) ends within "
        + BUDGET_TEXT
    )
    assert advice.to_json() == {
        "strategy": "cost",
        "weight": 0.5,
        "memory_mb": 1024,
        "execution_mode": "lambda",
        "reason": advice.reason,
        "typical_s": 12.5,
        "cost_usd": pytest.approx(x86(1024, 12.5), rel=1e-12),
    }
    assert [f.memory_mb for f in advice.figures] == [128, 256, 512, 1024, 1769, 3008]


def test_costs_within_one_percent_of_the_cheapest_tie_and_the_fastest_of_them_wins() -> None:
    sizes = [
        measured(512, runs("a.bin", MB, 20.0)),  # 10 GB-s: the cheapest
        measured(1024, runs("a.bin", MB, 10.09)),  # 10.09 GB-s: 0.9% more, faster
        measured(2048, runs("a.bin", MB, 5.1)),  # 10.2 GB-s: 2% more, the fastest
    ]
    advice = advice_of(sizes)
    assert advice.memory_mb == 1024
    assert "the fastest of those within 1% of the cheapest cost ($0.000168 per" in advice.reason
    assert x86(1024, 10.09) == pytest.approx(0.000168, rel=0.01)
    assert x86(1024, 10.09) < x86(512, 20.0) * 1.01 < x86(2048, 5.1)


def test_the_speed_strategy_picks_the_fastest_and_among_equal_speeds_the_cheapest() -> None:
    advice = advice_of(cpu_bound(seconds_3008=7.2), "speed")
    # 3,008 MB is fastest (7.2 s) but 1,769 MB (7.4 s) is within 5% of it and cheaper.
    assert (advice.execution_mode, advice.memory_mb) == ("lambda", 1769)
    assert advice.reason.startswith(
        "lambda at 1769 MB: the cheapest of those within 5% of the fastest duration (7.4 s, $"
    )
    clear = advice_of(cpu_bound(seconds_3008=6.0), "speed")  # 6.0 s: over 5% faster
    assert clear.memory_mb == 3008
    assert clear.reason.startswith("lambda at 3008 MB: the fastest (6 s, $0.000")


@pytest.mark.parametrize(
    ("weight", "memory_mb"),
    [
        # Costs are close but for 3,008 MB's; durations fall up to 1,769 MB.
        (0.5, 1769),
        # Weight 1 is cost alone: 128 to 1,024 MB cost the same, the smallest wins.
        (1.0, 128),
        # Weight 0 is speed alone: 3,008 MB (7.3 s) beats 1,769 MB (7.4 s).
        (0.0, 3008),
    ],
)
def test_the_balanced_strategy_weighs_cost_against_duration(weight: float, memory_mb: int) -> None:
    advice = advice_of(cpu_bound(), "balanced", weight=weight)
    assert advice.memory_mb == memory_mb
    assert f"the best balance of cost and speed at weight {weight:g} ($" in advice.reason


def test_the_balanced_score_is_worked_out_by_hand() -> None:
    sizes = [
        measured(512, runs("a.bin", MB, 40.0)),  # 20 GB-s
        measured(1024, runs("a.bin", MB, 24.0)),  # 24 GB-s
        measured(2048, runs("a.bin", MB, 16.0)),  # 32 GB-s
    ]
    costs = {512: x86(512, 40.0), 1024: x86(1024, 24.0), 2048: x86(2048, 16.0)}
    seconds = {512: 40.0, 1024: 24.0, 2048: 16.0}
    for weight in (0.2, 0.5, 0.8):
        scores = {
            m: weight * costs[m] / max(costs.values()) + (1 - weight) * seconds[m] / 40.0
            for m in costs
        }
        assert advice_of(sizes, "balanced", weight=weight).memory_mb == min(
            scores, key=scores.__getitem__
        )
    assert advice_of(sizes, "balanced", weight=0.2).memory_mb == 2048
    assert advice_of(sizes, "balanced", weight=0.8).memory_mb == 512


@pytest.mark.parametrize("weight", [-0.1, 1.5, math.nan])
def test_a_weight_outside_zero_to_one_is_refused(weight: float) -> None:
    with pytest.raises(AdviceError, match=r"between 0 \(speed\) and 1 \(cost\)") as caught:
        advice_of(cpu_bound(), "balanced", weight=weight)
    assert isinstance(caught.value, SupervisorError)


def test_an_unknown_strategy_or_architecture_is_refused() -> None:
    with pytest.raises(AdviceError, match="unknown strategy 'cheapest'"):
        advice_of(cpu_bound(), "cheapest")  # type: ignore[arg-type]
    with pytest.raises(PricesError, match="'riscv'"):
        advice_of(cpu_bound(), architecture="riscv")
    with pytest.raises(AdviceError, match="no Lambda size was measured"):
        advice_of([])


def test_the_architecture_sets_which_price_the_pick_and_the_figures_read() -> None:
    advice = advice_of(cpu_bound(), architecture="arm64")
    assert advice.memory_mb == 1024
    assert advice.to_json()["cost_usd"] == pytest.approx(12.5 * ARM_GB_S + REQUEST, rel=1e-12)
    assert "$0.000167 per invocation" in advice.reason


def test_a_line_crossing_the_budget_between_typical_and_largest_gives_lambda_batch() -> None:
    # 10 s per MB at 1,024 MB, 20 s per MB at 512 MB: a 1 MB input ends in time, the largest
    # (100 MB) would take 1,000 s and 2,000 s.
    sizes = [
        measured(512, runs("a.bin", MB, 20.0, 20.0), runs("b.bin", 10 * MB, 200.0, 200.0)),
        measured(1024, runs("a.bin", MB, 10.0, 10.0), runs("b.bin", 10 * MB, 100.0, 100.0)),
    ]
    advice = advice_of(sizes, typical=MB, largest=100 * MB)
    assert (advice.execution_mode, advice.memory_mb) == ("lambda-batch", 1024)
    at_1024 = advice.figures[1]
    assert at_1024.fits_typical
    assert not at_1024.fits_all
    assert at_1024.fit is not None
    assert at_1024.fit.slope_s_per_byte * MB == pytest.approx(10.0)
    assert at_1024.input_bytes_at_budget == pytest.approx(71.2 * MB)
    assert at_1024.input_bytes_at_15_min == pytest.approx(90 * MB)
    assert advice.reason == (
        "lambda-batch at 1024 MB: the cheapest ($0.000167 per invocation, 10 s) among the"
        " sizes where a typical input (1 MB) ends within "
        + BUDGET_TEXT
        + ", while at this size inputs from 71.2 MB on would not (the largest, 100 MB, would"
        " take 1,000 s on a 100 MB input by the fit of duration on input size, over 712 s),"
        " so Lambda hands such inputs to Batch"
    )
    data = at_1024.to_json()
    assert data["input_mb_at_budget"] == pytest.approx(71.2)
    assert data["input_mb_at_15_min"] == pytest.approx(90.0)
    assert data["fit"]["slope_s_per_mb"] == pytest.approx(10.0)


def test_every_input_within_the_budget_at_some_size_gives_lambda() -> None:
    sizes = [
        measured(1024, runs("a.bin", MB, 10.0), runs("b.bin", 10 * MB, 100.0)),
        measured(2048, runs("a.bin", MB, 5.0), runs("b.bin", 10 * MB, 50.0)),
    ]
    # At 2,048 MB the largest (100 MB) would take 500 s: within 712 s.
    advice = advice_of(sizes, typical=MB, largest=100 * MB)
    assert (advice.execution_mode, advice.memory_mb) == ("lambda", 2048)
    assert "up to the largest input (100 MB)" in advice.reason


def test_a_largest_input_beyond_the_samples_without_a_fit_does_not_fit() -> None:
    advice = advice_of([measured(1024, runs("a.bin", MB, 10.0))], typical=MB, largest=50 * MB)
    assert advice.execution_mode == "lambda-batch"
    assert advice.figures[0].fits_typical
    assert not advice.figures[0].fits_all
    assert (
        "while at this size the largest input (50 MB) was not measured and cannot be"
        " predicted (fewer than two input sizes ran ok to fit a line)" in advice.reason
    )


def test_a_larger_sample_out_of_memory_makes_it_lambda_batch_and_says_so() -> None:
    sizes = [
        measured(1024, runs("a.bin", MB, 10.0), runs("big.bin", 50 * MB, 1.0, status="oom")),
    ]
    advice = advice_of(sizes, typical=MB, largest=50 * MB)
    assert advice.execution_mode == "lambda-batch"
    assert advice.figures[0].status == "oom"
    assert "the largest input (50 MB) runs out of memory on big.bin (50 MB)" in advice.reason


def test_a_typical_input_over_the_budget_everywhere_gives_batch() -> None:
    sizes = [
        measured(1024, runs("a.bin", MB, 900.0, 800.0, status="ok")),
        measured(2048, runs("a.bin", MB, 720.0, 730.0, 740.0)),
    ]
    advice = advice_of(sizes)
    assert (advice.execution_mode, advice.memory_mb) == ("batch", 128)
    assert advice.reason == (
        "batch: no size runs a typical input (1 MB) within "
        + BUDGET_TEXT
        + ": at the fastest, 2048 MB, it takes 740 s on a.bin (1 MB), over 712 s"
    )
    assert advice.to_json()["typical_s"] is None
    assert advice.to_json()["cost_usd"] is None
    assert not any(f.fits_typical for f in advice.figures)


def test_one_run_over_the_budget_is_enough_to_not_fit() -> None:
    sizes = [measured(1024, runs("a.bin", MB, 100.0, 100.0, 800.0))]
    advice = advice_of(sizes)
    assert advice.figures[0].typical_s == 100.0  # the median is within the budget
    assert advice.execution_mode == "batch"
    assert "takes 800 s on a.bin (1 MB), over 712 s" in advice.reason


def test_a_predicted_typical_input_over_the_budget_gives_batch() -> None:
    # The typical input (80 MB) was not a sample: at 10 s per MB it would take 800 s.
    sizes = [measured(1024, runs("a.bin", MB, 10.0), runs("b.bin", 10 * MB, 100.0))]
    advice = advice_of(sizes, typical=80 * MB, largest=80 * MB)
    figures = advice.figures[0]
    assert figures.typical_predicted
    assert figures.typical_s == pytest.approx(800.0)
    assert figures.min_s is None
    assert figures.cost_usd is not None
    assert figures.cost_usd["x86_64"] == pytest.approx(x86(1024, 800.0), rel=1e-12)
    assert advice.execution_mode == "batch"
    assert "would take 800 s on a 80 MB input by the fit" in advice.reason


def test_a_script_that_fails_is_never_advised_for_lambda() -> None:
    sizes = [measured(1024, runs("a.bin", MB, 1.0, status="failed", detail="exit status 3"))]
    advice = advice_of(sizes)
    assert advice.execution_mode == "batch"
    assert advice.figures[0].typical_s is None
    assert advice.figures[0].cost_usd is None
    assert "at the largest, 1024 MB, it fails on a.bin (1 MB: exit status 3)" in advice.reason


def test_out_of_memory_at_every_size_up_to_10240_gives_batch() -> None:
    sizes = [
        measured(memory, runs("a.bin", MB, 3.0, status="oom"), capped=memory > 3538)
        for memory in (128, 1024, 3008, 10240)
    ]
    advice = advice_of(sizes)
    assert (advice.execution_mode, advice.memory_mb) == ("batch", 128)
    assert advice.reason == (
        "batch: the function runs out of memory on a typical input (1 MB) at every size"
        " measured (4 sizes, 128 to 10240 MB): it needs over 10,240 MB, the most Lambda gives"
    )


def test_out_of_memory_at_every_size_but_10240_unmeasured_says_so() -> None:
    sizes = [measured(m, runs("a.bin", MB, 3.0, status="oom")) for m in (128, 256)]
    advice = advice_of(sizes)
    assert advice.execution_mode == "batch"
    assert advice.reason == (
        "batch: the function runs out of memory on a typical input (1 MB) at every size"
        " measured (128 and 256 MB); 10,240 MB, the most Lambda gives, was not measured"
    )


def test_out_of_memory_below_a_size_leaves_the_sizes_above() -> None:
    sizes = [
        measured(128, runs("a.bin", MB, 2.0, status="oom")),
        measured(256, runs("a.bin", MB, 2.0, status="oom")),
        measured(512, runs("a.bin", MB, 8.0)),
        measured(1024, runs("a.bin", MB, 4.0)),
    ]
    advice = advice_of(sizes)
    assert (advice.execution_mode, advice.memory_mb) == ("lambda", 1024)
    assert [f.status for f in advice.figures] == ["oom", "oom", "ok", "ok"]


def test_a_function_that_asks_for_a_gpu_goes_to_batch_unmeasured() -> None:
    advice = advise(
        [], PRICES, BUDGET, gpu=True, strategy="speed", typical_bytes=MB, largest_bytes=MB
    )
    assert (advice.execution_mode, advice.memory_mb) == ("batch", 128)
    assert advice.figures == ()
    assert "asks for a GPU and Lambda has none, so nothing was measured" in advice.reason
    assert advice.to_json()["typical_s"] is None


def test_a_capped_size_is_never_picked_and_the_reason_says_when_it_would_have_been() -> None:
    # 3,008 MB is capped on this host; its 5 s is only an upper bound.
    advice = advice_of(cpu_bound(capped_3008=True, seconds_3008=5.0), "speed")
    assert advice.memory_mb == 1769
    assert advice.reason.endswith(
        "; 3008 MB would have changed this but was left out: this host cannot give it its CPU"
        " share, so its durations are only upper bounds"
    )
    assert advice.figures[-1].capped
    # Where the capped size would not have been picked anyway, nothing is said of it.
    cheap = advice_of(cpu_bound(capped_3008=True, seconds_3008=5.0), "cost")
    assert cheap.memory_mb == 1024
    assert "capped" not in cheap.reason
    assert "left out" not in cheap.reason


def test_a_capped_size_alone_fitting_is_named_when_the_advice_is_batch() -> None:
    sizes = [
        measured(1769, runs("a.bin", MB, 800.0)),
        measured(10240, runs("a.bin", MB, 300.0), capped=True),
    ]
    advice = advice_of(sizes)
    assert (advice.execution_mode, advice.memory_mb) == ("batch", 128)
    assert "at the fastest, 1769 MB, it takes 800 s" in advice.reason
    assert "; 10240 MB would have changed this but was left out" in advice.reason


def test_when_every_size_is_capped_no_size_is_recommended() -> None:
    sizes = [measured(m, runs("a.bin", MB, 10.0), capped=True) for m in (5120, 10240)]
    advice = advice_of(sizes)
    assert advice.memory_mb is None
    assert advice.execution_mode == "lambda"
    assert "up to 3538 MB (the 2 CPUs this host has)" in advice.reason
    assert advice.to_json()["memory_mb"] is None


def test_the_figures_hold_exactly_the_keys_of_a_size_in_tune_json() -> None:
    figures = advice_of(cpu_bound()).figures[0]
    assert isinstance(figures, SizeFigures)
    data = figures.to_json()
    assert set(data) == {
        "memory_mb",
        "capped",
        "status",
        "typical_s",
        "typical_predicted",
        "min_s",
        "max_s",
        "peak_memory_mb",
        "cost_usd",
        "fit",
        "input_mb_at_15_min",
        "input_mb_at_budget",
    }
    assert data["cost_usd"] == {
        "x86_64": pytest.approx(x86(128, 100.0), rel=1e-12),
        "arm64": pytest.approx(128 / 1024 * 100.0 * ARM_GB_S + REQUEST, rel=1e-12),
    }
    assert (data["min_s"], data["max_s"]) == (99.0, 101.0)
    json.dumps(data)
    json.dumps(advice_of(cpu_bound()).to_json())


def test_a_failure_on_a_smaller_sample_stops_a_size_fitting_a_larger_one() -> None:
    sizes = [
        measured(
            1024,
            runs("small.bin", MB // 2, 1.0, status="timeout"),
            runs("a.bin", MB, 10.0),
        )
    ]
    advice = advice_of(sizes)
    figures = advice.figures[0]
    assert figures.typical_s == 10.0
    assert not figures.fits_typical
    assert figures.status == "timeout"
    assert "times out on small.bin (0.5 MB)" in advice.reason


def test_a_size_that_did_not_run_the_largest_sample_is_judged_on_it_all_the_same() -> None:
    # 512 MB ran only the small sample: the largest input (10 MB) is still the one it must
    # fit, and with one input size it cannot be predicted.
    sizes = [
        measured(512, runs("a.bin", MB, 5.0)),
        measured(1024, runs("a.bin", MB, 4.0), runs("b.bin", 10 * MB, 40.0)),
    ]
    advice = advice_of(sizes, typical=MB, largest=MB)
    assert [f.fits_all for f in advice.figures] == [False, True]
    assert (advice.execution_mode, advice.memory_mb) == ("lambda", 1024)
    alone = size_figures(sizes[0], PRICES, BUDGET, typical_bytes=MB, largest_bytes=MB)
    assert alone.fits_all  # on its own, its largest sample is 1 MB
