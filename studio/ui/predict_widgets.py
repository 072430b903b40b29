"""The Predict tab's parts: a drop area for image files and the top-k probability bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from studio.export.predict import IMAGE_SUFFIXES
from studio.ui.chart_style import qcolor
from studio.ui.theme import current_theme


class DropArea(QFrame):
    """A dashed box that accepts dropped image files and says so."""

    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictDropArea")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#predictDropArea { border: 2px dashed palette(mid); border-radius: 6px; }")
        self.setMinimumHeight(48)
        label = QLabel("Drop images here")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(label)

    @staticmethod
    def image_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        out: list[Path] = []
        for p in paths:
            if p.is_dir():
                out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
            elif p.suffix.lower() in IMAGE_SUFFIXES:
                out.append(p)
        return out

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.image_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self.image_paths(event)
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)


class ProbabilityBars(pg.PlotWidget):
    """Horizontal bars of the top-k class probabilities, the most likely on top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictBarPlot")
        self.setMinimumHeight(130)  # five bars a line apart, with their labels, at any window size
        self.setBackground(None)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.getPlotItem().invertY(True)
        self.setXRange(0, 1, padding=0.02)
        self.setLabel("bottom", "probability")
        self.bars = pg.BarGraphItem(
            x0=[], y=[], height=0.6, width=[], brush=pg.mkBrush(qcolor(current_theme().accent, 200))
        )
        self.addItem(self.bars)
        self._texts: list[pg.TextItem] = []
        self.labels: list[str] = []
        self.probabilities: list[float] = []

    def show_top(self, top: list[list[Any]]) -> None:
        for item in self._texts:
            self.removeItem(item)
        self._texts = []
        self.labels = [str(label) for label, _ in top]
        self.probabilities = [float(p) for _, p in top]
        k = len(top)
        y = np.arange(k, dtype=float)
        self.bars.setOpts(x0=np.zeros(k), y=y, width=np.asarray(self.probabilities), height=0.6)
        self.getAxis("left").setTicks([[(i, label) for i, label in enumerate(self.labels)]])
        theme = current_theme()
        for i, p in enumerate(self.probabilities):
            inside = p > 0.8  # a long bar carries its figure at its end, in white; a short one beside it
            text = pg.TextItem(
                f"{p * 100:.1f}%" if p >= 0.001 else "<0.1%",
                anchor=(1, 0.5) if inside else (0, 0.5),
                color="#ffffff" if inside else theme.text,
            )
            text.setPos(p - 0.01 if inside else p + 0.01, i)
            self.addItem(text)
            self._texts.append(text)
        self.setYRange(-0.6, max(k, 1) - 0.4, padding=0)
        self.setXRange(0, 1, padding=0.02)

    def apply_theme(self) -> None:
        """Redraw in the current theme's colours (the labels' colour is fixed when they are drawn)."""
        self.bars.setOpts(brush=pg.mkBrush(qcolor(current_theme().accent, 200)))
        self.show_top([[label, p] for label, p in zip(self.labels, self.probabilities, strict=True)])

    def clear_bars(self) -> None:
        self.show_top([])


def drop_refusal(urls: list[Path], kind: str | None) -> str:
    """What the Predict tab says about a drop it cannot predict on (not the data-source dialog's words)."""
    if kind is None:
        return "Nothing to predict with yet: train or open a run, then drop images here."
    if kind != "image":
        return "This model reads feature values, not files: type them in the fields above and press Predict."
    names = ", ".join(f"'{p.name}'" for p in urls[:3]) + (" …" if len(urls) > 3 else "")
    kinds = ", ".join(s.lstrip(".").upper() for s in IMAGE_SUFFIXES if s not in (".jpeg", ".tiff"))
    return f"{names}: not an image the model can read. Drop {kinds} files, or a folder of them."


def conversion_note(image: QImage, input_shape: tuple[int, ...]) -> str:
    """How an image was changed to fit the model (resized, made grey), or "" when it already fit."""
    if image.isNull() or len(input_shape) != 3:
        return ""
    c, h, w = input_shape
    changes = []
    if (image.width(), image.height()) != (w, h):
        changes.append(f"resized from {image.width()}×{image.height()} to {w}×{h}")
    if c == 1 and not image.allGray():
        changes.append("made grey")
    elif c == 3 and image.allGray():
        changes.append("its grey copied to red, green and blue")
    if not changes:
        return ""
    wants = f"{w}×{h} {'grey' if c == 1 else 'colour'} images"
    return f"Note: {' and '.join(changes)}, as the model reads {wants}."
