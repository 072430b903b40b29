"""A confusion-matrix heatmap: counts or row percentages in every cell, click a cell to pick it.

Correct predictions (the diagonal) are shaded blue, mistakes red, each on its own scale: on a
single scale the diagonal dwarfs every mistake, and the mistakes are what a person looks for.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.ui.chart_style import text_color
from studio.ui.theme import DARK, LIGHT, ON_ACCENT, current_theme

_BLUE = np.array([33, 102, 172])
_RED = np.array([203, 24, 29])
_WHITE = np.array([255, 255, 255])


def _mix(color: np.ndarray, t: float, base: np.ndarray = _WHITE) -> QColor:
    """From the background `base` (an empty cell) towards `color` as `t` goes from 0 to 1."""
    t = float(np.clip(t, 0.0, 1.0))
    rgb = base + (color - base) * (0.12 + 0.88 * t) if t > 0 else base
    return QColor(*[int(v) for v in rgb])


def cell_shades(cm: np.ndarray, normalise: bool) -> np.ndarray:
    """Shade 0..1 per cell: the diagonal and the mistakes are each scaled to their own maximum."""
    cm = np.asarray(cm, dtype=np.float64)
    values = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalise else cm
    diag = np.eye(len(cm), dtype=bool)
    shades = np.zeros_like(values)
    for mask in (diag, ~diag):
        top = values[mask].max() if mask.any() else 0.0
        if top > 0:
            shades[mask] = values[mask] / top
    return shades


class ConfusionMatrixView(QWidget):
    """Rows are the true class, columns the predicted one; emits `cell_clicked(true, predicted)`."""

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setMouseTracking(True)
        self.setMinimumSize(220, 200)  # a 1280×720 window has room for little more; cells drop their numbers
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.cm = np.zeros((0, 0), dtype=np.int64)
        self.labels: list[str] = []
        self.normalise = False
        self.selected: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None

    def set_matrix(self, cm: list[list[int]] | np.ndarray, labels: list[str] | tuple[str, ...]) -> None:
        self.cm = np.asarray(cm, dtype=np.int64).reshape(len(labels), len(labels))
        self.labels = [str(v) for v in labels]
        self.selected = None
        self.update()

    def set_normalised(self, on: bool) -> None:
        self.normalise = bool(on)
        self.update()

    def select(self, true: int, pred: int) -> None:
        self.selected = (true, pred)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(480, 480)

    # -- geometry ----------------------------------------------------------------------------

    def _layout(self) -> tuple[QRectF, float]:
        k = max(len(self.labels), 1)
        fm = QFontMetrics(self.font())
        label_w = max([fm.horizontalAdvance(s) for s in self.labels] + [fm.horizontalAdvance("0")])
        label_w = min(label_w, 90)
        left = 14 + fm.height() + 6 + label_w + 6
        top = fm.height() + 8
        right = fm.horizontalAdvance("n=0000") + 12
        bottom = fm.height() + 6 + min(label_w, 60) + 6 + fm.height() + 8
        side = max(min(self.width() - left - right, self.height() - top - bottom), 40)
        cell = side / k
        return QRectF(left, top, cell * k, cell * k), cell

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        grid, cell = self._layout()
        if not self.labels or not grid.contains(QPointF(x, y)):
            return None
        k = len(self.labels)
        col = min(int((x - grid.left()) / cell), k - 1)
        row = min(int((y - grid.top()) / cell), k - 1)
        return row, col

    def cell_center(self, true: int, pred: int) -> QPointF:
        grid, cell = self._layout()
        return QPointF(grid.left() + (pred + 0.5) * cell, grid.top() + (true + 0.5) * cell)

    # -- events --------------------------------------------------------------------------------

    def mouseMoveEvent(self, event) -> None:
        hit = self.cell_at(event.position().x(), event.position().y())
        if hit != self._hover:
            self._hover = hit
            self.setToolTip(self._describe(*hit) if hit else "")
            self.setCursor(Qt.CursorShape.PointingHandCursor if hit else Qt.CursorShape.ArrowCursor)
            self.update()

    def leaveEvent(self, event) -> None:
        self._hover = None
        self.update()

    def mousePressEvent(self, event) -> None:
        hit = self.cell_at(event.position().x(), event.position().y())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.selected = hit
            self.update()
            self.cell_clicked.emit(*hit)

    def _describe(self, true: int, pred: int) -> str:
        n = int(self.cm[true, pred])
        row = int(self.cm[true].sum())
        share = f" ({n / row:.1%} of true '{self.labels[true]}')" if row else ""
        what = "correct" if true == pred else f"predicted '{self.labels[pred]}'"
        return f"true '{self.labels[true]}', {what}: {n} sample{'s' if n != 1 else ''}{share}"

    # -- drawing -------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        theme = current_theme()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.fillRect(self.rect(), self.palette().window())
        if not self.labels:
            p.setPen(QColor(theme.muted))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no confusion matrix yet")
            return
        grid, cell = self._layout()
        k = len(self.labels)
        shades = cell_shades(self.cm, self.normalise)
        bg = self.palette().color(QPalette.ColorRole.Base)
        base = np.array([bg.red(), bg.green(), bg.blue()])
        rows = np.maximum(self.cm.sum(axis=1), 1)
        font = QFont(self.font())
        fm = QFontMetrics(font)
        value_font = QFont(font)
        value_font.setPointSizeF(max(6.5, min(font.pointSizeF() * 1.05, cell * 0.28)))
        show_values = cell >= 18
        for t in range(k):
            for q in range(k):
                r = QRectF(grid.left() + q * cell, grid.top() + t * cell, cell, cell)
                n = int(self.cm[t, q])
                color = _mix(_BLUE if t == q else _RED, shades[t, q], base) if n else _mix(base, 0, base)
                p.fillRect(r, color)
                if show_values and (n or cell >= 30):
                    text = f"{n / rows[t]:.0%}" if self.normalise else f"{n}"
                    if self.normalise and n and n / rows[t] < 0.005:
                        text = "<1%"
                    dark = color.lightnessF() < 0.55
                    p.setFont(value_font)
                    if n:
                        p.setPen(QColor(ON_ACCENT) if dark else QColor(LIGHT.text))
                    else:
                        p.setPen(QColor(LIGHT.disabled) if bg.lightnessF() > 0.5 else QColor(DARK.disabled))
                    p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)
        p.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
        for i in range(k + 1):
            p.drawLine(QPointF(grid.left(), grid.top() + i * cell), QPointF(grid.right(), grid.top() + i * cell))
            p.drawLine(QPointF(grid.left() + i * cell, grid.top()), QPointF(grid.left() + i * cell, grid.bottom()))
        for sel, pen in (
            (self._hover, QPen(QColor(theme.muted), 1.5)),
            (self.selected, QPen(self.palette().color(QPalette.ColorRole.WindowText), 3)),
        ):
            if sel is not None:
                p.setPen(pen)
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(
                    QRectF(grid.left() + sel[1] * cell, grid.top() + sel[0] * cell, cell, cell).adjusted(1, 1, -1, -1)
                )
        # Class names: rows on the left, columns underneath (rotated when they do not fit).
        p.setFont(font)
        p.setPen(QColor(text_color()))
        step = max(1, int(np.ceil(fm.height() / cell)))
        longest = max(fm.horizontalAdvance(s) for s in self.labels)
        rotate = longest > cell - 4
        for i, name in enumerate(self.labels):
            if i % step:
                continue
            label = fm.elidedText(name, Qt.TextElideMode.ElideRight, 90)
            p.drawText(
                QRectF(0, grid.top() + i * cell, grid.left() - 6, cell),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            x = grid.left() + (i + 0.5) * cell
            if rotate:
                p.save()
                p.translate(x + fm.ascent() / 2 - 2, grid.bottom() + 6)
                p.rotate(-90)
                p.drawText(
                    QRectF(-60, -fm.height() / 2, 60, fm.height()),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    fm.elidedText(name, Qt.TextElideMode.ElideRight, 60),
                )
                p.restore()
            else:
                p.drawText(
                    QRectF(x - cell / 2, grid.bottom() + 4, cell, fm.height()), Qt.AlignmentFlag.AlignCenter, label
                )
        # Row totals (support) to the right, in grey.
        p.setPen(QColor(theme.muted))
        if cell >= fm.height():
            for i in range(k):
                p.drawText(
                    QRectF(grid.right() + 6, grid.top() + i * cell, 80, cell),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    f"n={int(self.cm[i].sum())}",
                )
        # Axis titles.
        bold = QFont(font)
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(QColor(text_color()))
        below = grid.bottom() + 6 + (min(longest, 60) if rotate else fm.height()) + 6
        p.drawText(
            QRectF(grid.left(), below, grid.width(), fm.height() + 4), Qt.AlignmentFlag.AlignCenter, "predicted class"
        )
        p.save()
        p.translate(4, grid.center().y())
        p.rotate(-90)
        p.drawText(
            QRect(int(-grid.height() / 2), 0, int(grid.height()), fm.height() + 4),
            Qt.AlignmentFlag.AlignCenter,
            "true class",
        )
        p.restore()
        p.setFont(font)
        p.setPen(QColor(theme.muted))
        hint = "row %: share of the true class" if self.normalise else "samples per cell · click a cell to see them"
        room = self.width() - grid.left() - 4  # the whole width, not just the grid's: a small grid cut it short
        p.drawText(
            QRectF(grid.left(), 0, room, grid.top() - 4),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
            fm.elidedText(hint, Qt.TextElideMode.ElideRight, int(room)),
        )
