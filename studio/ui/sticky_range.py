"""`StickyRange`: a live plot's y range that follows the data but moves only when it must.

pyqtgraph's auto-range refits the axis whenever a curve's bounds move by a hair, and every refit
redraws the axis's ticks and labels (the costliest part of a live plot's repaint: several ms a
plot). A range that moves only when the data leaves it, or fills too little of it, looks the
same to the eye and repaints its axis a few times a run instead of at every redraw.
"""

from __future__ import annotations

import math

import numpy as np


class RunningBounds:
    """The finite minimum and maximum (and the smallest positive value) of a growing array, read
    incrementally: each `update` looks only at what was appended since the last one."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.seen = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.positive_lo = math.inf

    def update(self, values: np.ndarray) -> None:
        if len(values) < self.seen:  # the array was cleared and refilled
            self.clear()
        new = values[self.seen :]
        self.seen = len(values)
        finite = new[np.isfinite(new)]
        if len(finite):
            self.lo = min(self.lo, float(finite.min()))
            self.hi = max(self.hi, float(finite.max()))
            positive = finite[finite > 0]
            if len(positive):
                self.positive_lo = min(self.positive_lo, float(positive.min()))


class StickyRange:
    """Decides when a y range must move: `fit(lo, hi)` returns the new range, or None to keep it.

    The range moves when the data comes closer to an edge than half the padding (a marker drawn at
    the last point would be cut), or fills less than `fill` of it; it is then the data's span with
    `pad` of it above and below.
    """

    def __init__(self, pad: float = 0.08, fill: float = 0.55) -> None:
        self.pad = pad
        self.fill = fill
        self.range: tuple[float, float] | None = None

    def clear(self) -> None:
        self.range = None

    def fit(self, lo: float, hi: float) -> tuple[float, float] | None:
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
            return None
        span = max(hi - lo, abs(hi) * 1e-3, 1e-9)  # a flat line still gets a band around it
        if self.range is not None:
            a, b = self.range
            edge = 0.5 * self.pad * (b - a) / (1 + 2 * self.pad)
            if a + edge <= lo and hi <= b - edge and span >= self.fill * (b - a):
                return None
        self.range = (lo - self.pad * span, hi + self.pad * span)
        return self.range
