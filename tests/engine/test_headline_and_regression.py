"""One headline number per run (the best checkpoint, named), regression figures, and the line fit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import studio.data as data
from studio.cli import main
from studio.engine.progress import headline
from studio.engine.records import EpochRecord
from studio.engine.report import evaluate_run, evaluation_details
from studio.engine.run_dir import read_metrics
from tests.export.runs import tiny_digits, toml_for, train_run


def _test_record(run_dir: Path) -> EpochRecord:
    (record,) = [r for r in read_metrics(run_dir) if isinstance(r, EpochRecord) and r.split == "test"]
    return record


def test_the_test_figures_come_from_the_best_checkpoint_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(data.LOADERS, "digits", tiny_digits(300, 14))
    run_dir = train_run(tmp_path, "run", toml_for("digits", "mlp", epochs=2, lr=0.003))
    # A third epoch at a rate that wrecks the weights: the last weights are no longer the best.
    config = run_dir / "config.toml"
    config.write_text(re.sub(r"(?m)^lr = .*$", "lr = 50.0", config.read_text(encoding="utf-8")), encoding="utf-8")
    assert main(["resume", str(run_dir), "--epochs", "3", "-q"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["checkpoint"] == "best" and summary["best"]["epoch"] <= 2
    record = _test_record(run_dir)
    assert record.checkpoint == "best" and record["checkpoint"] == "best"
    # `studio eval` with its defaults gives the very same number, and says which checkpoint.
    best, last = evaluate_run(run_dir), evaluate_run(run_dir, "last")
    assert best["checkpoint"] == "best" and best["split"] == "test"
    assert record.loss == pytest.approx(best["loss"], rel=1e-4)
    assert record.accuracy == pytest.approx(best["accuracy"]) == summary["metrics"]["test_accuracy"]
    assert last["loss"] != pytest.approx(best["loss"], rel=1e-3)
    # The end message names the checkpoint and its epoch.
    text = headline(summary)
    assert text is not None and text.startswith(f"test accuracy {best['accuracy']:.4f}")
    assert f"(best checkpoint, epoch {summary['best']['epoch']})" in text


def test_regression_records_rmse_mae_and_r2(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path, "line", toml_for("linear", "linear", epochs=3, lr=0.05))
    records = [r for r in read_metrics(run_dir) if isinstance(r, EpochRecord)]
    val = [r for r in records if r.split == "val"]
    assert val and all(r.rmse is not None and r.mae is not None and r.r2 is not None for r in val)
    assert all(r.rmse**2 == pytest.approx(r.loss, rel=1e-4) for r in val)  # MSE loss, in the target's units
    test = _test_record(run_dir)
    assert test.checkpoint == "best" and test.r2 is not None and test.r2 <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    m = summary["metrics"]
    assert m["test_rmse"] == pytest.approx(test.rmse) and m["val_r2"] == pytest.approx(val[-1].r2)
    assert m["train_rmse"] is not None and m["test_accuracy"] is None
    report = evaluate_run(run_dir)
    assert report["rmse"] == pytest.approx(test.rmse, rel=1e-4) and report["r2"] == pytest.approx(test.r2, rel=1e-4)
    assert "test RMSE" in (headline(summary) or "")


def test_the_tutorial_line_fit_is_evaluated_on_train_and_shows_slope_and_intercept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "line"
    assert main(["train", "examples/line.toml", "--run-dir", str(run_dir), "-q"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert "evaluated on train (no val or test split)" in err
    assert report["split"] == "train" and report["note"] == "evaluated on train (no val or test split)"
    params = report["parameters"]
    assert params["slope"] == pytest.approx(2.0, abs=0.15) and params["intercept"] == pytest.approx(1.0, abs=0.25)
    assert params["weights"] == {"x": params["slope"]}
    # The Evaluation view's plot: the 100 points and the model's line through them.
    line = evaluation_details(run_dir).fitted_line
    assert line is not None and line.feature == "x" and len(line.x) == len(line.y) == 100
    np.testing.assert_allclose(line.line_y, params["intercept"] + params["slope"] * line.line_x, rtol=1e-4, atol=1e-4)
    assert line.line_x.min() == pytest.approx(line.x.min()) and line.line_x.max() == pytest.approx(line.x.max())


def test_a_linear_classifier_shows_its_weights_per_class(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{'hi' if i > 20 else 'lo'}\n" for i in range(40)))
    run_dir = train_run(tmp_path, "cls", toml_for("csv", "linear", path=csv, epochs=2))
    params = evaluate_run(run_dir)["parameters"]
    assert set(params["weights"]) == {"hi", "lo"} and set(params["weights"]["hi"]) == {"a", "b"}
    assert set(params["intercept"]) == {"hi", "lo"}
    assert "parameters" not in evaluate_run(
        train_run(tmp_path, "mlp", toml_for("csv", "mlp", path=csv, target="label"))
    )


def test_the_new_record_fields_round_trip_and_bad_values_are_dropped() -> None:
    from studio.engine.records import record_from_json, record_to_json

    test = EpochRecord("test", 3, 30, 0.5, None, rmse=0.7, mae=0.6, r2=0.9, checkpoint="best")
    line = record_to_json(test)
    assert line["checkpoint"] == "best" and line["rmse"] == 0.7 and list(line)[:9] == list(test)[:9]
    assert record_from_json(line) == test
    assert "rmse" not in record_to_json(EpochRecord("val", 1, 10, 0.5, 0.8))  # classification: absent
    forged = record_from_json(line | {"checkpoint": "../../etc", "r2": "high"})
    assert forged is not None and forged.checkpoint is None and forged.r2 is None and forged.rmse == 0.7


def test_eval_export_and_predict_default_to_the_headline_checkpoint() -> None:
    import inspect

    from studio.cli import build_parser
    from studio.export.predict import CheckpointPredictor
    from studio.export.run_export import export_run

    parser = build_parser()
    assert parser.parse_args(["eval", "RUN"]).checkpoint == "best"
    assert parser.parse_args(["export", "RUN"]).checkpoint == "best"
    assert inspect.signature(export_run).parameters["checkpoint"].default == "best"
    assert inspect.signature(CheckpointPredictor).parameters["which"].default == "best"


def test_a_run_without_a_test_split_is_evaluated_on_val_and_says_so(tmp_path: Path) -> None:
    toml = toml_for("linear", "linear", epochs=1, extra_data="val_split = 0.2\ntest_split = 0.0\n")
    report = evaluate_run(train_run(tmp_path, "no-test", toml))
    assert report["split"] == "val" and report["note"] == "evaluated on val (no test split)"
    assert "note" not in evaluate_run(train_run(tmp_path, "all", toml_for("linear", "linear", epochs=1)))
