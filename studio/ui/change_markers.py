"""`ChangeMarkers`: the live changes of a run on one plot, as dashed lines with labels that never overlap.

All markers of a plot are one graphics item drawn in one `paint`: a pyqtgraph `InfiniteLine` with a
label per marker is two Python paint calls per marker per repaint, each waiting for the training
thread to hand back the GIL, and a re-layout of every label on every range change (what made live
changes stutter). Labels are laid out in screen pixels at paint time: each goes into the first row
from the top where it does not touch the label before it, to the right of its line (to the left
near the right edge); a label with no room left is not drawn, and its line's tooltip names it.
Labels have no background box, so they never hide a curve; hovering a line shows the full text of
every change under the pointer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QStaticText

from studio.ui.history import ChangeMarker

GAP_PX = 6.0  # the least room between two labels of one row
HOVER_PX = 5.0  # how near the pointer must be to a line for its tooltip
MAX_ROWS = 4  # more rows than this would bury the curves under text


@dataclass(frozen=True)
class PlacedLabel:
    """Where one label went: its marker, its text's box (plot pixels) and its row (0 = top)."""

    marker: ChangeMarker
    rect: QRectF
    row: int


def layout_labels(
    items: Sequence[tuple[float, float, ChangeMarker]], width: float, height: float, row_height: float
) -> list[PlacedLabel]:
    """Place labels `(line x px, text width px, marker)` in rows so that no two boxes overlap.

    A pure function of pixel sizes, so a test can check the promise at any window size.
    """
    rows = max(1, min(MAX_ROWS, int(height * 0.5 // max(row_height, 1.0))))
    # Lines come left to right, so a row is free for a label that starts past the row's last end.
    row_end = [-math.inf] * rows
    placed: list[PlacedLabel] = []
    for px, w, marker in sorted(items, key=lambda it: it[0]):
        if w + 4 > width:
            continue
        left = px + 3 if px + 3 + w <= width else px - 3 - w  # near the right edge: to the left of the line
        left = max(0.0, left)
        for r in range(rows):
            if left >= row_end[r] + GAP_PX:
                row_end[r] = left + w
                placed.append(PlacedLabel(marker, QRectF(left, 2 + r * row_height, w, row_height), r))
                break
    return placed


class ChangeMarkers(pg.GraphicsObject):
    """Every live change on one plot; `labels` picks which markers carry their text (None: all)."""

    def __init__(self, plot: pg.PlotWidget, color: str, labels: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self._vb = plot.getPlotItem().getViewBox()
        self.setParentItem(self._vb)  # plot pixels, not data coordinates: labels keep their size
        self.setZValue(40)
        self.setAcceptHoverEvents(True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # pan and zoom go to the plot
        self._markers: list[ChangeMarker] = []
        self._alarms: dict[int, str] = {}  # marker index -> why it is flagged
        self._labels = labels
        self._font = QFont()
        self._font.setPointSizeF(8.0)
        self._metrics = QFontMetricsF(self._font)
        self._widths: list[float] = []
        self._texts: list[QStaticText] = []  # laid out once: drawing a static text is cheap
        self._cache_key: tuple[float, ...] = ()
        self._cache: tuple[list[QLineF], list[QLineF], list[PlacedLabel]] = ([], [], [])
        self.placed: list[PlacedLabel] = []  # the last paint's labels (tests read them)
        self.set_colors(color, "#d0343a")
        self._vb.sigTransformChanged.connect(self._on_view_changed)
        self._vb.sigResized.connect(self._on_view_changed)

    def set_colors(self, color: str, alarm: str) -> None:
        self._color, self._alarm_color = QColor(color), QColor(alarm)
        self.update()

    def set_markers(self, markers: Sequence[ChangeMarker]) -> None:
        """Show exactly these markers (the history's list; only new ones cost anything)."""
        if len(markers) == len(self._markers) and (not markers or markers[-1] is self._markers[-1]):
            return
        if len(markers) < len(self._markers) or (self._markers and markers[0] is not self._markers[0]):
            self.clear()
        for m in markers[len(self._markers) :]:
            self._markers.append(m)
            self._widths.append(self._metrics.horizontalAdvance(m.label) + 2)
            text = QStaticText(m.label)
            text.prepare(font=self._font)
            self._texts.append(text)
        self.update()

    def set_alarm(self, index: int, why: str) -> None:
        """Flag a marker (the loss exploded after it): drawn in the alarm colour, with `why` in its tooltip."""
        self._alarms[index] = why
        self.update()

    def clear(self) -> None:
        self._markers, self._widths, self._texts, self._alarms, self.placed = [], [], [], {}, []
        self._cache_key = ()
        self.update()

    def _on_view_changed(self, *_: Any) -> None:
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(self._vb.boundingRect())

    def _pixel_x(self) -> list[float]:
        (x0, x1), _ = self._vb.viewRange()
        w = self._vb.width()
        span = (x1 - x0) or 1.0
        return [(m.x - x0) / span * w for m in self._markers]

    def _layout(self) -> tuple[list[QLineF], list[QLineF], list[PlacedLabel]]:
        """The lines (plain, flagged) and labels for the view as it is now; cached until it changes."""
        rect = self._vb.boundingRect()
        (x0, x1), _ = self._vb.viewRange()
        key = (x0, x1, rect.width(), rect.height(), len(self._markers), len(self._alarms))
        if key == self._cache_key:
            return self._cache
        w, h = rect.width(), rect.height()
        xs = self._pixel_x()
        plain: list[QLineF] = []
        flagged: list[QLineF] = []
        drawn: set[int] = set()  # one line per pixel column: a hundred changes in one spot are one line
        for i, px in enumerate(xs):
            col = round(px)
            if not -1 <= px <= w + 1:
                continue
            if i in self._alarms:
                flagged.append(QLineF(px, 0, px, h))
            elif col not in drawn:
                drawn.add(col)
                plain.append(QLineF(px, 0, px, h))
        wanted = [
            (px, self._widths[i], m)
            for i, (px, m) in enumerate(zip(xs, self._markers, strict=True))
            if 0 <= px <= w and (self._labels is None or m.key in self._labels)
        ]
        placed = layout_labels(wanted, w, h, self._metrics.height() + 1)
        self._cache_key, self._cache = key, (plain, flagged, placed)
        return self._cache

    def paint(self, p: QPainter, *_: Any) -> None:
        if not self._markers:
            self.placed = []
            return
        plain, flagged, self.placed = self._layout()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for lines, color in ((plain, self._color), (flagged, self._alarm_color)):
            if lines:
                pen = QPen(color, 1.0, Qt.PenStyle.DashLine)
                pen.setCosmetic(True)
                p.setPen(pen)
                p.drawLines(lines)
        p.setFont(self._font)
        index = {id(m): i for i, m in enumerate(self._markers)}
        for lab in self.placed:
            i = index[id(lab.marker)]
            p.setPen(self._alarm_color if i in self._alarms else self._color)
            p.drawStaticText(lab.rect.topLeft(), self._texts[i])

    # -- tooltips --------------------------------------------------------------------------------

    def near(self, px: float) -> list[int]:
        """Indices of the markers whose line is within a few pixels of x = `px`."""
        return [i for i, x in enumerate(self._pixel_x()) if abs(x - px) <= HOVER_PX]

    def tooltip_at(self, px: float) -> str:
        lines = []
        for i in self.near(px):
            m = self._markers[i]
            text = m.detail or m.label
            lines.append(f"⚠ {text}: {self._alarms[i]}" if i in self._alarms else text)
        return "\n".join(lines)

    def hoverEvent(self, ev: Any) -> None:
        if ev.isExit():
            self.setToolTip("")
            return
        self.setToolTip(self.tooltip_at(ev.pos().x()))
