"""`PlotCard`: a titled card around one live plot, with a read-out line; the read-out's helpers."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout

from studio.ui.chart_style import cache_axes


def fmt(v: float | None, digits: int = 4) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.{digits}g}"


def nearest(xs: np.ndarray, ys: np.ndarray, x: float, max_dx: float) -> float | None:
    """y of the point nearest to x (xs ascending), or None when none is within max_dx."""
    if not len(xs):
        return None
    i = int(np.searchsorted(xs, x))
    best = None
    for j in (i - 1, i):
        if 0 <= j < len(xs) and (best is None or abs(xs[j] - x) < abs(xs[best] - x)):
            best = j
    if best is None or abs(xs[best] - x) > max_dx:
        return None
    v = float(ys[best])
    return v if math.isfinite(v) else None


class PlotCard(QFrame):
    """A titled card around one PlotWidget, with a read-out line under the title."""

    def __init__(self, title: str, object_name: str, y_label: str, legend: tuple[int, int] | None = (-8, 8)) -> None:
        super().__init__()
        self.setObjectName("plotCard")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 8)
        lay.setSpacing(2)
        head = QHBoxLayout()
        self.title = QLabel(title)
        self.title.setObjectName("plotTitle")
        self.readout = QLabel("")
        self.readout.setObjectName("plotReadout")
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.readout)
        self.head = head
        lay.addLayout(head)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName(object_name)
        self.plot.setMinimumHeight(120)
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        item = self.plot.getPlotItem()
        # No grid: pyqtgraph redraws grid lines with every range change, which doubles the paint cost
        # on the GUI thread while training; the hover read-out gives exact values instead.
        item.showGrid(x=False, y=False)
        item.setLabel("left", y_label)
        item.setMenuEnabled(True)
        item.hideButtons()
        cache_axes(self.plot)
        # Legends sit where the curves usually are not: top right for loss, bottom right for
        # accuracy, bottom left for the learning rate (schedules end low on the right).
        self.legend = item.addLegend(offset=legend, labelTextSize="8pt", verSpacing=-4) if legend else None
        lay.addWidget(self.plot, 1)
