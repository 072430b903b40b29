"""The runs index: rows from the files a run leaves, curves, delete with guards, CSV export, TensorBoard."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import pytest

from studio.config import load_config
from studio.engine.runs_index import delete_run, epoch_curves, export_metrics_csv, list_runs, metrics_csv, read_run
from studio.engine.tensorboard_export import MISSING, export_tensorboard, tensorboard_available
from studio.engine.trainer import Trainer
from studio.errors import CheckpointError, StudioError


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("runs")
    for name, lr in (("20261122-100000-digits-mlp", 0.001), ("20261122-110000-digits-mlp", 0.01)):
        cfg = load_config(
            "examples/digits.toml", ["train.epochs=2", "model.hidden=[16]", "train.batch_size=256", f"train.lr={lr}"]
        )
        Trainer(cfg, base / name).fit()
    (base / "not-a-run").mkdir()
    (base / "notes.txt").write_text("hello")
    return base


def test_list_runs_reads_every_column(runs: Path) -> None:
    rows = list_runs(runs)
    assert [r.name for r in rows] == ["20261122-110000-digits-mlp", "20261122-100000-digits-mlp"]  # newest first
    r = rows[1]
    assert r.date is not None and (r.date.year, r.date.hour) == (2026, 10)
    assert r.data == "digits" and r.model == "mlp [16]"
    assert r.status == "completed" and r.epochs_completed == 2 and r.epochs_total == 2
    assert r.task == "classification"
    records = [json.loads(line) for line in (r.path / "metrics.jsonl").read_text().splitlines()]
    val_accs = [x["accuracy"] for x in records if x["kind"] == "epoch" and x["split"] == "val"]
    assert r.best_val_accuracy == max(val_accs) and len(val_accs) == 2
    summary = json.loads((r.path / "summary.json").read_text())
    assert r.test_accuracy == summary["metrics"]["test_accuracy"]


def test_status_of_unfinished_runs(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.toml").write_text('[data]\nsource = "csv"\npath = "some/where/houses.csv"\n')
    assert read_run(run).status == "new" and read_run(run).data == "csv: houses.csv"  # type: ignore[union-attr]
    (run / "metrics.jsonl").write_text(
        json.dumps({"kind": "epoch", "split": "train", "epoch": 1, "step": 5, "loss": 1.0, "accuracy": None}) + "\n"
    )
    info = read_run(run)
    assert info is not None and info.status == "running" and info.task == "regression"
    old = time.time() - 3600
    os.utime(run / "metrics.jsonl", (old, old))
    assert read_run(run).status == "interrupted"  # type: ignore[union-attr]
    (run / "config.toml").write_text("this is = = not toml")
    assert read_run(run) is not None  # a broken config still lists, with unknown data/model
    assert list_runs(tmp_path / "missing") == []


def test_epoch_curves(runs: Path) -> None:
    curves = epoch_curves(runs / "20261122-100000-digits-mlp")
    assert curves["train"]["epoch"] == [1, 2] and curves["val"]["epoch"] == [1, 2]
    assert all(0 < a <= 1 for a in curves["val"]["accuracy"])  # type: ignore[operator]


def test_csv_export_holds_every_record(runs: Path, tmp_path: Path) -> None:
    dirs = [r.path for r in list_runs(runs)]
    out = tmp_path / "metrics.csv"
    n = export_metrics_csv(dirs, out)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    total = sum(len((d / "metrics.jsonl").read_text().splitlines()) for d in dirs)
    assert n == total == len(rows)
    assert list(rows[0])[:6] == ["run", "kind", "split", "epoch", "step", "loss"]
    assert {r["run"] for r in rows} == {d.name for d in dirs}
    step = next(r for r in rows if r["kind"] == "step")
    assert float(step["grad_norm"]) > 0 and float(step["samples_per_s"]) > 0
    with pytest.raises(CheckpointError):
        metrics_csv([tmp_path])


def test_delete_refuses_what_is_not_a_run(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a run directory"):
        delete_run(runs / "not-a-run", runs)
    assert (runs / "not-a-run").is_dir()
    stray = tmp_path / "elsewhere"
    stray.mkdir()
    (stray / "config.toml").write_text("")
    with pytest.raises(StudioError, match="not directly under the runs folder"):
        delete_run(stray, runs)
    assert stray.is_dir()


def test_delete_removes_the_run(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text("")
    delete_run(run, tmp_path / "runs")
    assert not run.exists() and (tmp_path / "runs").is_dir()


def test_tensorboard_missing_gives_a_clear_message(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    assert not tensorboard_available()
    with pytest.raises(StudioError) as info:
        export_tensorboard(runs / "20261122-100000-digits-mlp", tmp_path / "tb")
    assert str(info.value) == MISSING and "pip install tensorboard" in MISSING
    assert not (tmp_path / "tb").exists()


def test_tensorboard_writes_event_files(runs: Path, tmp_path: Path) -> None:
    out = export_tensorboard(runs / "20261122-100000-digits-mlp", tmp_path / "tb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out))
    acc.Reload()
    assert "epoch/val_accuracy" in acc.Tags()["scalars"]
    assert len(acc.Scalars("epoch/val_accuracy")) == 2
