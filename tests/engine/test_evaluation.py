"""Evaluation metrics against hand-computed values, and `studio eval` on a real (tiny) digits run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli import main
from studio.config import load_config
from studio.engine.evaluate import (
    class_predictions,
    classification_report,
    confidence_histogram,
    fit_line,
    regression_points,
    regression_report,
)
from studio.engine.report import evaluation_details
from studio.engine.trainer import Trainer

# Six samples, three classes. Each row of PROBS is the model's softmax output; logits are their logs.
TRUE = torch.tensor([0, 0, 1, 1, 2, 2])
PROBS = torch.tensor(
    [
        [0.7, 0.2, 0.1],  # true 0, pred 0 (0.7)
        [0.3, 0.6, 0.1],  # true 0, pred 1 (0.6) wrong
        [0.1, 0.8, 0.1],  # true 1, pred 1 (0.8)
        [0.2, 0.5, 0.3],  # true 1, pred 1 (0.5)
        [0.05, 0.05, 0.9],  # true 2, pred 2 (0.9)
        [0.95, 0.03, 0.02],
    ]
)  # true 2, pred 0 (0.95) wrong
LOGITS = PROBS.log()


def test_classification_report_matches_hand_computed_values() -> None:
    r = classification_report(LOGITS, TRUE, ("a", "b", "c"))
    # Rows are the true class, columns the predicted one.
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["labels"] == ["a", "b", "c"]
    pc = r["per_class"]
    # precision = diagonal / column sum; recall = diagonal / row sum
    assert pc["a"]["precision"] == pytest.approx(1 / 2) and pc["a"]["recall"] == pytest.approx(1 / 2)
    assert pc["b"]["precision"] == pytest.approx(2 / 3) and pc["b"]["recall"] == pytest.approx(1.0)
    assert pc["c"]["precision"] == pytest.approx(1.0) and pc["c"]["recall"] == pytest.approx(1 / 2)
    assert pc["a"]["f1"] == pytest.approx(0.5)
    assert pc["b"]["f1"] == pytest.approx(0.8)
    assert pc["c"]["f1"] == pytest.approx(2 / 3)
    assert [pc[k]["support"] for k in "abc"] == [2, 2, 2]


def test_a_class_never_predicted_has_zero_precision_not_nan() -> None:
    logits = torch.tensor([[2.0, 0.0], [3.0, 0.0]])
    r = classification_report(logits, torch.tensor([0, 1]), ("x", "y"))
    assert r["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert r["per_class"]["x"]["precision"] == pytest.approx(0.5)


def test_class_predictions_confidence_and_cells() -> None:
    p = class_predictions(LOGITS, TRUE)
    assert p.pred.tolist() == [0, 1, 1, 1, 2, 0]
    np.testing.assert_allclose(p.confidence, [0.7, 0.6, 0.8, 0.5, 0.9, 0.95], rtol=1e-6)
    assert p.correct.tolist() == [True, False, True, True, True, False]
    # The surest mistake comes first.
    assert p.wrong_indices.tolist() == [5, 1]
    assert p.cell_indices(1, 1).tolist() == [2, 3]  # 0.8 before 0.5
    assert p.cell_indices(2, 0).tolist() == [5]
    assert p.cell_indices(0, 2).tolist() == []
    # Every sample lies in exactly one cell, and cell sizes are the confusion matrix.
    cm = classification_report(LOGITS, TRUE, ("a", "b", "c"))["confusion_matrix"]
    assert [[len(p.cell_indices(t, q)) for q in range(3)] for t in range(3)] == cm


def test_confidence_histogram_splits_correct_and_wrong() -> None:
    p = class_predictions(LOGITS, TRUE)
    h = confidence_histogram(p.confidence, p.correct, bins=5)
    np.testing.assert_allclose(h.edges, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    # correct: 0.7, 0.8, 0.5, 0.9 -> bins [0.4,0.6):1, [0.6,0.8):1, [0.8,1]:2 (0.8 sits on an edge: upper bin)
    assert h.correct.tolist() == [0, 0, 1, 1, 2]
    # wrong: 0.6 -> [0.6,0.8), 0.95 -> [0.8,1]
    assert h.wrong.tolist() == [0, 0, 0, 1, 1]
    # A confidence of exactly 1 is counted, in the last bin.
    h1 = confidence_histogram(np.array([1.0]), np.array([True]), bins=4)
    assert h1.correct.tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError):
        confidence_histogram(np.array([0.5]), np.array([True]), bins=0)


def test_regression_report_matches_hand_computed_values() -> None:
    out = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    y = torch.tensor([1.0, 2.0, 2.0, 5.0])
    r = regression_report(out, y)
    # errors 0, 0, 1, -1: MSE 2/4, MAE 2/4; SS_tot = 2.25+0.25+0.25+6.25 = 9, SS_res = 2
    assert r["mse"] == pytest.approx(0.5)
    assert r["mae"] == pytest.approx(0.5)
    assert r["r2"] == pytest.approx(1 - 2 / 9)
    pts = regression_points(out, y)
    assert pts.residuals.tolist() == [0.0, 0.0, 1.0, -1.0]


def test_fit_line() -> None:
    assert fit_line(np.array([0, 1, 2, 3]), np.array([1, 3, 5, 7])) == pytest.approx((2.0, 1.0))
    assert fit_line(np.array([2.0, 2.0]), np.array([1.0, 3.0])) == (0.0, 2.0)  # vertical data: flat line
    assert fit_line(np.array([]), np.array([])) == (0.0, 0.0)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    cfg = load_config("examples/digits.toml", ["train.epochs=1", "model.hidden=[32]", "train.batch_size=128"])
    Trainer(cfg, run_dir).fit()
    return run_dir


def test_studio_eval_json_on_a_digits_run(digits_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(digits_run), "--split", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (10, 10)
    assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert cm.sum() == 800  # 10% of the 8,000 digits
    assert report["labels"] == [str(i) for i in range(10)]
    for i, label in enumerate(report["labels"]):
        pc = report["per_class"][label]
        assert pc["precision"] == pytest.approx(cm[i, i] / cm[:, i].sum())
        assert pc["recall"] == pytest.approx(cm[i, i] / cm[i].sum())
        assert pc["support"] == cm[i].sum()
    assert report["accuracy"] > 0.8  # one epoch of a small MLP already learns digits
    summary = json.loads((digits_run / "summary.json").read_text())
    # The best checkpoint is the last one after one epoch, so eval agrees with training's test figure.
    assert report["accuracy"] == pytest.approx(summary["metrics"]["test_accuracy"])
    assert report["loss"] == pytest.approx(summary["metrics"]["test_loss"], rel=1e-4)


def test_evaluation_details_agree_with_the_report(digits_run: Path) -> None:
    d = evaluation_details(digits_run, "best", "test")
    assert d.task == "classification" and d.classes is not None and d.images is not None
    assert d.images.shape == (800, 1, 28, 28) and d.images.dtype == np.uint8
    assert d.classes.correct.mean() == pytest.approx(d.report["accuracy"])
    cm = d.report["confusion_matrix"]
    assert all(len(d.classes.cell_indices(t, p)) == cm[t][p] for t in range(10) for p in range(10))
    assert np.all((d.classes.confidence >= 0.1 - 1e-9) & (d.classes.confidence <= 1.0))
    assert d.source_indices is not None and len(set(d.source_indices.tolist())) == 800


def test_eval_of_a_missing_run_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not found" in err and err.count("\n") == 1


def test_regression_run_details(tmp_path: Path) -> None:
    from studio.config import Config, config_from_dict

    cfg = config_from_dict(
        {"data": {"source": "linear"}, "model": {"arch": "linear"}, "train": {"epochs": 3, "lr": 0.05}}
    )
    assert isinstance(cfg, Config)
    Trainer(cfg, tmp_path / "lin").fit()
    d = evaluation_details(tmp_path / "lin", "best", "test")
    assert d.task == "regression" and d.regression is not None and d.classes is None and d.images is None
    assert d.report["accuracy"] is None and math.isfinite(d.report["mse"])
    assert d.report["mse"] == pytest.approx(float(np.mean(d.regression.residuals**2)))
    # The loss is reported in the target's units, like training's val/test loss: MSE here.
    assert d.report["loss"] == pytest.approx(d.report["mse"], rel=1e-4)


def test_sample_images_in_memory_and_file_backed(digits_run: Path) -> None:
    from studio.engine.report import EvaluationDetails

    d = evaluation_details(digits_run, "best", "test")
    assert d.images is not None
    np.testing.assert_array_equal(d.sample_images([5, 2]), d.images[[5, 2]])

    class FileBacked:  # an image folder over the memory budget: indexes like a tensor, decodes on demand
        def __init__(self, x: torch.Tensor) -> None:
            self.x = x

        def __getitem__(self, idx: torch.Tensor) -> FileBacked:
            return FileBacked(self.x[idx])

        def decode(self) -> torch.Tensor:
            return self.x

    lazy = EvaluationDetails(
        d.report, d.task, d.labels, d.classes, None, None, d.source_indices, FileBacked(torch.from_numpy(d.images))
    )
    np.testing.assert_array_equal(lazy.sample_images([5, 2]), d.images[[5, 2]])
