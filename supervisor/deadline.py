"""The deadline of an invocation as a value: when it falls, and the clock that tells.

A ``Deadline`` is an instant of its ``clock`` (``time.monotonic`` unless a test injects
another), or no instant at all (``Deadline.none()``: a local run, a Batch job without
``batch.timeout``).  The invocation context carries one; every step that may run out of
time takes it, asks for its ``remaining()`` time or whether it ``expired()``, bounds its
own timeout with ``cap()``, and hands ``less(margin)`` to a step that must leave time to
the ones after it.  Nothing else reads the clock for a deadline.

How the reserve (``container.timeout_threshold``: seconds kept between the end of the
script and the Lambda deadline) is spent, in order, when a script runs out of time:

=================================  ========================================  ====================
step                               bound                                     constant
=================================  ========================================  ====================
the script runs                    until ``deadline.less(reserve)``          (the reserve)
SIGTERM to its process group       then SIGKILL after the grace              ``KILL_GRACE``
the group's end after SIGKILL      waited for at most                        ``KILL_WAIT``
the last of the script's output    read for at most, past the kill instant   ``LATE_DRAIN``
an idempotency record (DynamoDB)   per call: connect and read timeouts       ``attempt_timeouts``
the Batch submission, all retries  ends by ``deadline.less(SUBMIT_MARGIN)``  ``SUBMIT_MARGIN``
one SubmitJob attempt              connect + read timeouts                   ``attempt_timeouts``
the answer to Lambda               what is left of the margin                ``SUBMIT_MARGIN``
=================================  ========================================  ====================

A script that succeeds is followed by the upload of its outputs, bounded by the deadline
itself (the reserve is not needed for a delegation then).  An ``INPROGRESS`` idempotency
item holds off other deliveries until the deadline, ``NO_DEADLINE_HOLD`` seconds without one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from supervisor.errors import DeadlineError

__all__ = [
    "KILL_GRACE",
    "KILL_WAIT",
    "LATE_DRAIN",
    "NO_DEADLINE_HOLD",
    "SUBMIT_MARGIN",
    "Clock",
    "Deadline",
    "attempt_timeouts",
]

Clock = Callable[[], float]

# Seconds between SIGTERM and SIGKILL to the script's process group.
KILL_GRACE = 0.5
# Seconds the watchdog waits for the group to be gone after SIGKILL.
KILL_WAIT = 2.0
# Seconds the script's output may still take to end once the kill instant has passed.
LATE_DRAIN = 0.1
# Seconds kept between the end of a Batch submission (retries included) and the deadline.
SUBMIT_MARGIN = 0.2
# How long an "in progress" idempotency item holds without a deadline.
NO_DEADLINE_HOLD = 900.0

# One API call at the deadline (SubmitJob, a DynamoDB write): its share of the reserve.
_CONNECT_SHARE, _CONNECT_MIN, _CONNECT_MAX = 1 / 8, 0.2, 1.0
_READ_SHARE, _READ_MIN, _READ_MAX = 1 / 2, 0.5, 5.0


def attempt_timeouts(reserve: float) -> tuple[float, float]:
    """The connect and read timeouts of one API call made from the reserve, so that a retry
    still fits in it: a connection in the region takes milliseconds, an answer a few hundred."""
    connect = min(max(reserve * _CONNECT_SHARE, _CONNECT_MIN), _CONNECT_MAX)
    read = min(max(reserve * _READ_SHARE, _READ_MIN), _READ_MAX)
    return connect, read


@dataclass(frozen=True)
class Deadline:
    """An instant of ``clock`` (``None``: no deadline) and the arithmetic on it."""

    at: float | None
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def none(cls, clock: Clock = time.monotonic) -> Deadline:
        """No deadline: never expired, no time limit on any step."""
        return cls(None, clock)

    @classmethod
    def after(cls, seconds: float | None, clock: Clock = time.monotonic) -> Deadline:
        """``seconds`` from now on ``clock``; no deadline when ``seconds`` is ``None``."""
        return cls(None if seconds is None else clock() + seconds, clock)

    @property
    def unlimited(self) -> bool:
        return self.at is None

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` without a deadline."""
        if self.at is None:
            return None
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def less(self, margin: float) -> Deadline:
        """The deadline ``margin`` seconds earlier: what a step gets when the ones after it
        need ``margin``."""
        return self if self.at is None else Deadline(self.at - margin, self.clock)

    def cap(self, seconds: float) -> float:
        """A step's own timeout ``seconds``, shortened to the time left (never negative)."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)

    def timeout(self, step: str) -> float | None:
        """The time left for ``step`` (``None``: unbounded); ``DeadlineError`` naming the step
        when none is left."""
        if self.at is None:
            return None
        left = self.at - self.clock()
        if left <= 0:
            raise DeadlineError(f"no time left to {step}")
        return left
