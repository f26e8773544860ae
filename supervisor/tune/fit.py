"""How a function's duration grows with its input's size: a least-squares line.

The points are (input bytes, median duration) of the samples that ran ok at one memory size
(``Measurement.points``).  The line says what a larger input than those measured would take,
and from what input size a run would pass a given time (15 minutes, a function's budget):
that is what sends the largest inputs of a ``lambda-batch`` function to Batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Fit", "fit_durations"]

_MIB = 1 << 20


@dataclass(frozen=True)
class Fit:
    """``duration = intercept_s + slope_s_per_byte * input_bytes`` over ``points`` points."""

    intercept_s: float
    slope_s_per_byte: float
    r2: float  # 1.0: the points lie on the line (also when every duration is the same)
    points: int

    def predict(self, input_bytes: float) -> float:
        return self.intercept_s + self.slope_s_per_byte * input_bytes

    def input_for(self, seconds: float) -> float | None:
        """The input size (bytes) from which a run would take ``seconds``: None when the
        duration does not grow with the input; 0.0 when even an empty input would."""
        if self.slope_s_per_byte <= 0:
            return None
        return max(0.0, (seconds - self.intercept_s) / self.slope_s_per_byte)

    def to_json(self) -> dict[str, Any]:
        return {
            "intercept_s": self.intercept_s,
            "slope_s_per_mb": self.slope_s_per_byte * _MIB,
            "r2": self.r2,
            "points": self.points,
        }


def fit_durations(points: Sequence[tuple[int, float]]) -> Fit | None:
    """The least-squares line through ``(input bytes, seconds)`` points, or None with fewer
    than two distinct input sizes (no line can be drawn)."""
    if len({size for size, _ in points}) < 2:
        return None
    count = len(points)
    mean_x = sum(size for size, _ in points) / count
    mean_y = sum(seconds for _, seconds in points) / count
    sxx = sum((size - mean_x) ** 2 for size, _ in points)
    sxy = sum((size - mean_x) * (seconds - mean_y) for size, seconds in points)
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    total = sum((seconds - mean_y) ** 2 for _, seconds in points)
    residual = sum((seconds - intercept - slope * size) ** 2 for size, seconds in points)
    r2 = 1.0 if total == 0 else max(0.0, 1.0 - residual / total)
    return Fit(intercept_s=intercept, slope_s_per_byte=slope, r2=r2, points=count)
