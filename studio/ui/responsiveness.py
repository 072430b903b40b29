"""`TimerLagProbe`: how late a short QTimer fires on the GUI thread, the measure of a frozen UI.

A 10 ms timer that fires 40 ms late means the user waited 40 ms for any click or repaint.
Used by the stress test and `benchmarks/gui_timer_lag.py`.

Beside the lateness (wall-clock: it grows on a machine busy with other work), the probe records
how much CPU time the GUI thread itself spent between two ticks: the work that held the timer
up, which other processes on the machine do not change.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer


class TimerLagProbe(QObject):
    """Runs a precise `interval_ms` timer and records, for each tick, how late it came (ms)."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.lags_ms: list[float] = []
        self.busy_ms: list[float] = []  # the GUI thread's own CPU time between two ticks
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self._last_cpu = 0.0

    def start(self) -> None:
        self.lags_ms.clear()
        self.busy_ms.clear()
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.lags_ms.append(max((now - self._last) * 1000.0 - self.interval_ms, 0.0))
        self.busy_ms.append((cpu - self._last_cpu) * 1000.0)
        self._last, self._last_cpu = now, cpu

    def percentile(self, p: float) -> float:
        return float(np.percentile(self.lags_ms, p)) if self.lags_ms else float("nan")

    def busy_percentile(self, p: float) -> float:
        return float(np.percentile(self.busy_ms, p)) if self.busy_ms else float("nan")

    def summary(self) -> str:
        return (
            f"{len(self.lags_ms)} ticks of a {self.interval_ms} ms timer: late by p50 "
            f"{self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms, max {max(self.lags_ms, default=0):.1f} ms; "
            f"GUI thread busy between ticks p99 {self.busy_percentile(99):.1f} ms, "
            f"max {max(self.busy_ms, default=0):.1f} ms"
        )
