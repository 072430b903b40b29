"""Message boxes the main window shows: errors with a clear title, text and optional details."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from studio.engine.run_dir import RunDir


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """A modal error box: `title` in bold, the message under it, a traceback behind "Show Details"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(f"<b>{title}</b>")
    box.setInformativeText(message[:1].upper() + message[1:])  # engine messages start lower-case
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.exec()


def show_info(parent: QWidget | None, title: str, message: str) -> None:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setText(f"<b>{title}</b>")
    box.setInformativeText(message)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.exec()


def ask_stop_and_close(parent: QWidget | None) -> bool:
    """Ask before closing during training; True means stop the run and close."""
    answer = QMessageBox.question(
        parent,
        "Training is running",
        "A run is training. Stop it and close the window?\n\n"
        f"The run is saved up to its last step ({RunDir.LAST_CHECKPOINT}) and can be resumed later.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
