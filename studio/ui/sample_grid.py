"""A scrollable grid of image thumbnails with captions, wrong predictions outlined in red.

Shared by the Evaluation tab (a confusion-matrix cell's samples), the data explorer and the live
validation grid. Images come in as uint8 numpy arrays [N, C, H, W], exactly as trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QWidget

from studio.ui.chart_style import text_color
from studio.ui.theme import current_theme


def to_qimage(image: np.ndarray) -> QImage:
    """A uint8 [C, H, W] array (1 or 3 channels) as a QImage that owns its pixels."""
    if image.ndim == 2:
        image = image[None]
    c, h, w = image.shape
    if c == 1:
        data = np.ascontiguousarray(image[0])
        return QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    data = np.ascontiguousarray(np.transpose(image[:3], (1, 2, 0)))
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def thumbnail(image: np.ndarray, size: int) -> QPixmap:
    """Scaled to `size` px: blocky when enlarged (small digits stay crisp), smooth when shrunk."""
    qimage = to_qimage(image)
    grow = max(qimage.width(), qimage.height()) < size
    mode = Qt.TransformationMode.FastTransformation if grow else Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(qimage.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, mode))


@dataclass
class _Tile:
    pixmap: QPixmap
    lines: tuple[str, ...]
    state: str | None  # "right" | "wrong" | None
    tooltip: str


class _GridCanvas(QWidget):
    GAP = 8

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: list[_Tile] = []
        self.thumb = 64
        self.caption_lines = 2
        self.message = ""
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._font = QFont(self.font())
        self._font.setPointSizeF(max(7.5, self._font.pointSizeF() * 0.85))

    def cell_size(self) -> QSize:
        line = QFontMetrics(self._font).height()
        width = max(self.thumb, 76)
        return QSize(width, self.thumb + 6 + line * self.caption_lines)

    def columns(self) -> int:
        cell = self.cell_size()
        return max(1, (self.width() - self.GAP) // (cell.width() + self.GAP))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        cell = self.cell_size()
        cols = max(1, (width - self.GAP) // (cell.width() + self.GAP))
        rows = -(-len(self.tiles) // cols) if self.tiles else 1
        return self.GAP + rows * (cell.height() + self.GAP)

    def sizeHint(self) -> QSize:
        return QSize(600, self.heightForWidth(600))

    def _rect(self, i: int) -> QRect:
        cell, cols = self.cell_size(), self.columns()
        row, col = divmod(i, cols)
        return QRect(
            self.GAP + col * (cell.width() + self.GAP),
            self.GAP + row * (cell.height() + self.GAP),
            cell.width(),
            cell.height(),
        )

    def tile_at(self, x: int, y: int) -> int | None:
        for i in range(len(self.tiles)):
            if self._rect(i).contains(x, y):
                return i
        return None

    def mouseMoveEvent(self, event) -> None:
        i = self.tile_at(int(event.position().x()), int(event.position().y()))
        self.setToolTip(self.tiles[i].tooltip if i is not None else "")

    def paintEvent(self, event) -> None:
        theme = current_theme()
        p = QPainter(self)
        p.setFont(self._font)
        fm = QFontMetrics(self._font)
        if not self.tiles:
            p.setPen(QColor(theme.muted))
            p.drawText(
                self.rect().adjusted(12, 12, -12, -12),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                self.message,
            )
            return
        for i, tile in enumerate(self.tiles):
            r = self._rect(i)
            if not r.intersects(event.rect()):
                continue
            pm = tile.pixmap
            img = QRect(
                r.x() + (r.width() - pm.width()) // 2, r.y() + (self.thumb - pm.height()) // 2, pm.width(), pm.height()
            )
            p.drawPixmap(img, pm)
            if tile.state == "wrong":
                p.setPen(QPen(QColor(theme.danger), 3))
                p.drawRect(img.adjusted(-2, -2, 1, 1))
            else:
                p.setPen(QPen(QColor(theme.border), 1))
                p.drawRect(img.adjusted(-1, -1, 0, 0))
            y = r.y() + self.thumb + 4
            for k, line in enumerate(tile.lines[: self.caption_lines]):
                color = text_color()
                if k == 0 and tile.state == "wrong":
                    color = theme.danger
                elif k == 0 and tile.state == "right":
                    color = theme.success
                p.setPen(QColor(color))
                text = fm.elidedText(line, Qt.TextElideMode.ElideRight, r.width())
                p.drawText(QRect(r.x(), y, r.width(), fm.height()), Qt.AlignmentFlag.AlignHCenter, text)
                y += fm.height()


class SampleGridView(QScrollArea):
    """Thumbnails with up to two caption lines; `set_samples(images, captions, states, tooltips)`."""

    def __init__(self, thumb: int = 64, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = _GridCanvas()
        self.canvas.thumb = thumb
        self.setWidget(self.canvas)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def set_message(self, text: str) -> None:
        """Shown instead of tiles when there is nothing to show (and why)."""
        self.canvas.message = text
        self.canvas.tiles = []
        self._relayout()

    def set_samples(
        self,
        images: np.ndarray | list[np.ndarray],
        captions: Sequence[tuple[str, ...]] | None = None,
        states: Sequence[str | None] | None = None,
        tooltips: Sequence[str] | None = None,
    ) -> None:
        n = len(images)
        captions = captions or [()] * n
        states = states or [None] * n
        tooltips = tooltips or [""] * n
        self.canvas.caption_lines = max((len(c) for c in captions), default=0)
        self.canvas.tiles = [
            _Tile(thumbnail(np.asarray(images[i]), self.canvas.thumb), tuple(captions[i]), states[i], tooltips[i])
            for i in range(n)
        ]
        self._relayout()

    def count(self) -> int:
        return len(self.canvas.tiles)

    def wrong_count(self) -> int:
        return sum(t.state == "wrong" for t in self.canvas.tiles)

    def _relayout(self) -> None:
        self.canvas.setMinimumHeight(self.canvas.heightForWidth(max(self.viewport().width(), 100)))
        self.canvas.updateGeometry()
        self.canvas.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()
