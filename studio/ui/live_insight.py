"""The Signals tab: gradient norm, learning rate, throughput and CUDA memory per logged step, and a
small grid of validation predictions refreshed after every epoch.

`LiveInsightView(history)` draws the step series of a `RunHistory` (the window's, shared with the
curves, so a live run and a reopened one look the same) and redraws from a timer, so a burst of
records costs one repaint; `set_predictions(samples)` takes the `PredictionSamples` of
`ValidationSamples`. Built without a history it keeps its own, fed with `add_step`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from studio.engine.prediction_samples import PredictionSamples
from studio.engine.records import StepRecord
from studio.ui.chart_style import add_legend, log_axis_range, pen, styled_plot
from studio.ui.history import RunHistory, StepSignals
from studio.ui.qt_helpers import named
from studio.ui.sample_grid import SampleGridView
from studio.ui.theme import SERIES, current_theme

PLOTS = ("grad", "lr", "speed")  # the timer redraws one in turn; "speed" brings the CUDA memory plot with it
SAMPLES_EVERY_S = 1.0  # the validation grid is rebuilt at most this often
SAMPLES_HINT = "Validation predictions appear here after the first epoch"


def _round_up(value: float) -> float:
    """The next round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten) at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value)


class LiveInsightView(QWidget):
    """Gradient norm, learning rate, throughput and CUDA memory per logged step, plus validation samples."""

    def __init__(self, history: RunHistory | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("liveInsightView")
        self.history = history if history is not None else RunHistory(self)
        self._dirty: set[str] = set()
        self._turn = 0
        self._pending_samples: PredictionSamples | None = None
        self._samples_at = -math.inf
        self._lr_top: tuple[float, float] | None = None
        self._tops: dict[str, float] = {}
        self._stats_at = 0.0

        self.grad_plot = styled_plot("Gradient norm", "step", "‖g‖₂ (global L2)", object_name="gradNormPlot")
        self.lr_plot = styled_plot("Learning rate", "step", "lr", object_name="lrPlot")
        self.lr_plot.getPlotItem().setLogMode(y=True)
        self.speed_plot = styled_plot("Throughput", "step", "samples / s", object_name="throughputPlot")
        self.memory_plot = styled_plot("CUDA memory", "step", "MiB", object_name="cudaMemoryPlot")
        for plot in (self.grad_plot, self.lr_plot, self.speed_plot, self.memory_plot):
            plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            # No grid, as on the Training tab's plots: a live axis's grid lines are redrawn across the
            # whole plot at each range change (20-50 ms on the GUI thread while training).
            plot.getPlotItem().showGrid(x=False, y=False)
        t = current_theme()
        # Raw values thin and faint, their running mean drawn over them.
        self.grad_raw = self.grad_plot.plot([], [], pen=pen(t.accent, 1.0, alpha=90))
        self.grad_curve = self.grad_plot.plot([], [], pen=pen(t.accent, 2.2))
        self.lr_curve = self.lr_plot.plot([], [], pen=pen(SERIES[6], 2.0))
        self.speed_raw = self.speed_plot.plot([], [], pen=pen(SERIES[4], 1.0, alpha=90))
        self.speed_curve = self.speed_plot.plot([], [], pen=pen(SERIES[4], 2.2))
        legend = add_legend(self.memory_plot, offset=(10, 10))
        self.alloc_curve = self.memory_plot.plot([], [], pen=pen(SERIES[0], 2.0))
        self.reserved_curve = self.memory_plot.plot([], [], pen=pen(SERIES[1], 2.0, style=Qt.PenStyle.DashLine))
        legend.addItem(self.alloc_curve, "allocated")
        legend.addItem(self.reserved_curve, "reserved")
        self.grad_stats = named(QLabel(), "gradNormStats")
        self.grad_stats.setStyleSheet(f"color: {t.muted};")
        self.grad_stats.setWordWrap(True)  # a long read-out wraps instead of widening the window

        # The CUDA plot only takes room once a step reports CUDA memory; until then (a CPU run)
        # throughput spans the row instead of sitting beside an empty plot.
        self._grid = grid = QGridLayout()
        grid.addWidget(self.grad_plot, 0, 0)
        grid.addWidget(self.lr_plot, 0, 1)
        grid.addWidget(self.speed_plot, 1, 0, 1, 2)
        self.memory_plot.setVisible(False)
        plots = QWidget()
        pl = QVBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addLayout(grid, 1)
        pl.addWidget(self.grad_stats)

        self.samples_title = named(QLabel(SAMPLES_HINT), "valSamplesTitle")
        bold = QFont(self.samples_title.font())
        bold.setBold(True)
        self.samples_title.setFont(bold)
        self.samples_title.setWordWrap(True)
        self.samples = SampleGridView(thumb=60)
        self.samples.setObjectName("valSamplesGrid")
        self.samples.setMinimumWidth(300)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.samples_title)
        sl.addWidget(self.samples, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(plots)
        split.addWidget(side)
        # Room for four columns of samples, so a 24-image grid fits without scrolling.
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([760, 372])
        layout = QVBoxLayout(self)
        layout.addWidget(split)

        self._timer = QTimer(self)
        # Each plot five times a second, as the curves: live to the eye, light on the GUI thread.
        self._timer.setInterval(200 // len(PLOTS))
        self._timer.timeout.connect(self._on_tick)
        self._timer.start()
        self.history.changed.connect(self._mark_dirty)
        self.history.reset.connect(self._on_reset)
        self._dirty = set() if self.history.is_empty() else set(PLOTS)

    # -- feeding -------------------------------------------------------------------------------

    @property
    def series(self) -> StepSignals:
        """The step series drawn here (the history's)."""
        return self.history.signals

    def _mark_dirty(self) -> None:
        self._dirty = set(PLOTS)

    def _on_reset(self) -> None:
        """The history was cleared or reloaded: a new run, or another run opened."""
        self._lr_top, self._tops, self._stats_at = None, {}, 0.0
        self._dirty = set(PLOTS)
        self._pending_samples, self._samples_at = None, -math.inf
        self.samples.set_message("")
        self.samples_title.setText(SAMPLES_HINT)

    def clear(self) -> None:
        """Forget everything (a view with its own history; the window's is cleared by the window)."""
        self.history.clear()

    def add_step(self, record: StepRecord) -> None:
        """Take one step record into this view's history; drawn at the next timer tick."""
        self.history.add_records([record])

    def set_predictions(self, samples: PredictionSamples) -> None:
        """Show one epoch's predictions for the watched validation images, wrong ones outlined in red.

        At most once a second, and only on screen: short epochs end several times a second, and each
        grid costs the GUI thread a few dozen thumbnails. The latest epoch waits for the next tick."""
        self._pending_samples = samples
        self._show_pending_samples()

    def _show_pending_samples(self) -> None:
        samples = self._pending_samples
        hidden = not self.isVisible() and self.window().isVisible()  # another tab is on screen
        if samples is None or hidden or time.monotonic() - self._samples_at < SAMPLES_EVERY_S:
            return
        self._pending_samples, self._samples_at = None, time.monotonic()
        labels = samples.labels
        captions, states, tips = [], [], []
        for t, p, c in zip(samples.true, samples.pred, samples.confidence, strict=True):
            wrong = t != p
            captions.append((f"{labels[p]} · {c:.0%}", f"true {labels[t]}" if wrong else ""))
            states.append("wrong" if wrong else "right")
            tips.append(f"true '{labels[t]}', predicted '{labels[p]}' ({c:.1%})")
        self.samples.set_samples(samples.images, captions, states, tips)
        n, bad = len(samples.true), sum(samples.wrong)
        self.samples_title.setText(
            f"Validation predictions after epoch {samples.epoch}: "
            f"{n - bad} of {n} right" + (f", {bad} wrong (red)" if bad else "")
        )

    # -- drawing -------------------------------------------------------------------------------

    def _show_memory_plot(self, on: bool) -> None:
        if on == self.memory_plot.isVisible():
            return
        self._grid.removeWidget(self.speed_plot)
        if on:
            self._grid.addWidget(self.speed_plot, 1, 0)
            self._grid.addWidget(self.memory_plot, 1, 1)
        else:
            self._grid.removeWidget(self.memory_plot)
            self._grid.addWidget(self.speed_plot, 1, 0, 1, 2)
        self.memory_plot.setVisible(on)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._redraw()  # what arrived while another tab was on screen
        self._show_pending_samples()

    def _redraw(self, plots: tuple[str, ...] = PLOTS) -> None:
        """Copy what is new into `plots` (all of them unless the timer names one)."""
        if not self._dirty or not self.isVisible():  # a hidden tab costs the GUI thread nothing
            return
        for name in plots:
            if name in self._dirty:
                self._dirty.discard(name)
                getattr(self, f"_draw_{name}")(self.series)
        now = time.monotonic()
        if now - self._stats_at >= 1.0 or self.series.n <= 1:
            self._stats_at = now
            self.grad_stats.setText(self._stats_text())

    def _on_tick(self) -> None:
        """The timer redraws one plot a tick, in turn: three short repaints instead of one long one."""
        self._turn += 1
        self._redraw((PLOTS[self._turn % len(PLOTS)],))
        self._show_pending_samples()

    # Each setData re-paths a curve in Python while training competes for the GIL: only what changed
    # is touched. Axes only grow, in round steps: re-ticking an axis costs more than drawing the
    # curves, and a steady scale is easier to read as the lines grow into it.
    def _draw_grad(self, s: StepSignals) -> None:
        x = s.view("step")
        self.grad_raw.setData(x, s.view("grad_norm"), connect="finite")
        self.grad_curve.setData(x, s.view("grad_norm_smooth"), connect="finite")
        self._grow_axes("grad_norm", self.grad_plot)

    def _draw_lr(self, s: StepSignals) -> None:
        x, lr = s.view("step"), s.view("lr")
        ok = np.isfinite(lr) & (lr > 0)  # a log axis: 0.001 beside 10 must not read as 0
        self.lr_curve.setData(x[ok], lr[ok])
        bounds = (float(lr[ok].min()), float(lr[ok].max())) if ok.any() else None
        if bounds is not None and bounds != self._lr_top:  # at least a decade, so a constant rate reads as a level line
            self._lr_top = bounds
            self.lr_plot.setYRange(*log_axis_range(*bounds), padding=0)
        self._grow_axes(None, self.lr_plot)

    def _draw_speed(self, s: StepSignals) -> None:
        x = s.view("step")
        self.speed_raw.setData(x, s.view("samples_per_s"), connect="finite")
        self.speed_curve.setData(x, s.view("samples_per_s_smooth"), connect="finite")
        self._grow_axes("samples_per_s", self.speed_plot)
        self._show_memory_plot(self.history.cuda_seen)
        if self.history.cuda_seen:
            self.alloc_curve.setData(x, s.view("cuda_allocated_mb"), connect="finite")
            reserved = s.view("cuda_reserved_mb")
            self.reserved_curve.setData(x, reserved, connect="finite")
            if np.isfinite(reserved).any():  # headroom above the lines for the legend
                self.memory_plot.setYRange(0, float(np.nanmax(reserved)) * 1.4, padding=0)
            self._grow_axes(None, self.memory_plot)

    def _grow_axes(self, key: str | None, plot: pg.PlotWidget) -> None:
        """Widen `plot`'s x axis to the steps so far, and its y axis to the series `key`."""
        x = self.series.view("step")
        if len(x):
            self._grow(f"x.{plot.objectName()}", float(x[-1]), plot, "x")
        if key is not None:
            v = self.series.view(key)
            v = v[np.isfinite(v)]
            if len(v):
                self._grow(key, float(v.max()), plot, "y")

    def _grow(self, key: str, high: float, plot: pg.PlotWidget, axis: str) -> None:
        """Widen an axis (from zero) to a round value well above `high`, only when `high` passes its
        end: half as much again, so that a growing run re-ticks its axes a few times, not at every step."""
        if not math.isfinite(high) or high <= self._tops.get(key, 0.0):
            return
        top = _round_up(high * 1.5)
        self._tops[key] = top
        if axis == "x":
            plot.setXRange(0, top, padding=0)
        else:
            plot.setYRange(0, top, padding=0)

    def _stats_text(self) -> str:
        s = self.series
        g = s.view("grad_norm")
        g = g[np.isfinite(g)]
        speed = s.view("samples_per_s")
        speed = speed[np.isfinite(speed)]
        parts = []
        if len(g):
            parts.append(f"gradient norm: last {g[-1]:.3g}, median {np.median(g):.3g}, max {g.max():.3g}")
        if len(speed):
            parts.append(f"throughput: last {speed[-1]:,.0f} samples/s")
        if s.n and not self.history.cuda_seen:
            parts.append("no CUDA memory plot: this run is not on a CUDA GPU")
        return " · ".join(parts)

    def point_count(self) -> int:
        return self.series.n
