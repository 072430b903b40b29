"""The learning-rate finder dialog: loss against rate on a log axis, the suggestion marked.

The range test runs in a `BackgroundCall` on a copy of the configured model (its weights are put
back): its points stream in as the call's partial results (batched, ten times a second at most),
and Stop asks the test to end at its next step through the call's task state. Click the curve to
pick another rate; "Use this rate" emits `rate_chosen(float)`, which the main window connects to
`lrSpinBox`.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.config import Config
from studio.engine.lr_finder import LRFinderPoint, LRFinderResult, find_lr, smooth_losses
from studio.ui.background_call import BackgroundCall, TaskState
from studio.ui.chart_style import add_legend, pen, styled_plot, text_color
from studio.ui.qt_helpers import named
from studio.ui.theme import current_theme


class LRFinderDialog(QDialog):
    """Runs `find_lr(config)` in the background and shows the curve and the suggested rate."""

    rate_chosen = Signal(float)
    search_finished = Signal(object)  # LRFinderResult
    search_failed = Signal(str)

    def __init__(
        self,
        config: Config,
        parent: QWidget | None = None,
        *,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_steps: int = 100,
        autostart: bool = True,
    ) -> None:
        super().__init__(parent)
        theme = current_theme()
        self.setObjectName("lrFinderDialog")
        self.setWindowTitle("Learning-rate finder")
        self.config = config
        self.start_lr, self.end_lr, self.num_steps = start_lr, end_lr, num_steps
        self.found: LRFinderResult | None = None
        self.chosen: float | None = None
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self._raw: list[float] = []
        self._call: BackgroundCall | None = None

        t = config.train
        intro = QLabel(
            f"Trains a copy of the <b>{config.model.arch}</b> on <b>{config.data.source}</b> with "
            f"<b>{t.optimizer}</b> (batch {t.batch_size}) for up to {num_steps} steps while the rate rises "
            f"from {start_lr:g} to {end_lr:g}, and stops once the loss passes 4× its best. The model's weights "
            "are left untouched. Pick a rate where the loss is still falling steeply, well before its lowest "
            "point."
        )
        intro.setWordWrap(True)
        intro.setStyleSheet(f"color: {text_color()};")
        self.plot = styled_plot(
            "Loss against learning rate",
            "learning rate (log scale)",
            "training loss (smoothed)",
            object_name="lrFinderPlot",
        )
        self.plot.setLogMode(x=True, y=False)
        self.plot.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setMinimumSize(640, 360)
        legend = add_legend(self.plot, offset=(10, -10))
        self.raw_curve = self.plot.plot([], [], pen=pen(theme.muted, 1.0, alpha=110))
        self.curve = self.plot.plot([], [], pen=pg.mkPen(theme.accent, width=2.5))
        legend.addItem(self.raw_curve, "loss per batch")
        legend.addItem(self.curve, "smoothed")
        self.suggest_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(theme.danger, width=1.5, style=Qt.PenStyle.DashLine))
        self.suggest_dot = self.plot.plot(
            [],
            [],
            pen=None,
            symbol="o",
            symbolSize=11,
            symbolBrush=theme.danger,
            symbolPen=pg.mkPen(theme.plot_bg, width=1.5),
        )
        self.suggest_text = pg.TextItem(color=theme.danger, anchor=(0, 1))
        self.min_line = pg.InfiniteLine(
            angle=90,
            pen=pg.mkPen(theme.muted, width=1, style=Qt.PenStyle.DotLine),
            label="lowest loss",
            labelOpts={"position": 0.92, "color": theme.muted, "anchors": [(1.05, 0.5), (1.05, 0.5)]},
        )
        for item in (self.suggest_line, self.suggest_text, self.min_line):
            item.setVisible(False)
            self.plot.addItem(item, ignoreBounds=True)
        self.plot.scene().sigMouseClicked.connect(self._on_plot_clicked)

        self.progress = named(QProgressBar(), "lrFinderProgress")
        self.progress.setRange(0, num_steps)
        self.progress.setTextVisible(False)  # the studio's bars are thin lines: the step count goes beside it
        self.status = named(QLabel(), "lrFinderStatus")
        self.status.setStyleSheet(f"color: {theme.muted};")
        self.rate_label = named(QLabel(), "lrFinderRate")
        self.rate_label.setTextFormat(Qt.TextFormat.RichText)

        self.run_button = named(QPushButton("Run again"), "lrFinderRunButton")
        self.stop_button = named(QPushButton("Stop"), "lrFinderStopButton")
        self.use_button = named(QPushButton("Use this rate"), "useRateButton")
        self.use_button.setEnabled(False)
        self.use_button.setDefault(True)
        buttons = QDialogButtonBox()
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.stop_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.reject)
        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self._use_rate)

        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.status, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.plot, 1)
        layout.addLayout(progress_row)
        layout.addWidget(self.rate_label)
        layout.addWidget(buttons)

        self.resize(820, 600)
        if autostart:
            QTimer.singleShot(0, self.start)

    # -- running -------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._call is not None and self._call.is_running()

    def start(self) -> None:
        """Start (or restart) the range test in a worker thread."""
        if self.is_running():
            return
        self.found, self.chosen = None, None
        self._lrs, self._losses, self._raw = [], [], []
        self._redraw()
        for item in (self.suggest_line, self.suggest_text, self.min_line):
            item.setVisible(False)
        self.suggest_dot.setData([], [])
        self.progress.setValue(0)
        self.status.setText("running…")
        self.rate_label.setText("")
        self.use_button.setEnabled(False)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        config, start, end, steps = self.config, self.start_lr, self.end_lr, self.num_steps

        def work(state: TaskState) -> LRFinderResult:
            return find_lr(
                config,
                start_lr=start,
                end_lr=end,
                num_steps=steps,
                on_point=state.add_partial_result,
                should_stop=state.is_interruption_requested,
            )

        call = BackgroundCall(work)
        call.partial_results.connect(self._add_points)
        call.succeeded.connect(self._on_finished)
        call.failed.connect(self._on_failed)
        self._call = call.start()

    def stop(self) -> None:
        """End the test at its next step; the curve so far and its suggestion still come."""
        if self._call is not None:
            self._call.request_interruption()

    def _add_points(self, points: list[LRFinderPoint]) -> None:
        if not points:
            return
        for p in points:
            self._lrs.append(p.lr)
            self._raw.append(p.raw_loss)
        self._losses = smooth_losses(self._raw)  # the same centred smoothing the result will carry
        self.progress.setValue(points[-1].step)
        self.status.setText(
            f"step {points[-1].step} of at most {self.num_steps} · lr {points[-1].lr:.2e} · loss {points[-1].loss:.4f}"
        )
        self._redraw()

    def _redraw(self) -> None:
        self.raw_curve.setData(self._lrs, self._raw)
        self.curve.setData(self._lrs, self._losses)
        if self._losses:
            lo, first = min(self._losses), self._losses[0]
            top = max(first * 1.15, lo * 1.3)  # the diverging tail would squash the useful part
            self.plot.setYRange(lo - 0.05 * (top - lo), top, padding=0)

    def _on_finished(self, result: LRFinderResult) -> None:
        self.found = result
        self._lrs, self._losses, self._raw = list(result.lrs), list(result.losses), list(result.raw_losses)
        self._redraw()
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress.setValue(len(result.lrs))
        self.status.setText(f"{len(result.lrs)} steps; stopped: {result.reason}")
        if result.min_loss_lr is not None:
            x = math.log10(result.min_loss_lr)
            self.min_line.setPos(x)
            self.min_line.setVisible(True)
        if result.suggestion is not None:
            self.choose(result.suggestion)
        else:
            danger = current_theme().danger
            self.rate_label.setText(
                f"<span style='color:{danger}'>No suggestion: the loss never fell clearly. "
                "Click the curve to pick a rate, or check the data and model.</span>"
            )
        self.search_finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.status.setText("")
        self.rate_label.setText(f"<span style='color:{current_theme().danger}'>The range test failed: {message}</span>")
        self.search_failed.emit(message)

    # -- choosing ------------------------------------------------------------------------------

    def choose(self, lr: float) -> None:
        """Mark `lr` (snapped to the nearest tested rate) as the one "Use this rate" applies."""
        if not self._lrs:
            return
        logs = np.log10(np.asarray(self._lrs))
        i = int(np.argmin(np.abs(logs - math.log10(lr))))
        self.chosen = float(self._lrs[i])
        x, y = float(logs[i]), float(self._losses[i])
        suggested = self.found.suggestion if self.found is not None else None
        is_suggestion = suggested is not None and math.isclose(self.chosen, suggested)
        label = "suggested" if is_suggestion else "chosen"
        self.suggest_line.setPos(x)
        self.suggest_dot.setData([self.chosen], [y])
        self.suggest_text.setText(f"{label} {self.chosen:.2e}")
        self.suggest_text.setPos(x, y)
        for item in (self.suggest_line, self.suggest_text):
            item.setVisible(True)
        extra = "" if is_suggestion or suggested is None else f" (suggested {suggested:.2e})"
        muted = current_theme().muted
        self.rate_label.setText(
            f"{label.capitalize()} rate: <b style='font-size:13pt'>{self.chosen:.2e}</b>"
            f"{extra} <span style='color:{muted}'>· click the curve to pick another</span>"
        )
        self.use_button.setEnabled(True)

    def _on_plot_clicked(self, event) -> None:
        if self.is_running() or not self._lrs:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        x = vb.mapSceneToView(event.scenePos()).x()  # log10(lr) on a log axis
        self.choose(10**x)

    def _use_rate(self) -> None:
        if self.chosen is not None:
            self.rate_chosen.emit(self.chosen)
            self.accept()

    def done(self, code: int) -> None:  # closing while running: stop the worker first
        if self._call is not None and self._call.is_running():
            self._call.cancel()
            self._call.wait(10000)
        super().done(code)
