"""`CurvesView(history)`: the live loss, accuracy and learning-rate plots (pyqtgraph).

Curves are created once; a `QTimer` copies what arrived into them, one plot a tick so that no
repaint is long, each plot five times a second; axes move only when the data needs it. Auto
downsampling ("peak") and clip-to-view keep 100k+ step points smooth. The plots share an x axis
in epochs, carry legends, and a hover line reads values out under each plot.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QLabel,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.ui.change_markers import ChangeMarkers
from studio.ui.chart_style import log_axis_range, pen
from studio.ui.history import RunHistory
from studio.ui.loss_smoothing import PointSmoother
from studio.ui.plot_card import PlotCard, fmt, nearest
from studio.ui.sticky_range import RunningBounds, StickyRange
from studio.ui.theme import Theme, current_theme

REDRAW_MS = 200  # each plot is redrawn 5 times a second: live to the eye, light on the GUI thread
PLOT_NAMES = ("loss", "accuracy", "lr")  # the timer redraws one in turn (see `_on_tick`)
DEFAULT_SMOOTHING = 0.6  # TensorBoard's default


class CurvesView(QWidget):
    """The three live plots of a `RunHistory`; call `apply_theme` after the app's theme changes."""

    def __init__(self, history: RunHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self._drawn: dict[str, tuple[int, ...]] = {}  # what each plot drew last (see `redraw`)
        self._turn = 0
        self._lr_top = (-1.0, -1.0)
        self._fitted_to = -1.0
        self._lr_drawn_at = 0.0
        self._task = "classification"
        # The loss and accuracy axes move only when the data needs it (`StickyRange`): an axis that
        # refits at every redraw redraws its ticks each time, the costliest part of a live repaint.
        self._loss_bounds = RunningBounds()
        self._y_ranges = {"loss": StickyRange(), "accuracy": StickyRange()}

        self.loss_card = PlotCard("Loss", "lossPlot", "loss")
        self.acc_card = PlotCard("Accuracy", "accuracyPlot", "accuracy", legend=(-8, -8))
        self.lr_card = PlotCard("Learning rate", "lrPlot", "lr", legend=(8, -8))
        self.loss_plot = self.loss_card.plot
        self.accuracy_plot = self.acc_card.plot
        self.lr_plot = self.lr_card.plot
        self.plots = (self.loss_plot, self.accuracy_plot, self.lr_plot)
        # The plots share the x axis (epochs) by value, not by pixels: pyqtgraph's setXLink aligns
        # screen positions, which skews plots that sit side by side. Until the user zooms, the axis
        # spans the whole run, so the curves fill in as training goes.
        self._follow = True
        self._linking = False
        for p in self.plots:
            item = p.getPlotItem()
            item.setLabel("bottom", "epoch")
            for axis in ("left", "bottom"):
                item.getAxis(axis).enableAutoSIPrefix(False)
            vb = item.getViewBox()
            vb.enableAutoRange(x=False, y=False)
            vb.sigRangeChangedManually.connect(self._on_manual_range)
            vb.sigXRangeChanged.connect(lambda _vb, rng, src=p: self._sync_x(src, rng))
            p.scene().sigMouseClicked.connect(self._on_click)
        self.accuracy_plot.getPlotItem().setLabel("left", "accuracy (%)")
        self.lr_plot.getPlotItem().getViewBox().enableAutoRange(y=False)
        self.lr_plot.getPlotItem().setLogMode(y=True)  # 0.001 beside 10 must not read as 0
        self.lr_plot.getPlotItem().setLabel("left", "lr (log)")
        self.lr_plot.setYRange(*log_axis_range(1e-3, 1e-3), padding=0)

        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.acc_card)
        lower.addWidget(self.lr_card)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 2)
        lower.setChildrenCollapsible(False)
        lower.setHandleWidth(10)
        self.lower_split = lower
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.loss_card)
        split.addWidget(lower)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        split.setHandleWidth(10)
        split.setStyleSheet("QSplitter::handle { background: transparent; }")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setObjectName("lossLogScaleCheck")
        self.log_scale.setToolTip("Show the loss on a logarithmic axis: late, small improvements become visible")
        self.log_scale.toggled.connect(self._on_log_scale)
        self.loss_card.head.insertWidget(1, self.log_scale)
        self.loss_card.head.insertSpacing(1, 12)
        # TensorBoard's smoothing slider: 0 draws every point's loss, 0.99 a slow moving average.
        self.smoother = PointSmoother(DEFAULT_SMOOTHING)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("lossSmoothingSlider")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(round(DEFAULT_SMOOTHING * 100))
        self.smoothing.setFixedWidth(90)
        self.smoothing_label = QLabel()
        self.smoothing_label.setObjectName("plotReadout")
        self.smoothing.valueChanged.connect(self._on_smoothing)
        tip = "How much the per-step loss is smoothed (an exponential moving average, as TensorBoard's slider)"
        self.smoothing.setToolTip(tip)
        self.smoothing_label.setToolTip(tip)
        self.loss_card.head.insertWidget(3, self.smoothing_label)
        self.loss_card.head.insertWidget(4, self.smoothing)
        self.loss_card.head.insertSpacing(3, 12)
        self._on_smoothing(self.smoothing.value())
        self._make_curves()
        self._placeholder = QLabel(
            "Press Train to start: the curves draw here live.\nChange the learning rate or batch size while it trains.",
            self.loss_plot,
        )
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty_shown: bool | None = None
        self._placeholder.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.loss_plot.installEventFilter(self)

        self._hover_lines = []
        for p in (self.loss_plot, self.accuracy_plot, self.lr_plot):
            line = pg.InfiniteLine(angle=90, movable=False)
            line.setVisible(False)
            line.setZValue(50)
            p.addItem(line, ignoreBounds=True)
            self._hover_lines.append(line)
            p.scene().sigMouseMoved.connect(lambda pos, plot=p: self._on_hover(plot, pos))
        self.apply_theme(current_theme())

        history.reset.connect(self._on_reset)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS // len(PLOT_NAMES))
        self._timer.timeout.connect(self._on_tick)
        self._timer.start()

    # -- construction ----------------------------------------------------------------------------

    def _make_curves(self) -> None:
        def curve(plot: pg.PlotWidget, name: str | None, symbol: str | None = None) -> pg.PlotDataItem:
            item = plot.plot([], [], name=name, symbol=symbol, symbolSize=7 if symbol else None)
            # Loss can be NaN: skipFiniteCheck stays off so pyqtgraph breaks the line there.
            if symbol is None:  # step curves grow to 100k+ points; epoch curves stay small
                item.setDownsampling(auto=True, method="peak")
                item.setClipToView(True)
            return item

        self.c_step_raw = curve(self.loss_plot, None)
        self.c_step_smooth = curve(self.loss_plot, "train (per step)")
        self.c_epoch_train = curve(self.loss_plot, "train (epoch)", "o")
        self.c_epoch_val = curve(self.loss_plot, "val (epoch)", "s")
        self.c_acc_train = curve(self.accuracy_plot, "train", "o")
        self.c_acc_val = curve(self.accuracy_plot, "val", "s")
        self.c_lr = curve(self.lr_plot, "learning rate")
        # One item per plot draws all of its change markers; only the loss plot names every change.
        self.markers = (
            ChangeMarkers(self.loss_plot, "#8b5cf6"),
            ChangeMarkers(self.accuracy_plot, "#8b5cf6", labels=()),
            ChangeMarkers(self.lr_plot, "#8b5cf6", labels=("lr",)),
        )

    def apply_theme(self, t: Theme) -> None:
        font = QFont()
        font.setPointSizeF(8.5)
        for card in (self.loss_card, self.acc_card, self.lr_card):
            p = card.plot
            p.setBackground(t.plot_bg)
            item = p.getPlotItem()
            for axis in ("left", "bottom"):
                ax = item.getAxis(axis)
                ax.setPen(pg.mkPen(t.grid))
                ax.setTextPen(pg.mkPen(t.plot_fg))
                ax.setTickFont(font)
                ax.label.setDefaultTextColor(QColor(t.plot_fg))
            if card.legend is not None:
                bg = QColor(t.plot_bg)
                bg.setAlpha(200)
                card.legend.setLabelTextColor(t.plot_fg)
                card.legend.setBrush(pg.mkBrush(bg))
        self.c_step_raw.setPen(pen(t.train, 1.0, 70))
        self.c_step_smooth.setPen(pen(t.train, 2.0))
        self.c_epoch_train.setPen(pen(t.train, 1.5, 160, Qt.PenStyle.DashLine))
        self.c_epoch_val.setPen(pen(t.val, 2.2))
        self.c_acc_train.setPen(pen(t.train, 2.2))
        self.c_acc_val.setPen(pen(t.val, 2.2))
        self.c_lr.setPen(pen(t.lr, 2.0))
        for c, color in (
            (self.c_epoch_train, t.train),
            (self.c_epoch_val, t.val),
            (self.c_acc_train, t.train),
            (self.c_acc_val, t.val),
        ):
            c.setSymbolBrush(pg.mkBrush(color))
            c.setSymbolPen(pg.mkPen(t.plot_bg, width=1.5))
        for line in self._hover_lines:
            line.setPen(pen(t.plot_fg, 1.0, 110, Qt.PenStyle.DotLine))
        for markers in self.markers:
            markers.set_colors(t.marker, t.danger)
        self._placeholder.setStyleSheet(f"color: {t.muted}; font-size: 11pt; background: transparent;")
        self._theme = t

    # -- updates ---------------------------------------------------------------------------------

    def set_task(self, task: str) -> None:
        """Regression has no accuracy: its plot goes, and the learning rate takes the row."""
        self._task = task
        self.acc_card.setVisible(task == "classification")

    def _on_smoothing(self, value: int) -> None:
        self.smoother.set_weight(value / 100)
        self.smoothing_label.setText(f"Smoothing {value / 100:.2f}")
        self._drawn.pop("loss", None)

    def follow_run(self) -> None:
        """Show the whole run again (after a zoom), as a new run does."""
        self._follow = True
        self._fitted_to = -1.0
        self._refit_y()

    def _refit_y(self) -> None:
        for sticky in self._y_ranges.values():
            sticky.clear()
        self._fit_loss_y()
        self._fit_accuracy_y()

    def _on_reset(self) -> None:
        for curve in (
            self.c_step_raw,
            self.c_step_smooth,
            self.c_lr,
            self.c_epoch_train,
            self.c_epoch_val,
            self.c_acc_train,
            self.c_acc_val,
        ):
            curve.setData([], [])
        for markers in self.markers:
            markers.clear()
        self.smoother.clear()
        self._loss_bounds.clear()
        for sticky in self._y_ranges.values():
            sticky.clear()
        self._drawn.clear()
        self._lr_top = (-1.0, -1.0)
        self._fitted_to = -1.0
        self._follow = True

    def redraw(self, plots: tuple[str, ...] = PLOT_NAMES) -> None:
        """Copy what is new in the history into `plots` (all three unless the timer names one)."""
        if self._waiting_hidden():
            return
        h = self.history
        for name in plots:
            getattr(self, f"_draw_{name}")(h)
        empty = len(h.step_x) == 0 and len(h.epoch_x["train"]) == 0
        if empty != self._empty_shown:
            self._empty_shown = empty
            self._placeholder.setVisible(empty)
            for card in (self.loss_card, self.acc_card, self.lr_card):  # the hint never sits on a legend
                if card.legend is not None:
                    card.legend.setVisible(not empty)
        if self._follow:
            self._fit_x()

    def _on_tick(self) -> None:
        """The timer's redraw: one plot a tick, in turn. Each repaint is then a third of one that
        redraws all three plots at once, so the window never waits long for any of them."""
        self._turn += 1
        name = PLOT_NAMES[self._turn % len(PLOT_NAMES)]
        if name == "accuracy" and self._task != "classification":
            return
        self.redraw((name,))

    # Each plot is drawn only when what it shows changed: `_drawn` keeps what each drew last.
    def _draw_loss(self, h: RunHistory) -> None:
        x = h.step_x.view()
        drawn = (len(x), len(h.epoch_x["train"]), len(h.epoch_x["val"]), len(h.markers), len(h.alarms))
        before = self._drawn.get("loss", (-1,) * 5)
        if drawn == before:
            return
        self._drawn["loss"] = drawn
        if drawn[0] != before[0]:
            self.c_step_raw.setData(x, h.step_loss.view())
            self.c_step_smooth.setData(x, self.smoother.smooth(h.step_loss.view()))
        if drawn[1:3] != before[1:3]:
            self._set_epoch_curves((self.c_epoch_train, self.c_epoch_val), h.epoch_loss, 1.0)
        if drawn[3:] != before[3:]:
            self._draw_markers(self.markers[0])
        self._fit_loss_y()

    def _draw_accuracy(self, h: RunHistory) -> None:
        drawn = (len(h.epoch_x["train"]), len(h.epoch_x["val"]), len(h.markers), len(h.alarms))
        before = self._drawn.get("accuracy", (-1,) * 4)
        if drawn == before:
            return
        self._drawn["accuracy"] = drawn
        if drawn[:2] != before[:2]:
            self._set_epoch_curves((self.c_acc_train, self.c_acc_val), h.epoch_acc, 100.0)
        if drawn[2:] != before[2:]:
            self._draw_markers(self.markers[1])
        self._fit_accuracy_y()

    def _draw_lr(self, h: RunHistory) -> None:
        x = h.step_x.view()
        drawn = (len(x), len(h.markers), len(h.alarms))
        before = self._drawn.get("lr", (-1,) * 3)
        now = time.perf_counter()
        # The learning rate changes rarely: its plot is redrawn twice a second, or at once on a change.
        if drawn == before or (drawn[1:] == before[1:] and now - self._lr_drawn_at < 0.5):
            return
        self._drawn["lr"], self._lr_drawn_at = drawn, now
        if drawn[0] != before[0]:
            lrs = h.step_lr.view()
            self.c_lr.setData(x, lrs)
            positive = lrs[np.isfinite(lrs) & (lrs > 0)]
            lo, hi = (float(positive.min()), float(positive.max())) if len(positive) else (1e-3, 1e-3)
            if (lo, hi) != self._lr_top:
                # A decade of room at least (a constant rate is a flat line, not noise around it), and
                # headroom above for the change labels.
                self._lr_top = (lo, hi)
                self.lr_plot.setYRange(*log_axis_range(lo, hi, above=0.35), padding=0)
        if drawn[1:] != before[1:]:
            self._draw_markers(self.markers[2])

    def _draw_markers(self, markers: ChangeMarkers) -> None:
        markers.set_markers(self.history.markers)
        for i, why in self.history.alarms.items():
            markers.set_alarm(i, why)

    def _set_epoch_curves(self, curves: tuple[pg.PlotDataItem, pg.PlotDataItem], values: Any, scale: float) -> None:
        h = self.history
        for curve, split in zip(curves, ("train", "val"), strict=True):
            xs, ys = h.epoch_x[split].view(), values[split].view()
            keep = np.isfinite(ys)  # a diverged epoch has no point; symbols cannot draw NaN
            curve.setData(xs[keep], ys[keep] * scale)

    def _on_log_scale(self, on: bool) -> None:
        self.loss_plot.getPlotItem().setLogMode(y=on)
        self._y_ranges["loss"].clear()  # the axis is in log10 units now, or no longer
        self._fit_loss_y()

    def _fit_loss_y(self) -> None:
        """The loss axis spans every step's loss and every epoch's, on the log axis too."""
        if not self._follow:
            return  # the user zoomed: the range is theirs until a double-click
        h = self.history
        self._loss_bounds.update(h.step_loss.view())
        lo, hi, positive = self._loss_bounds.lo, self._loss_bounds.hi, self._loss_bounds.positive_lo
        for split in ("train", "val"):
            ys = h.epoch_loss[split].view()
            ys = ys[np.isfinite(ys)]
            if len(ys):
                lo, hi = min(lo, float(ys.min())), max(hi, float(ys.max()))
                above = ys[ys > 0]
                positive = min(positive, float(above.min())) if len(above) else positive
        if self.log_scale.isChecked():
            if not (np.isfinite(positive) and hi > 0):
                return
            lo, hi = float(np.log10(positive)), float(np.log10(hi))
        rng = self._y_ranges["loss"].fit(lo, hi)
        if rng is not None:
            self.loss_plot.setYRange(*rng, padding=0)

    def _fit_x(self, force: bool = False) -> None:
        h = self.history
        xs = [h.epochs_total, 1.0]
        if len(h.step_x):
            xs.append(float(h.step_x.view()[-1]))
        if len(h.epoch_x["train"]):
            xs.append(float(h.epoch_x["train"].view()[-1]))
        if max(xs) == self._fitted_to and not force:
            return
        self._fitted_to = max(xs)
        self._linking = True
        try:
            for p in self.plots:
                p.setXRange(0.0, max(xs), padding=0.02)
        finally:
            self._linking = False

    def _on_manual_range(self, *_: Any) -> None:
        self._follow = False
        self._fitted_to = -1.0

    def _sync_x(self, src: pg.PlotWidget, rng: Any) -> None:
        if self._linking:
            return
        self._linking = True
        try:
            for p in self.plots:
                if p is not src:
                    p.setXRange(*rng, padding=0)
        finally:
            self._linking = False

    def _on_click(self, event: Any) -> None:
        if event.double():  # double-click: back to showing the whole run
            self._follow = True
            self._fit_x(force=True)
            self._refit_y()

    def _fit_accuracy_y(self) -> None:
        if not self._follow:
            return
        h = self.history
        acc = np.concatenate([h.epoch_acc["train"].view(), h.epoch_acc["val"].view()]) * 100
        acc = acc[np.isfinite(acc)]
        # An empty accuracy plot still reads as 0-100 %.
        rng = self._y_ranges["accuracy"].fit(*((float(acc.min()), float(acc.max())) if len(acc) else (0.0, 100.0)))
        if rng is not None:
            self.accuracy_plot.setYRange(*rng, padding=0)

    def point_count(self) -> int:
        """Step points on the loss plot (what tests and the status line read); while another tab is on
        screen, the points the plot draws when it is shown again."""
        if self._waiting_hidden():
            return len(self.history.step_x)
        x, _ = self.c_step_smooth.getOriginalDataset()
        return 0 if x is None else len(x)

    # -- hover read-out --------------------------------------------------------------------------

    def _on_hover(self, plot: pg.PlotWidget, pos: QPointF) -> None:
        vb = plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            for line in self._hover_lines:
                line.setVisible(False)
            self._update_readouts(None)
            return
        x = vb.mapSceneToView(pos).x()
        for line in self._hover_lines:
            line.setPos(x)
            line.setVisible(True)
        self._update_readouts(x)

    def _update_readouts(self, x: float | None) -> None:
        t = self._theme
        if x is None:
            for card in (self.loss_card, self.acc_card, self.lr_card):
                card.readout.setText("")
            return
        h = self.history
        (x0, x1), _ = self.loss_plot.getPlotItem().getViewBox().viewRange()
        max_dx = max((x1 - x0) * 0.03, 1e-9)
        sx = h.step_x.view()

        def span(color: str, text: str) -> str:
            return f"<span style='color:{color}'>{text}</span>"

        step_loss = nearest(sx, self.smoother.values(), x, max_dx)
        ex = {s: h.epoch_x[s].view() for s in ("train", "val")}
        parts = [f"epoch {x:.2f}"]
        if step_loss is not None:
            parts.append(span(t.train, f"train {fmt(step_loss)}"))
        val = nearest(ex["val"], h.epoch_loss["val"].view(), x, max(max_dx, 0.25))
        if val is not None:
            parts.append(span(t.val, f"val {fmt(val)}"))
        self.loss_card.readout.setText("  ·  ".join(parts))
        acc_parts = [f"epoch {x:.2f}"]
        for split, color in (("train", t.train), ("val", t.val)):
            v = nearest(ex[split], h.epoch_acc[split].view(), x, max(max_dx, 0.25))
            if v is not None:
                acc_parts.append(span(color, f"{split} {v:.2%}"))
        self.acc_card.readout.setText("  ·  ".join(acc_parts))
        lr = nearest(sx, h.step_lr.view(), x, max_dx)
        self.lr_card.readout.setText(f"epoch {x:.2f}" + (f"  ·  {span(t.lr, f'lr {lr:.3g}')}" if lr else ""))

    def _waiting_hidden(self) -> bool:
        """Another tab is on screen: drawing waits until this one is shown (`showEvent`)."""
        return not self.isVisible() and self.window().isVisible()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.redraw()  # what arrived while another tab was on screen

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.loss_plot and isinstance(event, QResizeEvent):
            self._placeholder.setGeometry(0, 0, event.size().width(), event.size().height())
        return super().eventFilter(obj, event)
