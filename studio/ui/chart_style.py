"""One look for the insight plots: readable axes, a fixed colour per meaning, and the app's palette.

Backgrounds and text follow the application palette at the time a view is built (the studio's
light or dark theme sets it), so the insight views match the window around them.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

# Colours by meaning, so a colour says the same thing in every view.
CORRECT = "#2e9d5b"
WRONG = "#d1495b"
ACCENT = "#3a6fd8"
MUTED = "#8a8f98"
SPLITS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}
# Distinct colours for overlaid runs (Tableau 10, colour-blind friendly enough for a handful).
SERIES = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
          "#9c755f", "#bab0ac")
TEXT = "#2b2f36"  # text on a light background, when there is no application palette yet
GRID_ALPHA = 0.25


def _palette_color(role: QPalette.ColorRole, fallback: str) -> str:
    app = QApplication.instance()
    return app.palette().color(role).name() if app is not None else fallback  # type: ignore[union-attr]


def text_color() -> str:
    """The palette's text colour (dark on a light theme, light on a dark one)."""
    return _palette_color(QPalette.ColorRole.WindowText, TEXT)


def plot_background() -> str:
    return _palette_color(QPalette.ColorRole.Base, "#ffffff")


def is_dark() -> bool:
    return QColor(plot_background()).lightnessF() < 0.5


def series_color(i: int) -> str:
    return SERIES[i % len(SERIES)]


def styled_plot(title: str = "", x_label: str = "", y_label: str = "", object_name: str = "") -> pg.PlotWidget:
    """A `PlotWidget` with a white background, dark axes, a light grid and labelled axes."""
    plot = pg.PlotWidget(background=plot_background())
    text = text_color()
    if object_name:
        plot.setObjectName(object_name)
    item = plot.getPlotItem()
    if title:
        item.setTitle(f"<span style='color:{text};font-size:11pt;font-weight:600'>{title}</span>")
    font = QFont()
    font.setPointSize(9)
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen(MUTED))
        axis.setTextPen(pg.mkPen(text))
        axis.setTickFont(font)
        axis.enableAutoSIPrefix(False)  # "loss (x0.001)" reads worse than plain numbers
    if x_label:
        item.setLabel("bottom", x_label, color=text)
    if y_label:
        item.setLabel("left", y_label, color=text)
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setMenuEnabled(False)
    return plot


def add_legend(plot: pg.PlotWidget, offset: tuple[int, int] = (-10, 10)) -> pg.LegendItem:
    legend = plot.getPlotItem().addLegend(offset=offset, labelTextColor=text_color())
    legend.setBrush(pg.mkBrush(qcolor(plot_background(), 220)))
    legend.setPen(pg.mkPen("#5a606b" if is_dark() else "#d0d4da"))
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
