"""Live training signals beyond loss: gradient norm, learning rate, throughput, CUDA memory,
and a small grid of validation predictions refreshed after every epoch.

Fed by the main window: `add_step(event)` with each `StepEnd` the worker forwards (any object with
`step`, `grad_norm`, `lr`, `samples_per_s`, `cuda_memory_allocated`, `cuda_memory_reserved`), and
`set_predictions(samples)` with the `PredictionSamples` of `ValidationSamples`. Curves grow in
numpy buffers and are redrawn from a timer, so a burst of events costs one repaint.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from studio.engine.prediction_samples import PredictionSamples
from studio.ui.chart_style import ACCENT, MUTED, add_legend, styled_plot
from studio.ui.sample_grid import SampleGridView

MB = 1024 * 1024
FIELDS = ("step", "grad_norm", "lr", "samples_per_s", "cuda_allocated_mb", "cuda_reserved_mb",
          "grad_norm_smooth", "samples_per_s_smooth")
SMOOTHED = {"grad_norm": "grad_norm_smooth", "samples_per_s": "samples_per_s_smooth"}
SMOOTHING = 0.8  # running average drawn over the raw line, as TensorBoard's smoothing slider does


class _Series:
    """Growing float buffers, one per field, doubled when full."""

    def __init__(self) -> None:
        self.n = 0
        self.data = {f: np.full(256, np.nan) for f in FIELDS}
        self._avg = {f: (0.0, 0) for f in SMOOTHED}  # running sum and count for the debiased average

    def append(self, values: dict[str, float]) -> None:
        if self.n == len(self.data["step"]):
            for f in FIELDS:
                grown = np.full(2 * self.n, np.nan)
                grown[:self.n] = self.data[f]
                self.data[f] = grown
        values = dict(values)
        for raw, smooth in SMOOTHED.items():
            v = values.get(raw, math.nan)
            avg, k = self._avg[raw]
            if math.isfinite(v):
                avg, k = SMOOTHING * avg + (1 - SMOOTHING) * v, k + 1
                self._avg[raw] = (avg, k)
            values[smooth] = avg / (1 - SMOOTHING ** k) if k else math.nan
        for f in FIELDS:
            self.data[f][self.n] = values.get(f, math.nan)
        self.n += 1

    def view(self, field: str) -> np.ndarray:
        return self.data[field][:self.n]


def _round_up(value: float) -> float:
    """The next round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten) at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


class LiveInsightView(QWidget):
    """Gradient norm, learning rate, throughput and CUDA memory per logged step, plus validation samples."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("liveInsightView")
        self.series = _Series()
        self._dirty = False
        self._cuda_seen = False
        self._lr_top: float | None = None
        self._tops: dict[str, float] = {}
        self._stats_at = 0.0

        self.grad_plot = styled_plot("Gradient norm (global L2)", "step", "‖g‖₂", object_name="gradNormPlot")
        self.lr_plot = styled_plot("Learning rate", "step", "lr", object_name="lrPlot")
        self.speed_plot = styled_plot("Throughput", "step", "samples / s", object_name="throughputPlot")
        self.memory_plot = styled_plot("CUDA memory", "step", "MiB", object_name="cudaMemoryPlot")
        for plot in (self.grad_plot, self.lr_plot, self.speed_plot, self.memory_plot):
            plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        self.grad_raw = self.grad_plot.plot([], [], pen=pg.mkPen("#b9c9ec", width=1))
        self.grad_curve = self.grad_plot.plot([], [], pen=pg.mkPen(ACCENT, width=2.2))
        self.lr_curve = self.lr_plot.plot([], [], pen=pg.mkPen("#b07aa1", width=2))
        self.speed_raw = self.speed_plot.plot([], [], pen=pg.mkPen("#c4e0bf", width=1))
        self.speed_curve = self.speed_plot.plot([], [], pen=pg.mkPen("#59a14f", width=2.2))
        legend = add_legend(self.memory_plot, offset=(10, 10))
        self.alloc_curve = self.memory_plot.plot([], [], pen=pg.mkPen("#4e79a7", width=2))
        self.reserved_curve = self.memory_plot.plot([], [], pen=pg.mkPen("#f28e2b", width=2,
                                                                          style=Qt.PenStyle.DashLine))
        legend.addItem(self.alloc_curve, "allocated")
        legend.addItem(self.reserved_curve, "reserved")
        self.grad_stats = QLabel(objectName="gradNormStats")
        self.grad_stats.setStyleSheet(f"color: {MUTED};")
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

        self.samples_title = QLabel("Validation predictions appear here after the first epoch",
                                    objectName="valSamplesTitle")
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
        self._timer.setInterval(200)  # five repaints a second, as the curves: live to the eye, light on the GUI thread
        self._timer.timeout.connect(self._redraw)
        self._timer.start()

    # -- feeding -------------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything: a new run starts."""
        self.series = _Series()
        self._cuda_seen = False
        self._lr_top, self._tops, self._stats_at = None, {}, 0.0
        self._dirty = True
        self.samples.set_message("")
        self.samples_title.setText("Validation predictions appear here after the first epoch")

    def add_step(self, event: Any) -> None:
        """Take one `StepEnd` (or any object with its fields); drawn at the next timer tick."""
        alloc = getattr(event, "cuda_memory_allocated", None)
        reserved = getattr(event, "cuda_memory_reserved", None)
        self._cuda_seen = self._cuda_seen or alloc is not None
        self.series.append({"step": _num(event.step), "grad_norm": _num(getattr(event, "grad_norm", None)),
                            "lr": _num(getattr(event, "lr", None)),
                            "samples_per_s": _num(getattr(event, "samples_per_s", None)),
                            "cuda_allocated_mb": _num(alloc) / MB, "cuda_reserved_mb": _num(reserved) / MB})
        self._dirty = True

    def add_records(self, records: Iterable[dict[str, Any]]) -> None:
        """Load the step records of a run's metrics.jsonl (to show a finished or resumed run)."""
        for r in records:
            if r.get("kind") != "step":
                continue
            self.series.append({"step": _num(r.get("step")), "grad_norm": _num(r.get("grad_norm")),
                                "lr": _num(r.get("lr")), "samples_per_s": _num(r.get("samples_per_s")),
                                "cuda_allocated_mb": _num(r.get("cuda_memory_allocated")) / MB,
                                "cuda_reserved_mb": _num(r.get("cuda_memory_reserved")) / MB})
            self._cuda_seen = self._cuda_seen or r.get("cuda_memory_allocated") is not None
        self._dirty = True

    def set_predictions(self, samples: PredictionSamples) -> None:
        """Show one epoch's predictions for the watched validation images, wrong ones outlined in red."""
        labels = samples.labels
        captions, states, tips = [], [], []
        for t, p, c in zip(samples.true, samples.pred, samples.confidence):
            wrong = t != p
            captions.append((f"{labels[p]} · {c:.0%}", f"true {labels[t]}" if wrong else ""))
            states.append("wrong" if wrong else "right")
            tips.append(f"true '{labels[t]}', predicted '{labels[p]}' ({c:.1%})")
        self.samples.set_samples(samples.images, captions, states, tips)
        n, bad = len(samples.true), sum(samples.wrong)
        self.samples_title.setText(f"Validation predictions after epoch {samples.epoch}: "
                                   f"{n - bad} of {n} right" + (f", {bad} wrong (red)" if bad else ""))

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

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._redraw()  # what arrived while another tab was on screen

    def _redraw(self) -> None:
        if not self._dirty or not self.isVisible():  # a hidden tab costs the GUI thread nothing
            return
        self._dirty = False
        # Each setData re-paths a curve in Python while training competes for the GIL: only what
        # changed is touched, and the read-out text once a second.
        s = self.series
        x = s.view("step")
        self.grad_raw.setData(x, s.view("grad_norm"), connect="finite")
        self.grad_curve.setData(x, s.view("grad_norm_smooth"), connect="finite")
        lr = s.view("lr")
        ok = np.isfinite(lr)
        self.lr_curve.setData(x[ok], lr[ok])
        top = float(lr[ok].max()) * 1.15 if ok.any() else None
        if top is not None and top != self._lr_top:  # from zero, so a constant rate reads as a level line
            self._lr_top = top
            self.lr_plot.setYRange(0, top, padding=0)
        self.speed_raw.setData(x, s.view("samples_per_s"), connect="finite")
        self.speed_curve.setData(x, s.view("samples_per_s_smooth"), connect="finite")
        # Axes that only grow, in round steps: re-ticking an axis on every redraw costs more than
        # drawing the curves, and a steady scale is easier to read as the lines grow into it.
        if len(x):
            self._grow("x", float(x[-1]), (self.grad_plot, self.lr_plot, self.speed_plot, self.memory_plot))
        for key, plot in (("grad_norm", self.grad_plot), ("samples_per_s", self.speed_plot)):
            v = s.view(key)
            v = v[np.isfinite(v)]
            if len(v):
                self._grow(key, float(v.max()), (plot,))
        self._show_memory_plot(self._cuda_seen)
        if self._cuda_seen:
            self.alloc_curve.setData(x, s.view("cuda_allocated_mb"), connect="finite")
            reserved = s.view("cuda_reserved_mb")
            self.reserved_curve.setData(x, reserved, connect="finite")
            if np.isfinite(reserved).any():  # headroom above the lines for the legend
                self.memory_plot.setYRange(0, float(np.nanmax(reserved)) * 1.4, padding=0)
        now = time.monotonic()
        if now - self._stats_at >= 1.0 or s.n <= 1:
            self._stats_at = now
            self.grad_stats.setText(self._stats_text())

    def _grow(self, key: str, high: float, plots: tuple[pg.PlotWidget, ...]) -> None:
        """Widen an axis (from zero) to a round value above `high`, only when `high` passes its end."""
        if not math.isfinite(high) or high <= self._tops.get(key, 0.0):
            return
        top = _round_up(high * 1.1)
        self._tops[key] = top
        for plot in plots:
            if key == "x":
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
        if s.n and not self._cuda_seen:
            parts.append("no CUDA memory plot: this run is not on a CUDA GPU")
        return " · ".join(parts)

    def point_count(self) -> int:
        return self.series.n
