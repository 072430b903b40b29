"""pytest-qt tests of the insight views: evaluation, LR finder, data explorer, runs, live signals."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.config import config_from_dict, load_config
from studio.data.base import DataBundle, DataSpec, Split
from studio.data.overview import data_overview
from studio.engine import report
from studio.engine.events import StepEnd
from studio.engine.lr_finder import LRFinderPoint, LRFinderResult, lr_schedule, smooth_losses, suggest_lr
from studio.engine.prediction_samples import PredictionSamples
from studio.engine.tensorboard_export import MISSING, tensorboard_available
from studio.engine.trainer import Trainer
from studio.ui import evaluation_view, lr_finder_dialog
from studio.ui.background_call import BackgroundCall
from studio.ui.data_explorer import DataExplorerView
from studio.ui.evaluation_view import MAX_SAMPLES, EvaluationView
from studio.ui.live_insight import LiveInsightView
from studio.ui.lr_finder_dialog import LRFinderDialog
from studio.ui.runs_view import RunsView

WAIT = 60_000  # ms; a shared CI machine can be slow


def _digits(overrides: list[str]):
    return load_config("examples/digits.toml", ["model.hidden=[32]", "train.batch_size=256", *overrides])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("runs")
    Trainer(_digits(["train.epochs=2"]), base / "20261122-100000-digits-mlp").fit()
    Trainer(_digits(["train.epochs=2", "train.lr=0.01"]), base / "20261122-110000-digits-mlp").fit()
    return base


@pytest.fixture(scope="module")
def run_dir(runs: Path) -> Path:
    return runs / "20261122-100000-digits-mlp"


# -- Evaluation ---------------------------------------------------------------------------------


def test_evaluation_view_computes_off_the_gui_thread(qtbot, run_dir: Path, monkeypatch) -> None:
    threads: list[threading.Thread] = []
    real = report.evaluation_details

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation_view, "evaluation_details", spy)
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    with qtbot.waitSignal(view.evaluated, timeout=WAIT) as blocker:
        view.set_run(run_dir)
        assert view.is_busy()
    assert threads and threads[0] is not threading.main_thread()
    details = blocker.args[0]
    cm = np.array(details.report["confusion_matrix"])
    assert cm.sum() == 800 and np.array_equal(view.matrix.cm, cm)
    assert f"{details.report['accuracy']:.1%}" in view.headline.text()
    assert view.table.rowCount() == 10
    assert view.table.item(0, 0).text() == "0" and view.table.item(9, 0).text() == "9"
    assert float(view.table.item(3, 2).text()) == pytest.approx(details.report["per_class"]["3"]["recall"], abs=1e-3)
    # The grid opens on the most confident mistakes, all outlined as wrong.
    wrong = details.classes.wrong_indices
    assert view.shown_indices() == wrong[:MAX_SAMPLES].tolist()
    assert view.samples.wrong_count() == min(len(wrong), MAX_SAMPLES)
    # Two bar series in the histogram: right and wrong.
    bars = [i for i in view.histogram.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 2


def test_clicking_a_cell_shows_its_samples_and_normalise_toggles(qtbot, run_dir: Path) -> None:
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    with qtbot.waitSignal(view.evaluated, timeout=WAIT) as blocker:
        view.set_run(run_dir)
    d = blocker.args[0]
    cm = np.array(d.report["confusion_matrix"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    t, p = np.unravel_index(np.argmax(off), off.shape)  # the most common confusion
    centre = view.matrix.cell_center(int(t), int(p))
    with qtbot.waitSignal(view.matrix.cell_clicked) as clicked:
        qtbot.mouseClick(view.matrix, Qt.MouseButton.LeftButton, pos=QPoint(int(centre.x()), int(centre.y())))
    assert clicked.args == [int(t), int(p)]
    assert view.shown_indices() == d.classes.cell_indices(int(t), int(p)).tolist()
    assert view.samples.count() == cm[t, p] and view.samples.wrong_count() == cm[t, p]
    assert f"{cm[t, p]} sample" in view.samples_title.text()
    # A diagonal cell: right answers, none marked wrong.
    view.show_cell(1, 1)
    assert view.samples.count() == min(cm[1, 1], MAX_SAMPLES) and view.samples.wrong_count() == 0
    assert not view.matrix.normalise
    view.normalise_box.setChecked(True)
    assert view.matrix.normalise


def test_a_newer_request_wins_and_closing_mid_evaluation_is_safe(qtbot, run_dir: Path, monkeypatch) -> None:
    test_details = report.evaluation_details(run_dir, "best", "test")
    val_details = report.evaluation_details(run_dir, "best", "val")

    slow_test_split = threading.Event()

    def fake(run_dir, which, split):
        if split == "test":
            # The first request is slow: it ends only when the test lets it, after the user switched split.
            assert slow_test_split.wait(WAIT / 1000)
            return test_details
        return val_details

    monkeypatch.setattr(evaluation_view, "evaluation_details", fake)
    view = EvaluationView()
    qtbot.addWidget(view)
    view.set_run(run_dir)
    with qtbot.waitSignal(view.evaluated, timeout=WAIT) as blocker:
        view.split_combo.setCurrentText("val")
    assert blocker.args[0] is val_details
    slow_test_split.set()  # the stale test-split result arrives now and must be dropped
    # A call's result is delivered before it counts as finished: once none runs, the stale one has come.
    qtbot.waitUntil(lambda: not BackgroundCall.running_calls(), timeout=WAIT)
    assert view.details is val_details and view.report_split() == "val"
    slow_test_split.clear()
    doomed = EvaluationView()
    doomed.set_run(run_dir)  # slow: still running when the view goes away
    with qtbot.waitSignal(doomed.destroyed, timeout=WAIT):
        doomed.deleteLater()
    slow_test_split.set()  # the result comes back to a destroyed view: no crash, no error
    qtbot.waitUntil(lambda: not BackgroundCall.running_calls(), timeout=WAIT)


def test_evaluation_of_a_broken_run_reports_the_error(qtbot, tmp_path: Path) -> None:
    view = EvaluationView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.failed, timeout=WAIT) as blocker:
        view.set_run(tmp_path / "missing")
    assert "not found" in blocker.args[0]
    assert "could not evaluate" in view.status.text()
    assert view.evaluate_button.isEnabled()


def test_regression_run_shows_predicted_against_true(qtbot, tmp_path: Path) -> None:
    cfg = config_from_dict(
        {"data": {"source": "linear"}, "model": {"arch": "linear"}, "train": {"epochs": 3, "lr": 0.05}}
    )
    Trainer(cfg, tmp_path / "lin").fit()
    view = EvaluationView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.evaluated, timeout=WAIT) as blocker:
        view.set_run(tmp_path / "lin")
    d = blocker.args[0]
    assert view.pages.currentIndex() == 2
    assert "R²" in view.headline.text() and "MSE" in view.headline.text()
    scatter = [i for i in view.scatter_plot.getPlotItem().items if type(i).__name__ == "ScatterPlotItem"]
    assert len(scatter) == 1 and len(scatter[0].data) == len(d.regression.true)
    assert len(view.residual_plot.getPlotItem().items) >= 2  # residuals and the zero line


# -- LR finder ----------------------------------------------------------------------------------


def _fake_find_lr(config, *, start_lr, end_lr, num_steps, on_point, should_stop):
    """A synthetic curve (flat, falling, exploding) streamed like the real test, from the worker."""
    lrs = lr_schedule(1e-6, 1.0, 60)
    x = np.log10(lrs)
    raw = (2.3 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -1.3, (x + 1.3) ** 2 * 6, 0.0)).tolist()
    for i, (lr, v) in enumerate(zip(lrs, raw, strict=True)):
        if should_stop():
            lrs, raw = lrs[:i], raw[:i]
            break
        on_point(LRFinderPoint(i + 1, 60, lr, v, v))
    smooth = smooth_losses(raw)
    return LRFinderResult(list(lrs), smooth, list(raw), suggest_lr(lrs, smooth), "test curve")


def test_lr_finder_dialog_marks_the_suggestion_and_emits_the_rate(qtbot, monkeypatch) -> None:
    threads: list[threading.Thread] = []

    def fake(config, **kw):
        threads.append(threading.current_thread())
        return _fake_find_lr(config, **kw)

    monkeypatch.setattr(lr_finder_dialog, "find_lr", fake)
    dialog = LRFinderDialog(load_config("examples/digits.toml"), autostart=False)
    qtbot.addWidget(dialog)
    assert not dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.search_finished, timeout=WAIT) as blocker:
        dialog.start()
    result = blocker.args[0]
    assert threads[0] is not threading.main_thread()
    assert result.suggestion is not None and dialog.chosen == result.suggestion
    assert dialog.use_button.isEnabled() and dialog.suggest_line.isVisible()
    assert dialog.plot.getPlotItem().getAxis("bottom").logMode  # the rate axis is logarithmic
    assert "Suggested rate" in dialog.rate_label.text()
    assert len(dialog.curve.getData()[0]) == len(result.lrs)
    # Picking another rate snaps to a tested one; "Use this rate" emits it.
    dialog.choose(3e-3)
    assert dialog.chosen in result.lrs and abs(np.log10(dialog.chosen) - np.log10(3e-3)) < 0.1
    assert "Chosen rate" in dialog.rate_label.text()
    with qtbot.waitSignal(dialog.rate_chosen) as chosen:
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert chosen.args == [dialog.chosen]


def test_lr_finder_dialog_runs_the_real_range_test(qtbot) -> None:
    dialog = LRFinderDialog(_digits([]), num_steps=80, autostart=True)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.search_finished, timeout=WAIT) as blocker:
        pass
    result = blocker.args[0]
    assert result.suggestion is not None and 1e-4 <= result.suggestion <= 1e-1
    assert dialog.progress.value() == len(result.lrs)


def test_lr_finder_dialog_stop(qtbot, monkeypatch) -> None:
    started = threading.Event()

    def slow(config, *, on_point, should_stop, **kw):
        started.set()
        while not should_stop():
            threading.Event().wait(0.01)
        return LRFinderResult([], [], [], None, "stopped by the user")

    monkeypatch.setattr(lr_finder_dialog, "find_lr", slow)
    dialog = LRFinderDialog(load_config("examples/digits.toml"), autostart=False)
    qtbot.addWidget(dialog)
    dialog.start()
    assert started.wait(10) and dialog.is_running()
    with qtbot.waitSignal(dialog.search_finished, timeout=WAIT):
        qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    assert "No suggestion" in dialog.rate_label.text() and not dialog.use_button.isEnabled()


# -- Data explorer ------------------------------------------------------------------------------


def test_data_explorer_shows_counts_samples_and_checks(qtbot) -> None:
    view = DataExplorerView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    with qtbot.waitSignal(view.loaded, timeout=WAIT) as blocker:
        view.set_config(load_config("examples/digits.toml"))
    o = blocker.args[0]
    assert o.split_sizes == {"train": 6400, "val": 800, "test": 800}
    bars = [i for i in view.counts_plot.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 3  # train, val, test
    assert len(view.rows_canvas.rows) == 10 and all(len(r[2]) == 12 for r in view.rows_canvas.rows)
    assert "no exact duplicates" in view.findings.text()
    assert view.sizes_table.item(0, 0).text() == "28×28" and view.sizes_table.item(0, 1).text() == "8,000"
    view.share_box.setChecked(True)  # the class mix as % of each split
    bars = [i for i in view.counts_plot.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert sum(bars[0].opts["height"]) == pytest.approx(100.0)


def test_data_explorer_warns_about_leaks_and_imbalance(qtbot) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8, generator=gen)
    y = torch.tensor([0] * 50 + [1] * 10)
    val_x = x[:5].clone()  # five training images reappear in val
    spec = DataSpec(source="folder", kind="image", task="classification", input_shape=(1, 8, 8), labels=("cat", "dog"))
    bundle = DataBundle(spec, Split(x, y), Split(val_x, y[:5]), Split(x[:0], y[:0]))
    view = DataExplorerView()
    qtbot.addWidget(view)
    view.show_overview(data_overview(load_config("examples/digits.toml"), bundle=bundle))
    text = view.findings.text()
    assert "5 val samples" in text and "also appear in train" in text
    assert "'cat' has 50 samples, 'dog' only 10" in text
    assert "the val split has no samples of 'dog'" in text


def test_data_explorer_reports_bad_data(qtbot, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,label\n")
    cfg = config_from_dict({"data": {"source": "csv", "path": str(bad)}})
    view = DataExplorerView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.failed, timeout=WAIT) as blocker:
        view.set_config(cfg)
    assert "no data rows" in blocker.args[0] and "could not load" in view.title.text()


def test_data_explorer_tabular_regression(qtbot) -> None:
    view = DataExplorerView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loaded, timeout=WAIT):
        view.set_config(config_from_dict({"data": {"source": "linear"}, "model": {"arch": "linear"}}))
    assert view.right_stack.currentIndex() == 1 and view.features_table.rowCount() == 1
    assert view.features_table.item(0, 0).text() == "x"
    assert not view.sizes_table.isVisible()


# -- Runs ---------------------------------------------------------------------------------------


def test_runs_view_lists_and_overlays(qtbot, runs: Path) -> None:
    view = RunsView(runs)
    qtbot.addWidget(view)
    assert view.table.rowCount() == 2
    headers = [view.table.horizontalHeaderItem(i).text() for i in range(view.table.columnCount())]
    assert headers == ["name", "date", "data", "model", "status", "best val acc", "epochs"]
    row = [view.table.item(0, j).text() for j in range(7)]
    assert row[2] == "digits" and row[3] == "mlp [32]" and row[4] == "completed" and row[6] == "2/2"
    assert row[5].endswith("%")
    view.select_runs([r.name for r in view.runs])
    assert len(view.selected_runs()) == 2
    curves = [i for i in view.loss_plot.getPlotItem().items if type(i).__name__ == "PlotDataItem"]
    assert len(curves) == 4  # val and train for each run
    # No legend over the curves: each run's colour is its row's swatch, and a curve's tooltip names it.
    assert view.loss_plot.getPlotItem().legend is None
    assert {c.curve.toolTip().split(" · ")[0] for c in curves} == {r.name for r in view.runs}
    assert all(not view.table.item(row, 0).icon().isNull() for row in range(2))
    with qtbot.waitSignal(view.run_opened) as opened:
        view.select_runs([view.runs[0].name])
        qtbot.mouseClick(view.open_button, Qt.MouseButton.LeftButton)
    assert opened.args == [str(view.runs[0].path)]


def test_runs_view_export_csv(qtbot, runs: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "all.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "CSV files (*.csv)"))
    view = RunsView(runs)
    qtbot.addWidget(view)
    view.select_runs([view.runs[1].name])
    qtbot.mouseClick(view.csv_button, Qt.MouseButton.LeftButton)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("run,kind,split,epoch,step,loss")
    assert all(line.startswith(view.runs[1].name + ",") for line in lines[1:])
    assert "wrote" in view.status.text()


def test_runs_view_delete_needs_confirmation(qtbot, tmp_path: Path, monkeypatch) -> None:
    base = tmp_path / "runs"
    for name in ("a", "b"):
        (base / name).mkdir(parents=True)
        (base / name / "config.toml").write_text('[data]\nsource = "digits"\n')
    asked: list[str] = []
    answer = {"value": QMessageBox.StandardButton.Cancel}

    def question(parent, title, text, *args):
        asked.append(text)
        return answer["value"]

    monkeypatch.setattr(QMessageBox, "question", question)
    view = RunsView(base)
    qtbot.addWidget(view)
    view.select_runs(["a"])
    qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)
    assert asked and "Delete 1 run for good?" in asked[0] and (base / "a").is_dir()
    answer["value"] = QMessageBox.StandardButton.Yes
    view.select_runs(["a"])
    qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)
    assert not (base / "a").exists() and (base / "b").is_dir()
    assert view.table.rowCount() == 1 and "deleted 1 run" in view.status.text()


def test_runs_view_tensorboard_missing_message(qtbot, runs: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    assert not tensorboard_available()
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a: shown.append(text))
    view = RunsView(runs)
    qtbot.addWidget(view)
    view.select_runs([view.runs[0].name])
    qtbot.mouseClick(view.tensorboard_button, Qt.MouseButton.LeftButton)
    assert shown == [MISSING]


# -- Live signals -------------------------------------------------------------------------------


def _step(i: int, cuda: bool = False) -> StepEnd:
    return StepEnd(
        epoch=1,
        step=i * 10,
        loss=1.0 / i,
        accuracy=0.5,
        lr=1e-3,
        batch_size=64,
        time=float(i),
        epoch_progress=i / 50,
        samples_per_s=1000.0 + i,
        grad_norm=2.0 / i,
        cuda_memory_allocated=(100 + i) * 1024 * 1024 if cuda else None,
        cuda_memory_reserved=256 * 1024 * 1024 if cuda else None,
    )


def _points(curve) -> int:
    return 0 if curve.xData is None else len(curve.xData)


def test_live_insight_plots_steps_on_a_timer(qtbot) -> None:
    view = LiveInsightView()
    qtbot.addWidget(view)
    view.show()
    for i in range(1, 51):
        view.add_step(_step(i))
    qtbot.waitUntil(lambda: _points(view.grad_curve) == 50, timeout=5000)
    x, y = view.grad_raw.xData, view.grad_raw.yData
    assert x[-1] == 500 and y[-1] == pytest.approx(2.0 / 50)
    assert _points(view.speed_curve) == 50
    assert view.memory_plot.isHidden()  # a CPU run has no CUDA memory: no empty plot
    assert "not on a CUDA GPU" in view.grad_stats.text()
    assert "gradient norm: last 0.04" in view.grad_stats.text()
    for i in range(51, 61):
        view.add_step(_step(i, cuda=True))
    qtbot.waitUntil(lambda: view.memory_plot.isVisible(), timeout=5000)
    alloc = view.alloc_curve.yData
    assert alloc[-1] == pytest.approx(160.0)  # MiB
    view.clear()
    qtbot.waitUntil(lambda: _points(view.grad_curve) == 0, timeout=5000)


def test_live_insight_validation_grid_marks_wrong(qtbot) -> None:
    view = LiveInsightView()
    qtbot.addWidget(view)
    images = np.zeros((6, 1, 28, 28), dtype=np.uint8)
    samples = PredictionSamples(
        epoch=3,
        images=images,
        true=(0, 1, 2, 3, 4, 5),
        pred=(0, 1, 7, 3, 4, 9),
        confidence=(0.9, 0.8, 0.6, 0.99, 0.7, 0.5),
        labels=tuple(str(i) for i in range(10)),
    )
    view.set_predictions(samples)
    assert view.samples.count() == 6 and view.samples.wrong_count() == 2
    assert "epoch 3: 4 of 6 right, 2 wrong" in view.samples_title.text()
