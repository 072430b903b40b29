"""One look for the insight plots: light background, readable axes, a fixed colour per meaning."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont

# Colours by meaning, so a colour says the same thing in every view.
CORRECT = "#2e9d5b"
WRONG = "#d1495b"
ACCENT = "#3a6fd8"
MUTED = "#8a8f98"
SPLITS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}
# Distinct colours for overlaid runs (Tableau 10, colour-blind friendly enough for a handful).
SERIES = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
          "#9c755f", "#bab0ac")
TEXT = "#2b2f36"
GRID_ALPHA = 0.25


def series_color(i: int) -> str:
    return SERIES[i % len(SERIES)]


def styled_plot(title: str = "", x_label: str = "", y_label: str = "", object_name: str = "") -> pg.PlotWidget:
    """A `PlotWidget` with a white background, dark axes, a light grid and labelled axes."""
    plot = pg.PlotWidget(background="w")
    if object_name:
        plot.setObjectName(object_name)
    item = plot.getPlotItem()
    if title:
        item.setTitle(f"<span style='color:{TEXT};font-size:11pt;font-weight:600'>{title}</span>")
    font = QFont()
    font.setPointSize(9)
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen(MUTED))
        axis.setTextPen(pg.mkPen(TEXT))
        axis.setTickFont(font)
        axis.enableAutoSIPrefix(False)  # "loss (x0.001)" reads worse than plain numbers
    if x_label:
        item.setLabel("bottom", x_label, color=TEXT)
    if y_label:
        item.setLabel("left", y_label, color=TEXT)
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setMenuEnabled(False)
    return plot


def add_legend(plot: pg.PlotWidget, offset: tuple[int, int] = (-10, 10)) -> pg.LegendItem:
    legend = plot.getPlotItem().addLegend(offset=offset, labelTextColor=TEXT)
    legend.setBrush(pg.mkBrush(255, 255, 255, 220))
    legend.setPen(pg.mkPen("#d0d4da"))
    return legend


def note(plot: pg.PlotWidget, text: str) -> pg.TextItem:
    """A grey message in the middle of an empty plot ("no CUDA on this run")."""
    item = pg.TextItem(text, color=MUTED, anchor=(0.5, 0.5))
    plot.addItem(item, ignoreBounds=True)
    item.setPos(0.5, 0.5)
    return item


def qcolor(hex_color: str, alpha: int = 255) -> QColor:
    c = QColor(hex_color)
    c.setAlpha(alpha)
    return c
