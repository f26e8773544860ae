"""The Deadline value: remaining time, expiry, the reserve taken off it, a step's timeout.

Every case runs on an injected clock that moves only when told to, so that each answer is
exact.
"""

from __future__ import annotations

import pytest

from supervisor.context import InvocationContext
from supervisor.deadline import (
    KILL_GRACE,
    LATE_DRAIN,
    SUBMIT_MARGIN,
    Deadline,
    attempt_timeouts,
)
from supervisor.delegation import RetryPolicy
from supervisor.errors import DeadlineError
from supervisor.watchdog import Watchdog


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_remaining_counts_down_and_never_goes_below_zero() -> None:
    clock = Clock()
    deadline = Deadline.after(5.0, clock)

    assert deadline.at == 105.0
    assert deadline.remaining() == 5.0
    clock.now = 104.5
    assert deadline.remaining() == 0.5
    assert not deadline.expired()
    clock.now = 105.0
    assert deadline.remaining() == 0.0
    assert deadline.expired()
    clock.now = 200.0
    assert deadline.remaining() == 0.0
    assert deadline.expired()


def test_no_deadline_never_expires_and_bounds_nothing() -> None:
    clock = Clock(1e12)
    for deadline in (Deadline.none(clock), Deadline.after(None, clock)):
        assert deadline.unlimited
        assert deadline.remaining() is None
        assert not deadline.expired()
        assert deadline.cap(7.5) == 7.5
        assert deadline.timeout("do anything") is None
        assert deadline.less(60.0) == deadline


def test_less_takes_the_reserve_off_on_the_same_clock() -> None:
    clock = Clock()
    deadline = Deadline(110.0, clock)
    kill = deadline.less(3.0)

    assert kill.at == 107.0
    assert kill.clock is clock
    clock.now = 107.0
    assert kill.expired()
    assert not deadline.expired()
    assert deadline.remaining() == 3.0


@pytest.mark.parametrize(
    ("now", "seconds", "capped"),
    [(100.0, 2.0, 2.0), (108.5, 2.0, 1.5), (110.0, 2.0, 0.0), (130.0, 2.0, 0.0)],
)
def test_cap_shortens_a_step_timeout_to_the_time_left(
    now: float, seconds: float, capped: float
) -> None:
    assert Deadline(110.0, Clock(now)).cap(seconds) == capped


def test_timeout_names_the_step_once_no_time_is_left() -> None:
    clock = Clock()
    deadline = Deadline(101.0, clock)

    assert deadline.timeout("download s3://in/a.txt") == 1.0
    clock.now = 101.0
    with pytest.raises(DeadlineError, match=r"no time left to download s3://in/a\.txt"):
        deadline.timeout("download s3://in/a.txt")


def test_deadlines_compare_by_their_instant() -> None:
    assert Deadline(5.0, Clock()) == Deadline(5.0, Clock(7.0))
    assert Deadline(5.0) != Deadline(6.0)
    assert Deadline.none() == Deadline(None)


def test_the_context_carries_a_deadline_on_the_clock_it_was_given() -> None:
    clock = Clock(50.0)
    context = InvocationContext.local("fn", timeout=30.0, clock=clock)

    assert context.deadline.at == 80.0
    clock.now = 79.0
    assert context.deadline.remaining() == 1.0
    assert InvocationContext.local("fn").deadline.unlimited
    assert "deadline" not in context.to_json()


def test_the_watchdog_kills_at_the_deadline_less_the_reserve() -> None:
    clock = Clock()
    watchdog = Watchdog(Deadline(110.0, clock), 3.0)

    assert watchdog.kill == Deadline(107.0)
    assert watchdog.clock is clock
    assert watchdog.grace == KILL_GRACE


@pytest.mark.parametrize("reserve", [0.0, 1.0, 2.0, 10.0, 60.0])
def test_one_api_call_at_the_deadline_fits_in_the_reserve_it_is_sized_from(
    reserve: float,
) -> None:
    connect, read = attempt_timeouts(reserve)
    policy = RetryPolicy.for_reserve(reserve)

    assert (policy.connect_timeout, policy.read_timeout) == (connect, read)
    assert 0 < connect <= read
    if reserve >= 10.0:
        # From the default reserve up, the kill, the end of the script's output and a whole
        # attempt still leave the margin before the deadline.
        assert KILL_GRACE + LATE_DRAIN + connect + read + SUBMIT_MARGIN <= reserve
