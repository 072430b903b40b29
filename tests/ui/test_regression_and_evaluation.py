"""Regression runs read as regression (RMSE/R², no accuracy panel); the Evaluation tab never shows
another run's figures, shows a linear model's learned line, and follows the dark theme."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtGui import QColor

from studio.engine.evaluate import ClassPredictions, RegressionPoints
from studio.engine.report import EvaluationDetails
from studio.ui.evaluation_view import EvaluationView
from studio.ui.regression_view import parameters_text
from studio.ui.theme import DARK, LIGHT, apply_theme

pytestmark = pytest.mark.usefixtures("qapp")


@dataclass(frozen=True)
class _Line:  # the shape of h14-cli's engine FittedLine
    feature: str
    x: np.ndarray
    y: np.ndarray
    line_x: np.ndarray
    line_y: np.ndarray


def _regression_details(run: str = "line-run", with_line: bool = True) -> Any:
    x = np.linspace(0, 10, 50)
    y = 2 * x + 1
    report = {
        "run_dir": run,
        "checkpoint": "best",
        "epoch": 3,
        "split": "train",
        "note": "evaluated on train (no val or test split)",
        "mse": 0.04,
        "mae": 0.15,
        "r2": 0.999,
        "n": 50,
        "parameters": {"weights": {"x": 2.001}, "intercept": 0.998, "slope": 2.001},
    }
    d = EvaluationDetails(report, "regression", (), None, RegressionPoints(y, y + 0.1, 1.0, 0.1), None, None)
    if with_line:
        object.__setattr__(d, "fitted_line", _Line("x", x, y, x, y))
    return d


def _classification_details(run: str = "digits-run") -> EvaluationDetails:
    true = np.array([0, 1, 1, 0])
    pred = np.array([0, 1, 0, 0])
    conf = np.array([0.9, 0.8, 0.6, 0.7])
    report = {
        "run_dir": run,
        "checkpoint": "best",
        "epoch": 2,
        "split": "test",
        "accuracy": 0.75,
        "loss": 0.5,
        "n": 4,
        "labels": ["0", "1"],
        "confusion_matrix": [[2, 0], [1, 1]],
        "per_class": {
            "0": {"precision": 0.67, "recall": 1.0, "f1": 0.8, "support": 2},
            "1": {"precision": 1.0, "recall": 0.5, "f1": 0.67, "support": 2},
        },
    }
    probs = np.stack([conf, 1 - conf], 1).astype(np.float32)
    return EvaluationDetails(
        report, "classification", ("0", "1"), ClassPredictions(true, pred, conf, probs), None, None, None
    )


def test_the_learned_line_is_in_words() -> None:
    text, tip = parameters_text({"weights": {"x": 2.0012}, "intercept": 0.9987, "slope": 2.0012})
    assert text == "learned: y = 2.001 · x + 0.9987" and "slope" in tip
    many = {"weights": {f"f{i}": float(i) for i in range(12)}, "intercept": 5.0}
    text, tip = parameters_text(many)
    assert text.startswith("learned: y = 5 + 11·f11") and "4 more" in text and "f0: 0.0" in tip


def test_a_line_fit_shows_its_learned_parameters_fitted_line_and_split(qtbot: Any) -> None:
    view = EvaluationView()
    qtbot.addWidget(view)
    view.show()
    view.show_details(_regression_details())
    assert view.pages.currentIndex() == 2
    assert view.regression.parameters.isVisible() and "2.001 · x + 0.998" in view.regression.parameters.text()
    assert view.regression.line_plot.isVisible()
    assert "evaluated on train (no val or test split)" in view.status.text()
    assert "'>RMSE</span>" in view.headline.text() and "'>MSE</span>" not in view.headline.text()
    view.show_details(_regression_details(with_line=False))
    assert not view.regression.line_plot.isVisible()


def test_another_run_never_shows_the_last_runs_figures(qtbot: Any, tmp_path: Path) -> None:
    view = EvaluationView()
    qtbot.addWidget(view)
    view.show_details(_regression_details("house-prices"))
    assert "R²" in view.headline.text()
    with qtbot.waitSignal(view.failed, timeout=20000):
        view.set_run(tmp_path / "line-run")  # no checkpoint there: the evaluation fails
        assert view.headline.text() == "" and view.pages.currentIndex() == 0  # cleared at once
    assert view.headline.text() == "" and view.pages.currentIndex() == 0 and view.details is None
    assert "Could not evaluate line-run" in view.empty.text()


def test_the_evaluation_follows_the_dark_theme(qtbot: Any, qapp: Any) -> None:
    apply_theme(qapp, "light")
    view = EvaluationView()
    qtbot.addWidget(view)
    view.show_details(_classification_details())
    assert LIGHT.text in view.headline.text()
    try:
        apply_theme(qapp, "dark")
        view.apply_theme()
        assert DARK.text in view.headline.text() and LIGHT.text not in view.headline.text()
        bg = view.histogram.backgroundBrush().color()
        assert bg == QColor(DARK.plot_bg)
    finally:
        apply_theme(qapp, "light")


def test_regression_cards_show_rmse_and_r2(qtbot: Any) -> None:
    from studio.engine.events import EpochEnd
    from studio.ui.history import RunHistory
    from studio.ui.metric_cards import MetricCards
    from studio.ui.run_controller import RunController

    h = RunHistory()
    cards = MetricCards(h, RunController(h))
    qtbot.addWidget(cards)
    cards.set_task("regression", "auto")
    assert cards.val_loss.title.text() == "VAL RMSE" and cards.val_acc.title.text() == "VAL R²"
    m: dict[str, float | None] = {"val_loss": 19_236_328.0, "val_r2": 0.81}
    cards._on_epoch_ended(EpochEnd(epoch=2, epochs=5, step=10, time=1.0, metrics=m, best_epoch=2, is_best=True))
    assert cards.val_loss.value.text() == "4,385.9"  # √MSE, in the target's units
    assert cards.val_acc.value.text() == "0.810"
    cards.set_task("classification")
    assert cards.val_acc.title.text() == "VAL ACCURACY"
