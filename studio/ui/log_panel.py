"""`LogPanel`: the messages the CLI prints, with warnings and errors coloured."""

from __future__ import annotations

import html
import time

from PySide6.QtWidgets import QPlainTextEdit, QWidget

from studio.ui.theme import current_theme

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

    def append_message(self, text: str, level: str = "info") -> None:
        t = current_theme()
        color = {"warning": t.warning, "error": t.danger}.get(level, t.text)
        stamp = time.strftime("%H:%M:%S")
        prefix = {"warning": "warning: ", "error": "error: "}.get(level, "")
        self.appendHtml(f"<span style='color:{t.muted}'>{stamp}</span>&nbsp;&nbsp;"
                        f"<span style='color:{color}'>{html.escape(prefix + text)}</span>")
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def lines(self) -> list[str]:
        return self.toPlainText().splitlines()
