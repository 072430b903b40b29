"""`PointSmoother`: TensorBoard's smoothing of a scalar curve, kept up to date as points arrive.

An exponential moving average over points with weight `w` (0 = the raw values, 0.99 = very
smooth), debiased as TensorBoard does so the curve does not start at zero. A non-finite point
(a diverged step) is drawn as a gap and leaves the average where it was. Only new points cost
anything; a new weight recomputes the curve once.
"""

from __future__ import annotations

import math

import numpy as np


class PointSmoother:
    """Call `smooth(values)` with the whole growing series; it returns the smoothed series."""

    def __init__(self, weight: float = 0.6) -> None:
        self.weight = weight
        self._out = np.empty(1024, dtype=np.float64)
        self.clear()

    def set_weight(self, weight: float) -> None:
        self.weight = min(max(float(weight), 0.0), 0.999)
        self.clear()

    def clear(self) -> None:
        self._n = 0
        self._last = 0.0
        self._count = 0
        self._first: float | None = None  # the first value seen: a shorter series means a new run

    def values(self) -> np.ndarray:
        return self._out[: self._n]

    def smooth(self, values: np.ndarray) -> np.ndarray:
        n = len(values)
        if n < self._n or (n and self._first is not None and values[0] != self._first and math.isfinite(values[0])):
            self.clear()
        if n > len(self._out):
            grown = np.empty(max(n, 2 * len(self._out)), dtype=np.float64)
            grown[: self._n] = self._out[: self._n]
            self._out = grown
        w = self.weight
        last, count = self._last, self._count
        for i in range(self._n, n):
            v = float(values[i])
            if i == 0:
                self._first = v
            if not math.isfinite(v):
                self._out[i] = math.nan
                continue
            last = last * w + (1.0 - w) * v
            count += 1
            self._out[i] = last / (1.0 - w**count) if w > 0 else v
        self._last, self._count, self._n = last, count, n
        return self._out[:n]
