"""The Export dialog and the Predict panel, offscreen: background work, reports, charts, feature forms."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog

import studio.data as data
from studio.cli import main
from studio.data.digits import load_digits
from studio.engine.checkpoint import checkpoint_path
from studio.export.predict import OnnxPredictor, predict_files
from studio.ui.export_dialog import ExportDialog
from studio.ui.predict_panel import PredictPanel
from tests.export.runs import tiny_digits, toml_for, train_run, write_line_csv

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def line_run(tmp_path: Path) -> Path:
    csv = write_line_csv(tmp_path / "line.csv")
    return train_run(
        tmp_path, "line", toml_for("csv", "linear", path=csv, target="y", epochs=30, lr=0.01, optimizer="sgd")
    )


@pytest.fixture
def digits_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(data.LOADERS, "digits", tiny_digits(300, 14))
    return train_run(tmp_path, "digits", toml_for("digits", "mlp", epochs=2))


@pytest.fixture
def make_panel(qtbot):
    """A PredictPanel that waits for its worker thread before the test ends, as the window's close does."""
    panels = []

    def make() -> PredictPanel:
        panel = PredictPanel()
        qtbot.addWidget(panel)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.shutdown()
        qtbot.waitUntil(lambda p=panel: not p.is_busy(), timeout=30000)


def write_pngs(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    images, targets, _ = load_digits()
    paths = []
    for i in range(count):
        path = folder / f"digit{i}_{int(targets[7000 + i])}.png"
        Image.fromarray(images[7000 + i, 0].numpy()).save(path)
        paths.append(path)
    return paths


def test_export_dialog_runs_in_background_and_shows_the_report(
    qtbot, line_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog = ExportDialog(line_run)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.path_edit.text() == str(line_run / "model.onnx")
    chosen = tmp_path / "deploy" / "line-model"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(chosen), "")))
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert dialog.output_path() == chosen.with_name("line-model.onnx")
    dialog.quantize_combo.setCurrentIndex(dialog.quantize_combo.findData("dynamic"))

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(dialog.progress_bar.maximum()))
    timer.start(5)
    with qtbot.waitSignal(dialog.exported, timeout=60000) as blocker:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert dialog.is_running()
        assert dialog.progress_bar.maximum() == 0  # the busy indicator
        assert not dialog.export_button.isEnabled() and not dialog.close_button.isEnabled()
    timer.stop()
    qtbot.waitUntil(lambda: not dialog.is_running())
    # The event loop kept turning while the export ran: the GUI thread was never blocked. (Once torch.onnx
    # is warm, as late in a full test run, the export competes hard for the GIL and can take only a few
    # ticks; a blocked GUI thread would see none.)
    assert ticks.count(0) >= 1
    report = blocker.args[0]
    assert report["path"] == str(chosen.with_name("line-model.onnx"))
    assert report["parity"]["passed"] and report["parity"]["samples"] > 0
    assert report["quantized"]["mode"] == "dynamic"
    text = dialog.report_view.toPlainText()
    assert "onnxruntime vs PyTorch      passed" in text and "int8 (dynamic quantization)" in text
    assert "session.run(['output']" in text
    assert "Exported and checked" in dialog.status_label.text()
    assert chosen.with_name("line-model.onnx").is_file() and chosen.with_name("line-model.int8.onnx").is_file()
    assert dialog.export_button.isEnabled() and dialog.copy_button.isEnabled()
    assert dialog.progress_bar.maximum() == 1 and dialog.progress_bar.value() == 1
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text().startswith("import json")


def test_export_dialog_shows_a_broken_checkpoint(qtbot, line_run: Path) -> None:
    for which in ("best", "last"):
        path = checkpoint_path(line_run, which)
        path.write_bytes(path.read_bytes()[:100])
    dialog = ExportDialog(line_run)
    qtbot.addWidget(dialog)
    dialog.start_export()
    qtbot.waitUntil(lambda: dialog.error is not None and not dialog.is_running(), timeout=30000)
    assert "truncated or corrupt" in dialog.error
    assert dialog.report_view.toPlainText().startswith("error: ")
    assert "nothing was written" in dialog.status_label.text()
    assert not (line_run / "model.onnx").exists()
    assert dialog.export_button.isEnabled()


def test_predict_panel_images_from_the_exported_model(
    qtbot, make_panel, digits_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["export", str(digits_run)]) == 0
    pngs = write_pngs(tmp_path / "pngs", 4)
    panel = make_panel()
    panel.show()
    with qtbot.waitSignal(panel.predictor_loaded, timeout=30000):
        panel.set_run(digits_run)
    assert "exported model model.onnx" in panel.source_label.text()
    assert panel.stack.currentIndex() == 1
    panel.top_spin.setValue(3)

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(p) for p in pngs[:2]], "")))
    with qtbot.waitSignal(panel.predicted, timeout=30000) as blocker:
        qtbot.mouseClick(panel.choose_button, Qt.MouseButton.LeftButton)
    assert len(blocker.args[0]) == 2
    expected = {r["file"]: r for r in predict_files(OnnxPredictor(digits_run / "model.onnx"), pngs, top=3)}
    # Dropping the other two (and one of the first again) adds only the new ones.
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in (pngs[1], pngs[2], pngs[3])])
    drop = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(panel.predicted, timeout=30000) as blocker:
        panel.drop_area.dropEvent(drop)
    assert [Path(r["file"]).name for r in blocker.args[0]] == [pngs[2].name, pngs[3].name]
    assert panel.file_list.count() == 4
    for row, path in enumerate(pngs):
        panel.file_list.setCurrentRow(row)
        want = expected[str(path)]
        assert panel.bar_plot.labels == [label for label, _ in want["top"]]
        np.testing.assert_allclose(panel.bar_plot.probabilities, [p for _, p in want["top"]], atol=1e-6)
        assert want["label"] in panel.result_label.text()
        assert panel.file_list.item(row).text().startswith(f"{path.name}: {want['label']} (")
    widths = panel.bar_plot.bars.opts["width"]
    assert len(widths) == 3 and widths[0] >= widths[1] >= widths[2]


def test_predict_panel_falls_back_to_the_checkpoint(qtbot, make_panel, digits_run: Path, tmp_path: Path) -> None:
    panel = make_panel()
    with qtbot.waitSignal(panel.predictor_loaded, timeout=30000):
        panel.set_run(digits_run)
    assert "checkpoint best.pt" in panel.source_label.text()
    png = write_pngs(tmp_path / "one", 1)
    with qtbot.waitSignal(panel.predicted, timeout=30000) as blocker:
        panel.add_images(png)
    assert blocker.args[0][0]["label"] in [str(i) for i in range(10)]
    assert len(panel.bar_plot.labels) == panel.top_spin.value()


def test_predict_panel_regression_from_typed_values(qtbot, make_panel, line_run: Path) -> None:
    assert main(["export", str(line_run)]) == 0
    panel = make_panel()
    with qtbot.waitSignal(panel.predictor_loaded, timeout=30000):
        panel.set_run(line_run)
    assert panel.stack.currentIndex() == 2
    assert len(panel.feature_edits) == 1
    assert panel.feature_form.labelForField(panel.feature_edits[0]).text() == "x"
    assert not panel.bar_plot.isVisibleTo(panel)
    expected = OnnxPredictor(line_run / "model.onnx").outputs(np.array([[1.5]], dtype=np.float32))[0, 0]
    qtbot.keyClicks(panel.feature_edits[0], "1.5")
    with qtbot.waitSignal(panel.predicted, timeout=30000) as blocker:
        qtbot.mouseClick(panel.predict_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0]["prediction"] == pytest.approx(float(expected), rel=1e-6)
    assert panel.result_label.text() == f"prediction: {float(expected):.6g}"
    # A typo is named, not sent to the model.
    qtbot.waitUntil(lambda: not panel.is_busy())
    panel.feature_edits[0].setText("1.5x")
    panel.predict_features()
    assert "'1.5x' in x is not a number" in panel.feature_error.text()
    assert not panel.is_busy()
