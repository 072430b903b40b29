"""One look for the insight plots: readable axes, a fixed colour per meaning, the theme's palette.

Every colour comes from `theme.current_theme()` (and `theme.SERIES`) at the time a view is built,
so the insight views match the window around them in the light and the dark look. By meaning:
right answers `success`, wrong ones `danger`, one highlighted series `accent`, secondary text and
guides `muted`, the data splits `Theme.split(name)`.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QGraphicsItem

from studio.ui.theme import current_theme

GRID_ALPHA = 0.25


def text_color() -> str:
    """The theme's text colour (dark on a light theme, light on a dark one)."""
    return current_theme().text


def plot_background() -> str:
    return current_theme().plot_bg


def is_dark() -> bool:
    return QColor(plot_background()).lightnessF() < 0.5


def qcolor(hex_color: str, alpha: int = 255) -> QColor:
    c = QColor(hex_color)
    c.setAlpha(alpha)
    return c


def pen(color: str, width: float = 2.0, alpha: int = 255, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> Any:
    """A cosmetic pen in `color` (a faint one with a low `alpha`, for raw values under a mean)."""
    return pg.mkPen(qcolor(color, alpha), width=width, style=style)


def cache_axes(plot: pg.PlotWidget) -> None:
    """Paint each axis (ticks, labels, grid lines) from a cached image while its range stays put.

    pyqtgraph replays an axis's recorded drawing at every repaint of its plot, shaping each tick
    label's text again: on a live plot that was the larger part of each repaint. Cached, a repaint
    copies the axis's pixels; a range change still redraws it.
    """
    item = plot.getPlotItem()
    for side in ("left", "bottom", "right", "top"):
        item.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def styled_plot(title: str = "", x_label: str = "", y_label: str = "", object_name: str = "") -> pg.PlotWidget:
    """A `PlotWidget` on the theme's plot background, with its axes, a light grid and labelled axes."""
    plot = pg.PlotWidget(background=current_theme().plot_bg)
    if object_name:
        plot.setObjectName(object_name)
    plot.studio_style = (title, x_label, y_label)  # what `restyle_plot` re-colours
    _style(plot, title, x_label, y_label)
    item = plot.getPlotItem()
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setMenuEnabled(False)
    cache_axes(plot)
    return plot


def restyle_plot(plot: pg.PlotWidget) -> None:
    """Re-colour a `styled_plot` in the current theme (after the user switched light and dark)."""
    spec = getattr(plot, "studio_style", None)
    if spec:
        plot.setBackground(current_theme().plot_bg)
        _style(plot, *spec)


def _style(plot: pg.PlotWidget, title: str, x_label: str, y_label: str) -> None:
    t = current_theme()
    item = plot.getPlotItem()
    if title:
        item.setTitle(f"<span style='color:{t.text};font-size:11pt;font-weight:600'>{title}</span>")
    font = QFont()
    font.setPointSize(9)
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen(t.muted))
        axis.setTextPen(pg.mkPen(t.text))
        axis.setTickFont(font)
        axis.enableAutoSIPrefix(False)  # "loss (x0.001)" reads worse than plain numbers
    if x_label:
        item.setLabel("bottom", x_label, color=t.text)
    if y_label:
        item.setLabel("left", y_label, color=t.text)


def log_axis_range(lo: float, hi: float, decades: float = 4.0, above: float = 0.3) -> tuple[float, float]:
    """A log axis's range (in log10 units) for positive values from `lo` to `hi`.

    At most `decades` below the highest value (a schedule's tail towards 0 is not the story), at
    least two decades in all (pyqtgraph then ticks whole decades, never a crowd of minor ticks),
    and `above` of the span as headroom for labels.
    """
    top = math.log10(hi)
    low = max(math.log10(lo), top - decades)
    if top - low < 2.0:
        mid = (top + low) / 2
        low, top = mid - 1.0, mid + 1.0
    span = top - low
    return low - 0.05 * span, top + above * span


def add_legend(plot: pg.PlotWidget, offset: tuple[int, int] = (-10, 10)) -> pg.LegendItem:
    t = current_theme()
    legend = plot.getPlotItem().addLegend(offset=offset, labelTextColor=t.text)
    legend.setLabelTextColor(t.text)  # an existing legend keeps the colours it was made with otherwise
    legend.setBrush(pg.mkBrush(qcolor(t.plot_bg, 220)))
    legend.setPen(pg.mkPen(t.border))
    return legend


def note(plot: pg.PlotWidget, text: str) -> pg.TextItem:
    """A grey message in the middle of an empty plot ("no CUDA on this run")."""
    item = pg.TextItem(text, color=current_theme().muted, anchor=(0.5, 0.5))
    plot.addItem(item, ignoreBounds=True)
    item.setPos(0.5, 0.5)
    return item
