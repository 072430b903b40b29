"""`MetricCards`: the row of headline numbers above the curves (epoch, losses, accuracy, best)."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget


class MetricCard(QFrame):
    """A small card: a caption, a big value and a detail line."""

    def __init__(self, title: str, object_name: str) -> None:
        super().__init__()
        self.setObjectName("metricCard")
        self.setAccessibleName(title)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 10)
        lay.setSpacing(0)
        self.title = QLabel(title.upper())
        self.title.setObjectName("metricTitle")
        self.value = QLabel("–")
        self.value.setObjectName("metricValue")
        self.value.setAccessibleName(object_name)
        self.detail = QLabel(" ")
        self.detail.setObjectName("metricDetail")
        lay.addWidget(self.title)
        lay.addWidget(self.value)
        lay.addWidget(self.detail)

    def set(self, value: str, detail: str = " ") -> None:
        self.value.setText(value)
        self.detail.setText(detail or " ")


class MetricCards(QWidget):
    """Epoch, train loss, val loss, val accuracy and best epoch, updated by the main window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(10)
        self.epoch = MetricCard("Epoch", "epochValue")
        self.train_loss = MetricCard("Train loss", "trainLossValue")
        self.val_loss = MetricCard("Val loss", "valLossValue")
        self.val_acc = MetricCard("Val accuracy", "valAccuracyValue")
        self.best = MetricCard("Best", "bestValue")
        for card in (self.epoch, self.train_loss, self.val_loss, self.val_acc, self.best):
            lay.addWidget(card, 1)

    def clear(self) -> None:
        for card in (self.epoch, self.train_loss, self.val_loss, self.val_acc, self.best):
            card.set("–")
