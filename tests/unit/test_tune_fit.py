"""The fit of duration on input size: exact lines, noisy lines, flat and too few points."""

from __future__ import annotations

import random

import pytest

from supervisor.tune.fit import Fit, fit_durations

MIB = 1 << 20


def test_points_on_a_line_give_that_line() -> None:
    # 0.5 s to start, then 2 s per MiB.
    points = [(size * MIB, 0.5 + 2.0 * size) for size in (1, 2, 5, 10)]
    fit = fit_durations(points)
    assert fit is not None
    assert fit.intercept_s == pytest.approx(0.5)
    assert fit.slope_s_per_byte == pytest.approx(2.0 / MIB)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.points == 4
    assert fit.predict(100 * MIB) == pytest.approx(200.5)
    # 900 s is reached at (900 - 0.5) / 2 MiB.
    at_900 = fit.input_for(900.0)
    assert at_900 is not None
    assert at_900 / MIB == pytest.approx(449.75)
    assert fit.to_json() == {
        "intercept_s": pytest.approx(0.5),
        "slope_s_per_mb": pytest.approx(2.0),
        "r2": pytest.approx(1.0),
        "points": 4,
    }


def test_two_points_are_enough_and_the_order_does_not_matter() -> None:
    fit = fit_durations([(3_000_000, 7.0), (1_000_000, 3.0)])
    assert fit is not None
    assert fit.slope_s_per_byte == pytest.approx(2e-6)
    assert fit.intercept_s == pytest.approx(1.0)
    assert fit.input_for(11.0) == pytest.approx(5_000_000)


def test_a_noisy_line_is_fitted_by_least_squares() -> None:
    # The least-squares line through (0, 1), (1, 2), (2, 2), (3, 4) worked by hand:
    # mean x = 1.5, mean y = 2.25, Sxx = 5, Sxy = 4.5: slope 0.9, intercept 0.9;
    # residuals 0.1, 0.2, -0.7, 0.4: SSres = 0.7; SStot = 4.75; r2 = 1 - 0.7 / 4.75.
    fit = fit_durations([(0, 1.0), (MIB, 2.0), (2 * MIB, 2.0), (3 * MIB, 4.0)])
    assert fit is not None
    assert fit.slope_s_per_byte * MIB == pytest.approx(0.9)
    assert fit.intercept_s == pytest.approx(0.9)
    assert fit.r2 == pytest.approx(1 - 0.7 / 4.75)


def test_a_noisy_line_keeps_close_to_the_true_one() -> None:
    noise = random.Random(15)  # noqa: S311 - a repeatable noise, not a secret
    points = [
        (size * MIB, 3.0 + 0.25 * size + noise.uniform(-0.5, 0.5))
        for size in range(1, 41)
        for _ in range(3)
    ]
    fit = fit_durations(points)
    assert fit is not None
    assert fit.slope_s_per_byte * MIB == pytest.approx(0.25, abs=0.02)
    assert fit.intercept_s == pytest.approx(3.0, abs=0.5)
    assert 0.95 < fit.r2 < 1.0
    assert fit.points == 120


def test_a_flat_line_never_reaches_a_longer_time() -> None:
    fit = fit_durations([(MIB, 4.0), (10 * MIB, 4.0), (100 * MIB, 4.0)])
    assert fit is not None
    assert fit.slope_s_per_byte == pytest.approx(0.0)
    assert fit.r2 == 1.0
    assert fit.predict(10_000 * MIB) == pytest.approx(4.0)
    assert fit.input_for(900.0) is None


def test_a_falling_line_never_reaches_a_longer_time() -> None:
    fit = fit_durations([(MIB, 10.0), (2 * MIB, 8.0)])
    assert fit is not None
    assert fit.slope_s_per_byte < 0
    assert fit.input_for(900.0) is None


def test_a_start_already_over_the_time_means_every_input_is() -> None:
    fit = Fit(intercept_s=1000.0, slope_s_per_byte=1e-6, r2=1.0, points=2)
    assert fit.input_for(900.0) == 0.0


@pytest.mark.parametrize(
    "points",
    [[], [(MIB, 2.0)], [(MIB, 2.0), (MIB, 2.5), (MIB, 3.0)]],
    ids=["none", "one point", "one input size"],
)
def test_fewer_than_two_input_sizes_give_no_fit(points: list[tuple[int, float]]) -> None:
    assert fit_durations(points) is None
