"""Running estimates from a stream of numbers: a smoothed value and the time left.

`ExponentialMean` is the one moving average of the studio (the smoothed loss on the curves, the
smoothed gradient norm and throughput on the Signals tab, the LR finder's divergence check) and
`remaining_seconds` the one ETA (the status bar, the terminal's progress line, the epoch's end).
Pure Python, no torch and no Qt, so the engine and the window share them.
"""

from __future__ import annotations

import math


class ExponentialMean:
    """A debiased exponential moving average: `add(value)` folds a number in and returns the mean so far.

    Each value counts with weight `alpha` (fixed as `1 - beta`, or given per value, so a stream whose
    points are unevenly spaced can weigh each by its spacing). Dividing by the weight accumulated
    so far removes the pull towards zero of the start, so the first mean is the first value.
    """

    def __init__(self, beta: float = 0.0) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1) (got {beta})")
        self.beta = beta
        self._sum = 0.0
        self._weight = 0.0

    def add(self, value: float, alpha: float | None = None) -> float:
        a = 1.0 - self.beta if alpha is None else min(max(alpha, 0.0), 1.0)
        self._sum = (1.0 - a) * self._sum + a * value
        self._weight = (1.0 - a) * self._weight + a
        return self.value

    @property
    def value(self) -> float:
        """The mean so far; NaN before the first value."""
        return self._sum / self._weight if self._weight > 0.0 else math.nan

    def reset(self) -> None:
        self._sum = self._weight = 0.0


def remaining_seconds(elapsed_s: float, done: float, total: float = 1.0) -> float | None:
    """Seconds left at the pace so far: `done` of `total` units took `elapsed_s`; None before any is done."""
    if done <= 1e-9 or not math.isfinite(elapsed_s):
        return None
    return max(elapsed_s * (total - done) / done, 0.0)
