"""The studio as one product: train, then evaluate, export, predict, find a rate and compare runs, all in
the one window, driven as a user would."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

from studio.cli import main
from studio.config import Config
from studio.data.digits import load_digits
from studio.engine.run_dir import read_summary
from studio.ui.background_call import BackgroundCall

pytestmark = pytest.mark.usefixtures("qapp")

TAB_KEYS = ("signals", "evaluation", "predict", "data", "runs")


def click(qtbot: Any, window: Any, name: str) -> None:
    button = window.findChild(QToolButton, name)
    assert button is not None and button.isEnabled(), f"{name} is not clickable"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def show_tab(qtbot: Any, window: Any, title: str) -> Any:
    """Click the tab whose text is `title`, as a user does; returns its page."""
    bar = window.tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == title)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    assert window.tabs.currentIndex() == index
    return window.tabs.widget(index)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished digits MLP run, trained headless once for the tests that start from a run."""
    root = tmp_path_factory.mktemp("trained")
    toml = root / "digits.toml"
    toml.write_text(
        '[data]\nsource = "digits"\n[model]\narch = "mlp"\nhidden = [64]\n'
        '[train]\nepochs = 2\nbatch_size = 128\nlr = 0.003\ndevice = "cpu"\n',
        encoding="utf-8",
    )
    assert main(["train", str(toml), "--run-dir", str(root / "digits-mlp")]) == 0
    return root / "digits-mlp"


def copy_run(run: Path, runs_dir: Path) -> Path:
    runs_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(run, runs_dir / run.name))


def test_every_view_is_a_tab_beside_training(make_window: Any) -> None:
    w = make_window()
    titles = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    assert titles == ["Training", "Signals", "Evaluation", "Predict", "Data", "Runs"]
    assert w.views.built  # the engine is loaded: every placeholder holds its view now
    for key in TAB_KEYS:
        assert w.views.hosts[key].view is not None
    lr_finder = w.findChild(QToolButton, "lrFinderButton")
    assert lr_finder.isEnabled() and "Ctrl+Shift+L" in lr_finder.toolTip()


def test_train_then_signals_evaluation_predict_and_runs_follow(qtbot: Any, make_window: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 2).replace_value("model.hidden", [64]))
    show_tab(qtbot, w, "Signals")
    click(qtbot, w, "trainButton")
    # Live signals while it trains: gradient norms per step, then the validation grid after epoch 1.
    qtbot.waitUntil(
        lambda: w.views.signals.point_count() > 0, timeout=60000
    )  # the first points; a generous cap for a loaded machine
    qtbot.waitUntil(lambda: not w.is_training, timeout=60000)
    assert w.last_outcome.status == "completed"
    signals = w.views.signals
    grad = signals.series.view("grad_norm")
    assert np.isfinite(grad).all() and (grad > 0).all()
    # The grid is rebuilt at most once a second: the last epoch's predictions come at the next tick.
    qtbot.waitUntil(lambda: signals.samples_title.text().startswith("Validation predictions after epoch 2"))

    evaluation = show_tab(qtbot, w, "Evaluation").view
    qtbot.waitUntil(lambda: evaluation.details is not None, timeout=30000)
    report = evaluation.details.report
    cm = np.asarray(report["confusion_matrix"])
    assert cm.shape == (10, 10) and report["split"] == "test"
    assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum()) and report["accuracy"] > 0.8
    assert (evaluation.matrix.cm == cm).all()  # what the heatmap draws
    summary = read_summary(w.current_run_dir)
    assert report["accuracy"] == pytest.approx(summary["metrics"]["test_accuracy"], abs=1e-6)

    predict = show_tab(qtbot, w, "Predict").view
    qtbot.waitUntil(lambda: predict.info is not None, timeout=30000)  # from the checkpoint: no export yet
    assert "checkpoint" in predict.source_label.text()

    runs = show_tab(qtbot, w, "Runs").view
    names = [runs.table.item(r, 0).text() for r in range(runs.table.rowCount())]
    assert w.current_run_dir.name in names


def test_export_writes_onnx_and_predict_uses_it(
    qtbot: Any, make_window: Any, trained_run: Path, tmp_path: Path
) -> None:
    w = make_window()
    run = copy_run(trained_run, w.runs_dir)
    assert w.open_run(run)
    click(qtbot, w, "exportButton")
    dialog = w.export_dialog
    assert dialog is not None and dialog.isVisible() and dialog.output_path() == run / "model.onnx"
    with qtbot.waitSignal(dialog.exported, timeout=90000) as exported:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert exported.args[0]["parity"]["passed"] and (run / "model.onnx").is_file()
    assert w.views.current_key() == "predict"
    predict = w.views.predict
    qtbot.waitUntil(lambda: predict.info is not None and predict.info.origin.endswith("model.onnx"), timeout=30000)
    assert "exported model model.onnx" in predict.source_label.text()

    images, targets, labels = load_digits()
    png = tmp_path / "digit.png"
    Image.fromarray(images[7100, 0].numpy()).save(png)
    with qtbot.waitSignal(predict.predicted, timeout=30000) as predicted:
        predict.add_images([png])
    result = predicted.args[0][0]
    assert result["file"] == str(png) and "error" not in result
    assert result["label"] == labels[int(targets[7100])]  # this digit is an easy one for the MLP
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.export_dialog is None, timeout=5000)


def test_lr_finder_use_this_rate_sets_the_learning_rate(qtbot: Any, make_window: Any) -> None:
    w = make_window(Config().replace_value("model.hidden", [64]))
    w.activateWindow()
    qtbot.waitUntil(lambda: w.isActiveWindow(), timeout=3000)
    qtbot.keyClick(w, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dialog = w.lr_finder_dialog
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(dialog.search_finished, timeout=60000) as finished:
        pass
    suggested = finished.args[0].suggestion
    assert 1e-4 < suggested < 1e-1
    assert dialog.use_button.isEnabled()
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    spin = w.findChild(object, "lrSpinBox")
    assert spin.value() == pytest.approx(dialog.chosen, rel=1e-3)
    assert w.config().train.lr == pytest.approx(dialog.chosen, rel=1e-3)
    qtbot.waitUntil(lambda: w.lr_finder_dialog is None, timeout=5000)  # "Use this rate" closes it


def test_runs_tab_opens_a_run_in_the_window(qtbot: Any, make_window: Any, trained_run: Path) -> None:
    w = make_window()
    run = copy_run(trained_run, w.runs_dir)
    runs = show_tab(qtbot, w, "Runs").view
    qtbot.waitUntil(lambda: runs.table.rowCount() == 1, timeout=5000)
    runs.table.selectRow(0)
    qtbot.mouseClick(runs.open_button, Qt.MouseButton.LeftButton)
    assert w.current_run_dir == run and w.tabs.currentIndex() == 0
    assert len(w.history.epoch_x["val"]) == 2  # the run's curves
    assert w.views.signals.point_count() > 0  # and its step signals, from metrics.jsonl
    qtbot.waitUntil(lambda: w.views.evaluation.details is not None, timeout=30000)


def test_data_tab_loads_only_when_shown_and_follows_the_setup(qtbot: Any, make_window: Any) -> None:
    w = make_window()
    explorer = w.views.explorer
    assert not explorer.is_busy()  # nothing loads while the tab is hidden
    with qtbot.waitSignal(explorer.loaded, timeout=30000) as loaded:
        show_tab(qtbot, w, "Data")
    assert len(loaded.args[0].labels) == 10 and sum(loaded.args[0].split_sizes.values()) == 8000


def test_close_during_training_with_busy_views_is_clean(
    qtbot: Any, make_window: Any, dialogs: Any, trained_run: Path, capfd: Any
) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    run = copy_run(trained_run, w.runs_dir)
    w.views.evaluation.set_run(run)  # an evaluation in flight while the window closes
    w.views.predict.set_run(run)
    show_tab(qtbot, w, "Data")  # and the data overview
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(
        lambda: w.curves.point_count() > 0, timeout=60000
    )  # the first points; a generous cap for a loaded machine
    w.close()
    assert dialogs.shown and dialogs.shown[-1][0] == "question"
    qtbot.waitUntil(lambda: not w.isVisible() and not w.is_training, timeout=10000)
    assert read_summary(w.current_run_dir)["status"] == "stopped"
    assert not BackgroundCall.running_calls()
    assert "QThread: Destroyed" not in capfd.readouterr().err
