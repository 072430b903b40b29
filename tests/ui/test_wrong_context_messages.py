"""Messages fit where the user is: a drop on Predict, Continue Run on a deleted folder, a photo
predicted by a small grey model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QListWidgetItem

from studio.config import Config
from studio.ui.history import RunHistory
from studio.ui.predict_panel import PredictPanel
from studio.ui.predict_widgets import conversion_note
from studio.ui.run_controller import CannotStart, RunController

pytestmark = pytest.mark.usefixtures("qapp")


def _mime(path: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


def test_a_pdf_dropped_on_predict_gets_a_predict_message(qtbot: Any, tmp_path: Path) -> None:
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    panel = PredictPanel()
    qtbot.addWidget(panel)
    panel.info = SimpleNamespace(kind="image", task="classification", input_shape=(1, 28, 28), labels=("0", "1"))
    mime = _mime(pdf)
    enter = QDragEnterEvent(
        QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    panel.dragEnterEvent(enter)
    assert enter.isAccepted()  # the tab takes it: the window's data-source dialog never sees it
    drop = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    panel.dropEvent(drop)
    text = panel.result_label.text()
    assert "'paper.pdf': not an image the model can read" in text and "PNG" in text
    assert "data" not in text.lower() and "csv" not in text.lower()
    panel.info = None
    panel.dropEvent(drop)
    assert "train or open a run" in panel.result_label.text()


def test_a_colour_photo_on_a_small_grey_model_says_it_was_resized_and_made_grey(qtbot: Any, tmp_path: Path) -> None:
    photo = QImage(400, 300, QImage.Format.Format_RGB32)
    photo.fill(QColor("#c04020"))
    assert conversion_note(photo, (1, 28, 28)) == (
        "Note: resized from 400×300 to 28×28 and made grey, as the model reads 28×28 grey images."
    )
    digit = QImage(28, 28, QImage.Format.Format_Grayscale8)
    digit.fill(QColor("#000000"))
    assert conversion_note(digit, (1, 28, 28)) == ""
    path = tmp_path / "photo.png"
    photo.save(str(path))
    panel = PredictPanel()
    qtbot.addWidget(panel)
    panel.info = SimpleNamespace(kind="image", task="classification", input_shape=(1, 28, 28), labels=("9",))
    item = QListWidgetItem("photo.png")
    item.setData(Qt.ItemDataRole.UserRole, str(path))
    panel.file_list.addItem(item)
    panel.results[str(path)] = {"file": str(path), "label": "9", "probability": 0.809, "top": [["9", 0.809]]}
    panel.file_list.setCurrentItem(item)
    panel._show_current()
    assert "9 (80.9%)" in panel.result_label.text() and "resized from 400×300 to 28×28 and made grey" in (
        panel.result_label.text()
    )


def test_continue_run_on_a_deleted_folder_says_the_folder_is_gone(tmp_path: Path) -> None:
    controller = RunController(RunHistory())
    controller.run_dir = tmp_path / "runs" / "gone-run"
    with pytest.raises(CannotStart) as info:
        controller.plan(Config, True, tmp_path / "runs")
    title, message = info.value.title, info.value.message
    assert title == "The run's folder is gone" and "gone-run" in message and "no longer exists" in message
