"""The data explorer: what is in the data set before training on it.

Class counts per split as a bar chart, a row of samples for every class, image sizes, and
warnings a practitioner must see first: class imbalance, and exact duplicates shared between
train and val/test (a leak that inflates every metric). `set_config(config)` loads the data in
a worker thread, the same way training will.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.config import Config
from studio.data.overview import DataOverview, data_overview
from studio.ui.background_call import BackgroundCall
from studio.ui.chart_style import add_legend, qcolor, styled_plot, text_color
from studio.ui.qt_helpers import named
from studio.ui.sample_grid import thumbnail
from studio.ui.theme import current_theme

SPLIT_NAMES = ("train", "val", "test")


class _ClassRowsCanvas(QWidget):
    """One row per class: its name and count, then a strip of its training samples."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, list]] = []  # (label, count text, pixmaps)
        self.thumb = 40
        self.label_w = 90
        self.setSizePolicy(self.sizePolicy().horizontalPolicy(), self.sizePolicy().verticalPolicy())

    def set_rows(self, rows: list[tuple[str, str, np.ndarray]], thumb: int) -> None:
        self.thumb = thumb
        fm = QFontMetrics(self.font())
        self.label_w = min(
            max([fm.horizontalAdvance(r[0]) for r in rows] + [fm.horizontalAdvance("9,999 train")]) + 16, 160
        )
        self.rows = [(label, count, [thumbnail(img, thumb) for img in images]) for label, count, images in rows]
        self.setMinimumHeight(self.sizeHint().height())
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(self.label_w + 12 * (self.thumb + 4), 8 + len(self.rows) * (self.thumb + 8))

    def paintEvent(self, event) -> None:
        theme = current_theme()
        p = QPainter(self)
        bold = QFont(self.font())
        bold.setBold(True)
        small = QFont(self.font())
        small.setPointSizeF(self.font().pointSizeF() * 0.85)
        y = 6
        for label, count, pixmaps in self.rows:
            p.setFont(bold)
            p.setPen(QColor(text_color()))
            fm = QFontMetrics(bold)
            p.drawText(
                QRect(4, y, self.label_w - 8, self.thumb // 2),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                fm.elidedText(label, Qt.TextElideMode.ElideRight, self.label_w - 8),
            )
            p.setFont(small)
            p.setPen(QColor(theme.muted))
            p.drawText(
                QRect(4, y + self.thumb // 2, self.label_w - 8, self.thumb // 2),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                count,
            )
            x = self.label_w
            for pm in pixmaps:
                if x + self.thumb > self.width():
                    break
                p.drawPixmap(x + (self.thumb - pm.width()) // 2, y + (self.thumb - pm.height()) // 2, pm)
                p.setPen(QPen(QColor(theme.border), 1))
                p.drawRect(x, y, self.thumb - 1, self.thumb - 1)
                x += self.thumb + 4
            y += self.thumb + 8


class DataExplorerView(QWidget):
    """Explore the configured data: `set_config(config)`; emits `loaded(DataOverview)` when shown."""

    loaded = Signal(object)
    failed = Signal(str)

    def __init__(self, config: Config | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        theme = current_theme()
        self.setObjectName("dataExplorerView")
        self.overview: DataOverview | None = None
        self._call: BackgroundCall | None = None

        self.title = named(QLabel(), "dataSummary")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.findings = named(QLabel(), "dataWarnings")
        self.findings.setTextFormat(Qt.TextFormat.RichText)
        self.findings.setWordWrap(True)
        self.findings_frame = QFrame()
        self.findings_frame.setFrameShape(QFrame.Shape.StyledPanel)
        ff = QVBoxLayout(self.findings_frame)
        ff.setContentsMargins(10, 6, 10, 6)
        ff.addWidget(self.findings)

        # Left: class counts (or the target's histogram) and image sizes.
        self.counts_plot = styled_plot("Samples per class and split", "", "samples", object_name="classCountsPlot")
        self.counts_plot.setMouseEnabled(x=False, y=False)
        self.share_box = named(QCheckBox("Show as % of each split"), "classShareCheckBox")
        self.share_box.setToolTip("Compare the class mix of the splits: they should match when the split is stratified")
        self.share_box.toggled.connect(self._draw_counts)
        self.sizes_table = named(QTableWidget(0, 2), "imageSizesTable")
        self.sizes_table.setHorizontalHeaderLabels(["image size (W×H)", "images"])
        self._plain_table(self.sizes_table)
        self.image_info = QLabel()
        self.image_info.setStyleSheet(f"color: {theme.muted};")
        self.image_info.setWordWrap(True)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.counts_plot, 1)
        ll.addWidget(self.share_box)
        ll.addWidget(self.sizes_table)
        ll.addWidget(self.image_info)

        # Right: samples per class (images) or a feature table (CSV).
        self.rows_canvas = _ClassRowsCanvas()
        self.rows_canvas.setObjectName("classSamplesGrid")
        self.rows_area = QScrollArea()
        self.rows_area.setWidget(self.rows_canvas)
        self.rows_area.setWidgetResizable(True)
        self.rows_area.setFrameShape(QFrame.Shape.NoFrame)
        self.features_table = named(QTableWidget(0, 5), "featuresTable")
        self.features_table.setHorizontalHeaderLabels(["feature", "mean", "std", "min", "max"])
        self._plain_table(self.features_table)
        self.right_title = QLabel()
        bold = QFont(self.right_title.font())
        bold.setBold(True)
        self.right_title.setFont(bold)
        self.right_stack = QStackedWidget()
        self.right_stack.addWidget(self.rows_area)
        self.right_stack.addWidget(self.features_table)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.right_title)
        rl.addWidget(self.right_stack, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([560, 640])
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.findings_frame)
        layout.addWidget(split, 1)
        self.title.setText(f"<span style='color:{theme.muted}'>choose a data set to explore it</span>")
        self.findings_frame.setVisible(False)
        if config is not None:
            self.set_config(config)

    @staticmethod
    def _plain_table(table: QTableWidget) -> None:
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
        table.setAlternatingRowColors(True)

    # -- loading -------------------------------------------------------------------------------

    def set_config(self, config: Config) -> None:
        """Load and summarise `config`'s data in a worker thread."""
        self.title.setText(f"<span style='color:{current_theme().muted}'>loading {config.data.source} data…</span>")
        if self._call is not None and self._call.is_running():  # a newer request makes it stale
            self._call.cancel()
        call = BackgroundCall(lambda _state: data_overview(config))
        call.succeeded.connect(self._on_loaded)  # bound methods: dropped if this view goes first
        call.failed.connect(self._on_failed)
        self._call = call.start()

    def is_busy(self) -> bool:
        return self._call is not None and self._call.is_running()

    def _on_failed(self, message: str) -> None:
        self.title.setText(f"<span style='color:{current_theme().danger}'>could not load the data: {message}</span>")
        self.findings_frame.setVisible(False)
        self.failed.emit(message)

    def _on_loaded(self, overview: DataOverview) -> None:
        self.show_overview(overview)
        self.loaded.emit(overview)

    # -- showing -------------------------------------------------------------------------------

    def show_overview(self, o: DataOverview) -> None:
        theme = current_theme()
        self.overview = o
        sizes = o.split_sizes
        total = sum(sizes.values())
        what = f"{len(o.labels)} classes" if o.task == "classification" else "regression"
        self.title.setText(
            f"<span style='font-size:13pt;font-weight:600;color:{text_color()}'>{o.source}</span> "
            f"<span style='color:{text_color()}'>&nbsp;{what} · {total:,} samples: "
            + " · ".join(
                f"<span style='color:{theme.split(s)};font-weight:600'>{sizes[s]:,} {s}</span>" for s in SPLIT_NAMES
            )
            + "</span>"
        )
        lines = [f"<span style='color:{theme.warning}'>⚠ {w}</span>" for w in o.warnings]
        lines += [f"<span style='color:{theme.success}'>✓ {c}</span>" for c in o.checks]
        self.findings.setText("<br>".join(lines) if lines else "")
        self.findings_frame.setVisible(bool(lines))
        self._draw_counts()
        self._fill_sizes(o)
        if o.kind == "image" and o.samples:
            self.right_title.setText("Training samples per class (random picks)")
            counts = o.counts.get("train", [])
            rows = [
                (o.labels[c], f"{counts[c]:,} train" if c < len(counts) else "", imgs) for c, imgs in o.samples.items()
            ]
            _, h, w = o.image_shape or (1, 28, 28)
            self.rows_canvas.set_rows(rows, thumb=int(min(64, max(36, 2 * max(h, w)))))
            self.right_stack.setCurrentIndex(0)
        else:
            self.right_title.setText("Features (training split)" if o.feature_table else "")
            self._fill_features(o)
            self.right_stack.setCurrentIndex(1)

    def _draw_counts(self) -> None:
        theme = current_theme()
        o = self.overview
        plot = self.counts_plot.getPlotItem()
        plot.clear()
        if plot.legend is not None:
            plot.legend.scene().removeItem(plot.legend)
            plot.legend = None
        if o is None:
            return
        if o.task == "regression" and o.target_histogram is not None:
            counts, edges = o.target_histogram
            plot.setTitle(
                f"<span style='color:{text_color()};font-size:11pt;font-weight:600'>Target values (train)</span>"
            )
            plot.addItem(
                pg.BarGraphItem(
                    x0=edges[:-1],
                    x1=edges[1:],
                    height=counts,
                    brush=qcolor(theme.split("train"), 200),
                    pen=pg.mkPen(theme.plot_bg),
                )
            )
            plot.getAxis("bottom").setTicks(None)
            plot.setLabel("left", "samples")
            self.share_box.setVisible(False)
            return
        self.share_box.setVisible(True)
        share = self.share_box.isChecked()
        k = len(o.labels)
        present = [s for s in SPLIT_NAMES if s in o.counts and sum(o.counts[s]) > 0]
        width = 0.8 / max(len(present), 1)
        legend = add_legend(self.counts_plot)
        legend.setColumnCount(max(len(present), 1))  # one row along the top: it never sits on the bars
        top = 0.0
        for j, name in enumerate(present):
            values = np.asarray(o.counts[name], dtype=float)
            if share:
                values = values / max(values.sum(), 1) * 100
            top = max(top, float(values.max(initial=0)))
            x = np.arange(k) - 0.4 + width * (j + 0.5)
            bars = pg.BarGraphItem(
                x=x,
                height=values,
                width=width * 0.92,
                brush=qcolor(theme.split(name), 220),
                pen=pg.mkPen(theme.split(name)),
            )
            plot.addItem(bars)
            legend.addItem(bars, f"{name} ({o.split_sizes[name]:,})")
        step = max(1, math.ceil(k / 30))
        plot.getAxis("bottom").setTicks([[(i, o.labels[i][:12]) for i in range(0, k, step)]])
        plot.setLabel("left", "% of the split" if share else "samples")
        plot.setXRange(-0.6, k - 0.4, padding=0)
        plot.setYRange(0, top * 1.3 if top else 1, padding=0)

    def _fill_sizes(self, o: DataOverview) -> None:
        self.sizes_table.setVisible(o.kind == "image")
        self.image_info.setVisible(o.kind == "image")
        if o.kind != "image":
            return
        items = sorted(o.image_sizes.items(), key=lambda kv: -kv[1])
        self.sizes_table.setRowCount(len(items))
        rows_h = self.sizes_table.verticalHeader().defaultSectionSize() * min(len(items), 4)
        self.sizes_table.setFixedHeight(self.sizes_table.horizontalHeader().height() + rows_h + 4)
        for i, (size, n) in enumerate(items):
            self.sizes_table.setItem(i, 0, QTableWidgetItem(size))
            cell = QTableWidgetItem(f"{n:,}")
            cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.sizes_table.setItem(i, 1, cell)
        c, h, w = o.image_shape or (0, 0, 0)
        kind = "grayscale" if c == 1 else "RGB"
        mean = ", ".join(f"{v:.3f}" for v in o.pixel_mean)
        std = ", ".join(f"{v:.3f}" for v in o.pixel_std)
        self.image_info.setText(
            f"trained on {w}×{h} px, {c} channel{'s' if c != 1 else ''} ({kind}); "
            f"pixel mean {mean}, std {std} (train split, pixels in 0..1; the model "
            "normalises with these)"
        )

    def _fill_features(self, o: DataOverview) -> None:
        self.features_table.setRowCount(len(o.feature_table))
        for i, (name, mean, std, lo, hi) in enumerate(o.feature_table):
            self.features_table.setItem(i, 0, QTableWidgetItem(name))
            for j, v in enumerate((mean, std, lo, hi), start=1):
                cell = QTableWidgetItem("blank" if math.isnan(v) else f"{v:.4g}")
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.features_table.setItem(i, j, cell)
