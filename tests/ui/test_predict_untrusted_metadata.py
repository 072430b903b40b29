"""The Predict tab on a run whose exported model.onnx carries lying metadata: a message, never a crash."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import onnx
import pytest

import studio.data as data
from studio.cli import main
from studio.ui.predict_panel import PredictPanel
from tests.export.runs import tiny_digits, toml_for, train_run

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def set_metadata(path: Path, key: str, value: str) -> None:
    model = onnx.load(str(path))
    for entry in model.metadata_props:
        if entry.key == key:
            entry.value = value
    onnx.save(model, str(path))  # newer than the checkpoints, so the panel picks this file


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("predict-ui")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(data.LOADERS, "digits", tiny_digits(150, 14))
        run_dir = train_run(tmp, "digits", toml_for("digits", "mlp"))
    assert main(["export", str(run_dir)]) == 0
    return run_dir


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("labels", "5", "labels metadata is not a JSON list of names"),
        ("input_shape", "[1, 20000, 20000]", "asks for 400,000,000 values a sample"),
        ("input_shape", "1e400", "input_shape metadata '1e400'"),
    ],
)
def test_predict_panel_shows_why_a_lying_model_cannot_predict(
    qtbot, tmp_path: Path, exported_run: Path, key: str, value: str, fragment: str
) -> None:
    run_dir = Path(shutil.copytree(exported_run, tmp_path / "run"))
    set_metadata(run_dir / "model.onnx", key, value)
    panel = PredictPanel()
    qtbot.addWidget(panel)
    loaded: list[object] = []
    failed: list[str] = []
    panel.predictor_loaded.connect(loaded.append)
    panel.load_failed.connect(failed.append)
    panel.set_run(run_dir)
    qtbot.waitUntil(lambda: bool(loaded or failed), timeout=30000)
    assert loaded == [], "the panel accepted the model"
    assert fragment in failed[0] and "unexpected failure" not in failed[0], failed[0]
    assert panel.source_label.text() == f"Cannot predict with this run: {failed[0]}"
    assert panel.predictor is None and panel.stack.currentIndex() == 0
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30000)
