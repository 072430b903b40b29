"""The studio window driven as a user would: type, click, wait for curves, read the run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QSpinBox, QToolButton

from studio.config import SOURCES, Config
from studio.engine.run_dir import read_summary
from tests.ui.metrics_reading import step_records

pytestmark = pytest.mark.usefixtures("qapp")


def type_into(qtbot: Any, spin: Any, text: str) -> None:
    """Select the field's text, type `text`, press Enter: what a user does."""
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Return)


def click(qtbot: Any, window: Any, name: str) -> None:
    button = window.findChild(QToolButton, name)
    assert button is not None and button.isEnabled(), f"{name} is not clickable"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_finished(qtbot: Any, window: Any, timeout: int = 60000) -> Any:
    qtbot.waitUntil(lambda: not window.is_training, timeout=timeout)
    return window.last_outcome


def test_contract_object_names_and_choices(make_window: Any) -> None:
    w = make_window()
    for name in ("trainButton", "pauseButton", "stopButton", "exportButton"):
        assert isinstance(w.findChild(QToolButton, name), QToolButton), name
    combo = w.findChild(QComboBox, "datasetCombo")
    assert [combo.itemData(i) for i in range(combo.count())] == list(SOURCES)
    assert w.findChild(QComboBox, "modelCombo").currentData() == "mlp"
    for name in ("batchSizeSpinBox", "epochsSpinBox"):
        assert isinstance(w.findChild(QSpinBox, name), QSpinBox)
    assert w.findChild(object, "lrSpinBox").value() == pytest.approx(0.001)
    for name in ("lossPlot", "accuracyPlot"):
        assert isinstance(w.findChild(pg.PlotWidget, name), pg.PlotWidget)
    # Devices: Auto first, the CPU last (CUDA GPUs by name and MPS come between when present).
    devices = w.findChild(QComboBox, "deviceCombo")
    assert devices.itemData(0) == "auto" and devices.itemData(devices.count() - 1) == "cpu"
    assert not w.findChild(QToolButton, "exportButton").isEnabled()  # no run, no checkpoint yet
    assert w.first_paint_s is not None and w.first_paint_s < 10


def test_train_draws_loss_points_within_seconds(qtbot: Any, make_window: Any, dialogs: Any) -> None:
    w = make_window()
    type_into(qtbot, w.findChild(QSpinBox, "epochsSpinBox"), "2")
    assert w.config().train.epochs == 2
    # The first points come as training starts, not when an epoch ends: what they show when they
    # arrive. (The seconds from Train to the first points are measured by benchmarks/gui_train_stop.py.)
    first: list[tuple[int, float]] = []

    def on_history() -> None:
        xs = w.history.step_x.view()
        if not first and len(xs):
            first.append((len(w.history.epoch_x["val"]), float(xs[-1])))

    w.history.changed.connect(on_history)
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(lambda: w.curves.point_count() > 0, timeout=60000)
    epochs_done, last_x = first[0]
    assert epochs_done == 0 and last_x < 1.0  # inside the first epoch
    outcome = wait_finished(qtbot, w)
    assert outcome.status == "completed" and outcome.error is None
    run = w.current_run_dir
    assert run.parent == w.runs_dir and (run / "config.toml").is_file()
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    assert read_summary(run)["epochs_completed"] == 2
    # Every logged step reached the plot: the throttled worker batches points, it never drops them.
    qtbot.waitUntil(lambda: w.curves.point_count() == len(step_records(run)), timeout=3000)
    x, _y = w.lossPlot.getPlotItem().listDataItems()[1].getOriginalDataset()
    assert len(x) == len(step_records(run)) and x[-1] == pytest.approx(2.0)
    assert len(w.history.epoch_x["val"]) == 2
    assert w.findChild(QToolButton, "exportButton").isEnabled()
    assert w.state_label.text() == "Completed"
    assert any("epoch 2/2" in line for line in w.log.lines())
    assert dialogs.shown == []


def test_live_learning_rate_and_batch_size_reach_metrics(qtbot: Any, make_window: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(lambda: w.curves.point_count() >= 2, timeout=15000)
    lr_spin, bs_spin = w.findChild(object, "lrSpinBox"), w.findChild(QSpinBox, "batchSizeSpinBox")
    assert lr_spin.isEnabled() and bs_spin.isEnabled()
    assert not w.findChild(QComboBox, "datasetCombo").isEnabled()
    assert "Fixed while a run trains" in w.findChild(QComboBox, "modelCombo").toolTip()
    # Export opens up as soon as the run has a checkpoint (the end of its first epoch).
    qtbot.waitUntil(lambda: w.findChild(QToolButton, "exportButton").isEnabled(), timeout=20000)

    before = len(step_records(w.current_run_dir))
    type_into(qtbot, lr_spin, "0.0123")
    run = w.current_run_dir

    def changed_lr() -> list[dict[str, Any]]:
        return [r for r in step_records(run) if (r.get("changed") or {}).get("lr")]

    qtbot.waitUntil(lambda: len(changed_lr()) == 1, timeout=10000)
    rec = changed_lr()[0]
    assert rec["changed"]["lr"] == [pytest.approx(0.001), pytest.approx(0.0123)]
    assert rec["lr"] == pytest.approx(0.0123)
    steps = step_records(run)
    i = steps.index(rec)
    assert i >= before - 1  # applied from the next step after Enter, not retroactively
    assert all(r["lr"] == pytest.approx(0.001) for r in steps[:i])

    type_into(qtbot, bs_spin, "32")
    qtbot.waitUntil(lambda: any(r["batch_size"] == 32 for r in step_records(run)), timeout=10000)
    qtbot.waitUntil(
        lambda: step_records(run)[-1]["batch_size"] == 32 and step_records(run)[-1]["step"] > rec["step"] + 3,
        timeout=10000,
    )
    steps = step_records(run)
    first32 = next(j for j, r in enumerate(steps) if r["batch_size"] == 32)
    assert all(r["batch_size"] == 32 for r in steps[first32:])
    assert all(r["lr"] == pytest.approx(0.0123) for r in steps[i:])
    # The change is marked on the curves, labelled.
    qtbot.waitUntil(lambda: len(w.history.markers) >= 2, timeout=5000)
    labels = [m.label for m in w.history.markers]
    assert "lr → 0.0123" in labels and "batch → 32" in labels
    click(qtbot, w, "stopButton")
    assert wait_finished(qtbot, w).status == "stopped"


def test_stop_ends_default_run_at_the_next_step(qtbot: Any, make_window: Any) -> None:
    # How many seconds Stop takes is measured by benchmarks/gui_train_stop.py; here, what bounds
    # them: the run ends at the next batch, not at the end of its epoch. Every step is logged.
    w = make_window(Config().replace_value("train.log_every", 1))
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(lambda: w.curves.point_count() > 0, timeout=15000)
    click(qtbot, w, "stopButton")
    steps_at_stop = len(step_records(w.current_run_dir))
    outcome = wait_finished(qtbot, w, timeout=60000)
    run = w.current_run_dir
    assert len(step_records(run)) - steps_at_stop <= 1  # at most the step in flight when Stop came
    assert outcome.status == "stopped"
    assert read_summary(run)["status"] == "stopped"
    assert (run / "checkpoints" / "last.pt").is_file()
    assert w.state_label.text() == "Stopped"
    assert w.findChild(QComboBox, "datasetCombo").isEnabled()  # the setup is editable again
    assert w.findChild(QToolButton, "resumeButton").isEnabled()


def test_pause_holds_training_and_resume_continues(qtbot: Any, make_window: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(lambda: w.curves.point_count() > 0, timeout=15000)
    click(qtbot, w, "pauseButton")
    assert w.pause_action.text() == "Resume" and w.state_label.text() == "Paused"
    qtbot.waitUntil(lambda: w.control.held, timeout=30000)  # the loop finished the batch it was in
    held = len(step_records(w.current_run_dir))
    qtbot.wait(800)
    assert len(step_records(w.current_run_dir)) == held and w.control.held
    click(qtbot, w, "pauseButton")
    assert w.state_label.text() == "Training"
    qtbot.waitUntil(lambda: len(step_records(w.current_run_dir)) > held, timeout=10000)
    click(qtbot, w, "stopButton")
    assert wait_finished(qtbot, w).status == "stopped"


def test_close_while_training_asks_then_stops_cleanly(qtbot: Any, make_window: Any, dialogs: Any, capfd: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(lambda: w.curves.point_count() > 0, timeout=15000)
    dialogs.answer = dialogs.answer.No
    w.close()
    assert w.isVisible() and w.is_training  # "No" keeps the window and the run
    dialogs.answer = dialogs.answer.Yes
    w.close()
    assert [kind for kind, _, _ in dialogs.shown] == ["question", "question"]
    qtbot.waitUntil(lambda: not w.isVisible() and not w.is_training, timeout=5000)
    assert read_summary(w.current_run_dir)["status"] == "stopped"
    assert "QThread: Destroyed" not in capfd.readouterr().err


def test_open_run_restores_setup_and_curves_then_resume(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    cfg = Config().replace_value("train.epochs", 3).replace_value("train.lr", 0.002)
    w = make_window(cfg)
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(lambda: w.curves.point_count() > 0, timeout=15000)
    click(qtbot, w, "stopButton")
    wait_finished(qtbot, w)
    run = w.current_run_dir
    steps = step_records(run)

    other = make_window()  # a fresh window, as after a restart: it shows the last setup
    assert other.findChild(object, "lrSpinBox").value() == pytest.approx(0.002)  # last setup persisted
    other.new_setup()
    assert other.findChild(object, "lrSpinBox").value() == pytest.approx(0.001)
    assert other.open_run(run)
    assert other.findChild(object, "lrSpinBox").value() == pytest.approx(0.002)
    assert other.findChild(QSpinBox, "epochsSpinBox").value() == 3
    assert len(other.history.step_x) == len(steps)
    assert other.state_label.text() == "Stopped"
    assert other.findChild(QToolButton, "exportButton").isEnabled()
    assert str(run) in other.settings.value("runs/recent")

    click(qtbot, other, "resumeButton")
    outcome = wait_finished(qtbot, other)
    assert outcome.status == "completed"
    assert read_summary(run)["epochs_completed"] == 3
    resumed = step_records(run)
    assert [r["step"] for r in resumed] == sorted({r["step"] for r in resumed})  # no step logged twice
    assert len(other.history.step_x) == len(resumed)
    assert len(other.history.epoch_x["val"]) == 3


def test_missing_csv_shows_a_dialog_and_keeps_the_setup(
    qtbot: Any, make_window: Any, dialogs: Any, tmp_path: Path
) -> None:
    w = make_window()
    combo = w.findChild(QComboBox, "datasetCombo")
    combo.setCurrentIndex(combo.findData("csv"))
    path_edit = w.data_panel.fields["data.path"].editor
    assert path_edit.isVisible()
    path_edit.setText(str(tmp_path / "no-such.csv"))
    path_edit.editingFinished.emit()
    click(qtbot, w, "trainButton")
    assert not w.is_training
    assert dialogs.titles() == ["Cannot start training"]
    assert "does not exist" in dialogs.shown[0][2]
    assert combo.isEnabled() and w.findChild(QToolButton, "trainButton").isEnabled()
    qtbot.waitUntil(lambda: w.setup_error.isVisible(), timeout=3000)  # and the sidebar says so too


def test_bad_csv_content_fails_in_the_engine_with_a_dialog(
    qtbot: Any, make_window: Any, dialogs: Any, tmp_path: Path
) -> None:
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")  # no "label" column
    w = make_window()
    w.data_panel.choose_path(csv)
    assert w.config().data.source == "csv"
    click(qtbot, w, "trainButton")
    outcome = wait_finished(qtbot, w)
    assert outcome.error is not None and outcome.error.kind == "input"
    qtbot.waitUntil(lambda: len(dialogs.shown) == 1, timeout=3000)
    assert dialogs.titles() == ["Cannot train with this setup"]
    assert "label" in dialogs.shown[0][2]
    assert w.findChild(QComboBox, "datasetCombo").isEnabled()
    assert w.current_run_dir is None and not (tmp_path / "runs").exists()  # no empty run folder left


def test_nan_loss_shows_a_dialog_and_the_setup_stays_editable(qtbot: Any, make_window: Any, dialogs: Any) -> None:
    # Regression on the synthetic line with SGD at lr 10 overflows to inf/NaN within a few steps.
    cfg = (
        Config()
        .replace_value("data.source", "linear")
        .replace_value("train.lr", 10.0)
        .replace_value("train.optimizer", "sgd")
    )
    w = make_window(cfg)
    click(qtbot, w, "trainButton")
    outcome = wait_finished(qtbot, w)
    assert outcome.status == "failed" and outcome.error.kind == "diverged"
    qtbot.waitUntil(lambda: len(dialogs.shown) == 1, timeout=3000)
    assert dialogs.titles() == ["Training diverged"]
    assert "non-finite" in dialogs.shown[0][2]
    assert w.state_label.text() == "Failed"
    assert json.loads((w.current_run_dir / "summary.json").read_text())["status"] == "failed"
    assert w.findChild(QComboBox, "modelCombo").isEnabled()
    assert w.findChild(object, "lrSpinBox").value() == pytest.approx(10.0)  # nothing the user typed is lost


def test_export_button_opens_the_dialog_and_drop_chooses_data(
    qtbot: Any, make_window: Any, dialogs: Any, tmp_path: Path
) -> None:
    w = make_window(Config().replace_value("train.epochs", 1))
    click(qtbot, w, "trainButton")
    wait_finished(qtbot, w)
    click(qtbot, w, "exportButton")
    assert w.export_dialog is not None and w.export_dialog.isVisible()
    assert w.export_dialog.output_path() == w.current_run_dir / "model.onnx"
    w.export_dialog.close()
    qtbot.waitUntil(lambda: w.export_dialog is None, timeout=5000)
    folder = tmp_path / "images"
    folder.mkdir()
    w.open_path(folder)
    assert w.data_panel.source() == "folder" and w.data_panel.fields["data.path"].value() == str(folder)
    w.open_path(w.current_run_dir)  # a dropped run folder opens the run
    assert w.data_panel.source() == "digits"


def test_settings_persist_geometry_and_theme(qtbot: Any, make_window: Any) -> None:
    w = make_window()
    w.set_theme("dark")
    w.resize(w.width(), w.height() - 50)  # the offscreen screen is small: stay inside it
    expected = w.size()
    w.findChild(object, "lrSpinBox").setValue(0.05)
    w.close()
    again = make_window()
    assert again.height() == expected.height()  # the width is held at the layout minimum here
    assert again.theme_actions["dark"].isChecked()
    assert again.findChild(object, "lrSpinBox").value() == pytest.approx(0.05)
    again.set_theme("light")


def test_add_view_adds_a_tab(make_window: Any) -> None:
    from PySide6.QtWidgets import QLabel

    w = make_window()
    index = w.add_view(QLabel("runs"), "Runs")
    assert w.tabs.tabText(0) == "Training" and w.tabs.tabText(index) == "Runs"


def test_dropping_a_csv_file_onto_the_window_chooses_it(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    csv = tmp_path / "houses.csv"
    csv.write_text("area,label\n1,a\n2,b\n", encoding="utf-8")
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(csv))])
    enter = QDragEnterEvent(
        QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    w.dragEnterEvent(enter)
    assert enter.isAccepted()
    w.dropEvent(
        QDropEvent(
            QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
        )
    )
    cfg = w.config()
    assert cfg.data.source == "csv" and cfg.data.path == str(csv)
    assert w.data_panel.fields["data.target"].widget.isVisible()  # CSV-only rows appear
    qtbot.waitUntil(lambda: "2 classes" in w.data_panel.summary.text(), timeout=10000)


def test_hover_reads_out_values(qtbot: Any, make_window: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 2))
    click(qtbot, w, "trainButton")
    wait_finished(qtbot, w)
    w.curves._update_readouts(1.0)
    assert "train" in w.curves.loss_card.readout.text() and "val" in w.curves.loss_card.readout.text()
    assert "%" in w.curves.acc_card.readout.text()
    assert "lr 0.001" in w.curves.lr_card.readout.text()


def test_keyboard_shortcuts_drive_the_run(qtbot: Any, make_window: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    w.activateWindow()
    qtbot.waitUntil(lambda: w.isActiveWindow(), timeout=3000)
    spin = w.findChild(QSpinBox, "epochsSpinBox")
    spin.setFocus()  # even with the cursor in a field
    qtbot.keyClick(spin, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.is_training, timeout=3000)
    qtbot.keyClick(w, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert w.state_label.text() == "Paused"
    qtbot.keyClick(w, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert w.state_label.text() == "Training"
    qtbot.keyClick(w, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    assert wait_finished(qtbot, w).status == "stopped"


def test_a_typed_value_counts_without_enter(qtbot: Any, make_window: Any) -> None:
    w = make_window()
    spin = w.findChild(QSpinBox, "epochsSpinBox")
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "1")  # typed, then straight to the Train button
    click(qtbot, w, "trainButton")
    assert wait_finished(qtbot, w).summary["epochs_completed"] == 1
