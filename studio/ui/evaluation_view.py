"""The Evaluation tab: how good is the trained model, and what does it get wrong?

A headline (accuracy, loss, macro F1), the confusion matrix (click a cell to see its samples), the
per-class table, and the confidence of right and wrong answers; for regression, predicted against
true with the fitted line, and the residuals. `set_run(run_dir)` evaluates in a worker thread.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.evaluate import confidence_histogram
from studio.engine.report import EvaluationDetails, evaluation_details
from studio.ui.background_call import BackgroundCall
from studio.ui.chart_style import add_legend, qcolor, restyle_plot, styled_plot, text_color
from studio.ui.confusion_matrix import ConfusionMatrixView
from studio.ui.qt_helpers import named
from studio.ui.regression_view import RegressionPage
from studio.ui.sample_grid import SampleGridView
from studio.ui.theme import current_theme

MAX_SAMPLES = 120  # thumbnails shown for one cell; the most confident come first
EMPTY_TEXT = "Train a run or open one, then its evaluation on the test split appears here."


class _NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _NumberItem):
            return self.value < other.value
        return super().__lt__(other)


class EvaluationView(QWidget):
    """Evaluation of one run's checkpoint on one split; `set_run(run_dir)` to fill it."""

    evaluated = Signal(object)  # EvaluationDetails, once shown
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        theme = current_theme()
        self.setObjectName("evaluationView")
        self.run_dir: Path | None = None
        self.details: EvaluationDetails | None = None
        self._call: BackgroundCall | None = None
        self._shown_indices: np.ndarray = np.zeros(0, dtype=np.int64)

        self.split_combo = named(QComboBox(), "evalSplitCombo")
        self.split_combo.addItems(["test", "val", "train"])
        self.checkpoint_combo = named(QComboBox(), "evalCheckpointCombo")
        self.checkpoint_combo.addItems(["best", "last"])
        self.normalise_box = named(QCheckBox("Normalise rows"), "normaliseCheckBox")
        self.normalise_box.setToolTip("Show each cell as a share of its true class instead of a count")
        self.evaluate_button = named(QPushButton("Evaluate"), "evaluateButton")
        self.headline = named(QLabel(), "evalHeadline")
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.status = named(QLabel(), "evalStatus")
        self.status.setStyleSheet(f"color: {theme.muted};")
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        for text, w in (("Split", self.split_combo), ("Checkpoint", self.checkpoint_combo)):
            bar.addWidget(QLabel(text))
            bar.addWidget(w)
            bar.addSpacing(8)
        bar.addWidget(self.normalise_box)
        bar.addSpacing(8)
        bar.addWidget(self.evaluate_button)
        bar.addStretch(1)
        # The headline has a row of its own (with the status beside it), so a narrow window never cuts it.
        head = QHBoxLayout()
        head.addWidget(self.headline)
        head.addSpacing(16)
        head.addWidget(self.status, 1)

        self.pages = QStackedWidget()
        self._headline_parts: list[tuple[str, str]] = []
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet(f"color: {theme.muted}; font-size: 12pt;")
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self._build_classification())
        self.pages.addWidget(self._build_regression())

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(head)
        layout.addWidget(self.pages, 1)

        self.normalise_box.toggled.connect(self.matrix.set_normalised)
        self.evaluate_button.clicked.connect(self.refresh)
        self.split_combo.currentTextChanged.connect(lambda _: self.refresh())
        self.checkpoint_combo.currentTextChanged.connect(lambda _: self.refresh())
        self.matrix.cell_clicked.connect(self.show_cell)
        self.mistakes_button.clicked.connect(self.show_mistakes)

    # -- building ------------------------------------------------------------------------------

    def _build_classification(self) -> QWidget:
        self.matrix = ConfusionMatrixView()
        self.table = named(QTableWidget(0, 5), "perClassTable")
        self.table.setHorizontalHeaderLabels(["class", "precision", "recall", "F1", "support"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.table.setSortingEnabled(True)
        self.table.setToolTip(
            "precision: of the samples predicted as this class, the share that are it\n"
            "recall: of the samples of this class, the share found\n"
            "rows in red: recall well below the overall accuracy"
        )
        self.histogram = styled_plot(
            "Confidence of right and wrong answers",
            "confidence of the predicted class",
            "share of group (%)",
            object_name="confidenceHistogram",
        )
        self.histogram.setMouseEnabled(x=False, y=False)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.table)
        right.addWidget(self.histogram)
        rows = 11 * (self.table.fontMetrics().height() + 6) + 8  # ten classes and the header, no scrolling
        right.setSizes([rows, 320])
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.matrix)
        top.addWidget(right)
        top.setSizes([520, 520])

        self.samples_title = named(QLabel(), "cellSamplesTitle")
        font = QFont(self.samples_title.font())
        font.setBold(True)
        self.samples_title.setFont(font)
        self.mistakes_button = named(QPushButton("Most confident mistakes"), "mistakesButton")
        self.mistakes_button.setToolTip("All wrong predictions, the ones the model was surest about first")
        self.samples = SampleGridView(thumb=56)
        self.samples.setObjectName("cellSamplesGrid")
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 4, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.samples_title, 1)
        head.addWidget(self.mistakes_button)
        bl.addLayout(head)
        bl.addWidget(self.samples, 1)

        page = QSplitter(Qt.Orientation.Vertical)
        page.addWidget(top)
        page.addWidget(bottom)
        page.setSizes([600, 200])
        return page

    def _build_regression(self) -> QWidget:
        self.regression = RegressionPage()
        self.scatter_plot = self.regression.scatter_plot
        self.residual_plot = self.regression.residual_plot
        return self.regression

    # -- running -------------------------------------------------------------------------------

    def set_run(self, run_dir: str | Path) -> None:
        """Evaluate `run_dir` (the chosen checkpoint and split) in a worker thread, then show it."""
        if self.run_dir != Path(run_dir):
            self.clear_run(f"Evaluating {Path(run_dir).name}…")  # never another run's figures meanwhile
        self.run_dir = Path(run_dir)
        self.refresh()

    def clear_run(self, message: str = EMPTY_TEXT) -> None:
        """Show no figures (a new run, another run without a checkpoint, no run): only `message`."""
        self._forget_running_call()
        self.run_dir = None
        self.details = None
        self._headline_parts = []
        self.headline.setText("")
        self.status.setText("")
        self.empty.setText(message)
        self.pages.setCurrentIndex(0)
        self.evaluate_button.setEnabled(True)

    def refresh(self) -> None:
        if self.run_dir is None:
            return
        run_dir, which, split = self.run_dir, self.checkpoint_combo.currentText(), self.split_combo.currentText()
        self.status.setText(f"evaluating {run_dir.name} ({which} checkpoint, {split} split)…")
        self.status.setStyleSheet(f"color: {current_theme().muted};")
        self.evaluate_button.setEnabled(False)
        self._forget_running_call()
        call = BackgroundCall(lambda _state: evaluation_details(run_dir, which, split))
        # Bound methods, not lambdas: Qt drops the connection if this view is destroyed first.
        call.succeeded.connect(self._on_done)
        call.failed.connect(self._on_error)
        self._call = call.start()

    def _forget_running_call(self) -> None:
        """A newer request replaces a running one: its result, when it comes, is stale."""
        if self._call is not None and self._call.is_running():
            self._call.cancel()

    def is_busy(self) -> bool:
        return self._call is not None and self._call.is_running()

    def _on_error(self, message: str) -> None:
        self.evaluate_button.setEnabled(True)
        # The figures of an earlier evaluation must not stay beside this run's error.
        self.details = None
        self._headline_parts = []
        self.headline.setText("")
        self.empty.setText(f"Could not evaluate {self.run_dir.name if self.run_dir else 'this run'}.")
        self.pages.setCurrentIndex(0)
        self.status.setText(f"could not evaluate: {message}")
        self.status.setStyleSheet(f"color: {current_theme().danger};")
        self.failed.emit(message)

    def _on_done(self, details: EvaluationDetails) -> None:
        self.evaluate_button.setEnabled(True)
        self.show_details(details)
        self.evaluated.emit(details)

    # -- showing -------------------------------------------------------------------------------

    def show_details(self, details: EvaluationDetails) -> None:
        """Fill every part of the tab from an `EvaluationDetails` (also usable without a thread)."""
        self.details = details
        r = details.report
        used = r["split"]
        if r.get("note"):
            note = f" · {r['note']}"
        elif used == "train" and self.split_combo.currentText() != "train":
            note = " · evaluated on train (no val or test split)"
        elif used != self.split_combo.currentText():
            note = f" (no {self.split_combo.currentText()} split: showing {used})"
        else:
            note = ""
        self.status.setText(
            f"{Path(r['run_dir']).name} · {r['checkpoint']} checkpoint (epoch {r['epoch']}) · {used} split{note}"
        )
        self.status.setStyleSheet(f"color: {current_theme().muted};")
        if details.task == "classification":
            self._show_classification(details)
            self.pages.setCurrentIndex(1)
        else:
            self._show_regression(details)
            self.pages.setCurrentIndex(2)

    def _headline(self, parts: list[tuple[str, str]]) -> None:
        self._headline_parts = parts
        html = " &nbsp;&nbsp; ".join(
            f"<span style='color:{current_theme().muted}'>{name}</span> <span style='font-size:14pt;font-weight:600;"
            f"color:{text_color()}'>{value}</span>"
            for name, value in parts
        )
        self.headline.setText(html)

    def _show_classification(self, d: EvaluationDetails) -> None:
        r = d.report
        assert d.classes is not None
        f1s = [v["f1"] for v in r["per_class"].values()]
        self._headline(
            [
                ("accuracy", f"{r['accuracy']:.1%}"),
                ("loss", f"{r['loss']:.4f}"),
                ("macro F1", f"{sum(f1s) / len(f1s):.3f}"),
                ("samples", f"{r['n']:,}"),
            ]
        )
        self.matrix.set_matrix(r["confusion_matrix"], d.labels)
        self.matrix.set_normalised(self.normalise_box.isChecked())
        self._fill_table(r)
        self._fill_histogram(d)
        if d.classes.wrong_indices.size:
            self.show_mistakes()
        else:
            self.samples_title.setText("No mistakes on this split: click a diagonal cell to see its samples")
            self.samples.set_message("")

    def _fill_table(self, r: dict) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(r["labels"]))
        acc = r["accuracy"] or 0.0
        for i, label in enumerate(r["labels"]):
            pc = r["per_class"][label]
            name = _NumberItem(label, i)  # sorts in class order, not as text ("10" after "9")
            name.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            items = [
                name,
                _NumberItem(f"{pc['precision']:.3f}", pc["precision"]),
                _NumberItem(f"{pc['recall']:.3f}", pc["recall"]),
                _NumberItem(f"{pc['f1']:.3f}", pc["f1"]),
                _NumberItem(f"{pc['support']:,}", pc["support"]),
            ]
            weak = pc["support"] > 0 and pc["recall"] < acc - 0.05
            for col, item in enumerate(items):
                if weak:
                    item.setForeground(QColor(current_theme().danger))
                    item.setToolTip(f"recall {pc['recall']:.1%} is well below the overall accuracy {acc:.1%}")
                self.table.setItem(i, col, item)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def _fill_histogram(self, d: EvaluationDetails) -> None:
        theme = current_theme()
        assert d.classes is not None
        plot = self.histogram.getPlotItem()
        plot.clear()
        if plot.legend is not None:
            plot.legend.clear()
        k = max(len(d.labels), 2)
        low = math.floor(20 / k) / 20  # a prediction is never less sure than 1/K
        bins = max(round((1.0 - low) / 0.05), 1)
        h = confidence_histogram(d.classes.confidence, d.classes.correct, bins=bins, low=low)
        width = h.edges[1] - h.edges[0]
        centers = (h.edges[:-1] + h.edges[1:]) / 2
        n_right, n_wrong = int(h.correct.sum()), int(h.wrong.sum())
        legend = add_legend(self.histogram, offset=(10, 10))
        top = 0.0
        for counts, total, color, shift, name in (
            (h.correct, n_right, theme.success, -0.22, "right"),
            (h.wrong, n_wrong, theme.danger, 0.22, "wrong"),
        ):
            share = counts / max(total, 1) * 100
            top = max(top, float(share.max(initial=0.0)))
            bars = pg.BarGraphItem(
                x=centers + shift * width,
                height=share,
                width=width * 0.42,
                brush=qcolor(color, 210),
                pen=pg.mkPen(color),
            )
            plot.addItem(bars)
            legend.addItem(bars, f"{name} ({total:,})")
        plot.setXRange(low, 1.0, padding=0.02)
        plot.setYRange(0, max(top * 1.12, 5.0), padding=0)

    def show_cell(self, true: int, pred: int) -> None:
        """Show the samples of one confusion-matrix cell, the most confident first."""
        d = self.details
        if d is None or d.classes is None:
            return
        self.matrix.select(true, pred)
        idx = d.classes.cell_indices(true, pred)
        t, p = d.labels[true], d.labels[pred]
        what = f"true '{t}' predicted as '{p}'" if true != pred else f"'{t}' recognised correctly"
        self._show_indices(idx, f"{what}: {len(idx):,} sample{'s' if len(idx) != 1 else ''}")

    def show_mistakes(self) -> None:
        """Show every wrong prediction, the most confident first."""
        d = self.details
        if d is None or d.classes is None:
            return
        self.matrix.selected = None
        self.matrix.update()
        idx = d.classes.wrong_indices
        self._show_indices(idx, f"Most confident mistakes: {len(idx):,} wrong of {len(d.classes):,}")

    def _show_indices(self, idx: np.ndarray, title: str) -> None:
        d = self.details
        assert d is not None and d.classes is not None
        shown = idx[:MAX_SAMPLES]
        self._shown_indices = shown
        more = f" (showing the first {MAX_SAMPLES})" if len(idx) > MAX_SAMPLES else ""
        hint = " · most confident first" if len(idx) > 1 else ""
        self.samples_title.setText(title + more + hint)
        if d.task != "classification" or (d.images is None and d._pixels is None):
            self.samples.set_message("these samples are table rows, not images")
            return
        if not len(shown):
            self.samples.set_message("no samples in this cell")
            return
        c = d.classes
        captions, states, tips = [], [], []
        for i in shown.tolist():
            t, p, conf = d.labels[c.true[i]], d.labels[c.pred[i]], c.confidence[i]
            wrong = c.true[i] != c.pred[i]
            captions.append((f"{p} · {conf:.0%}", f"true {t}") if wrong else (f"{p} · {conf:.0%}", ""))
            states.append("wrong" if wrong else "right")
            src = f", sample #{int(d.source_indices[i])} of the data set" if d.source_indices is not None else ""
            tips.append(f"true '{t}', predicted '{p}' with {conf:.1%} confidence{src}")
        self.samples.set_samples(d.sample_images(shown), captions, states, tips)

    def report_split(self) -> str | None:
        """The split the shown figures are of (test falls back to val when a run has no test split)."""
        return self.details.report["split"] if self.details is not None else None

    def shown_indices(self) -> list[int]:
        """Positions (in the evaluated split) of the samples in the grid, for tests and tools."""
        return self._shown_indices.tolist()

    def _show_regression(self, d: EvaluationDetails) -> None:
        r = d.report
        r2 = "n/a" if r.get("r2") is None else f"{r['r2']:.3f}"
        rmse = r.get("rmse", math.sqrt(max(r["mse"], 0.0)))
        self._headline([("R²", r2), ("RMSE", f"{rmse:.4g}"), ("MAE", f"{r['mae']:.4g}"), ("samples", f"{r['n']:,}")])
        self.regression.fill(d)

    def apply_theme(self) -> None:
        """Re-colour what was drawn in the old theme's colours: the headline, the status, the plots."""
        theme = current_theme()
        if self._headline_parts:
            self._headline(self._headline_parts)
        self.empty.setStyleSheet(f"color: {theme.muted}; font-size: 12pt;")
        self.status.setStyleSheet(f"color: {theme.muted};")
        for plot in self.findChildren(pg.PlotWidget):
            restyle_plot(plot)
        if self.details is not None:
            self.show_details(self.details)
