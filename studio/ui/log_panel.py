"""`LogPanel`: the messages the CLI prints, with warnings and errors coloured."""

from __future__ import annotations

import html
import time
from collections import deque

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget, QPlainTextEdit, QWidget

from studio.engine.events import Message
from studio.ui.theme import Theme, current_theme

MAX_LINES = 5000


class LogPanel(QPlainTextEdit):
    """Read-only, bounded log; `append_message(text, level)` adds one timestamped line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("logPanel")
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setPlaceholderText("Training messages appear here: the same lines `studio train` prints.")
        self._entries: deque[tuple[str, str, str]] = deque(maxlen=MAX_LINES)

    def _html(self, stamp: str, text: str, level: str, t: Theme) -> str:
        color = {"warning": t.warning, "error": t.danger}.get(level, t.text)
        prefix = {"warning": "warning: ", "error": "error: "}.get(level, "")
        return (
            f"<span style='color:{t.muted}'>{stamp}</span>&nbsp;&nbsp;"
            f"<span style='color:{color}'>{html.escape(prefix + text)}</span>"
        )

    def append(self, message: Message) -> None:
        """Add one engine or window `Message`."""
        self.append_message(message.text, message.level)

    def append_message(self, text: str, level: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        self._entries.append((stamp, text, level))
        self.appendHtml(self._html(stamp, text, level, current_theme()))
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def apply_theme(self, t: Theme) -> None:
        """Re-colour the lines already shown (their colours are baked into the text)."""
        self.clear()
        for stamp, text, level in self._entries:
            self.appendHtml(self._html(stamp, text, level, t))

    def lines(self) -> list[str]:
        return self.toPlainText().splitlines()


class LogDock(QDockWidget):
    """The log at the bottom of the window; `toggle` is its View › Show Log action (Ctrl+L)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Log", parent)
        self.setObjectName("logDock")
        self.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable
        )
        self.log = LogPanel()
        self.setWidget(self.log)
        self.toggle = self.toggleViewAction()
        self.toggle.setText("Show Log")
        self.toggle.setShortcut(QKeySequence("Ctrl+L"))
