"""TensorBoard event files written live beside metrics.jsonl, read back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from studio.config import config_from_dict
from studio.engine.callbacks import Callback
from studio.engine.records import EpochRecord, StepRecord
from studio.engine.run_dir import read_metrics
from studio.engine.trainer import Trainer


def _config(**train: Any) -> Any:
    return config_from_dict(
        {"data": {"source": "linear"}, "model": {"arch": "linear"}, "train": {"epochs": 3, "log_every": 1, **train}}
    )


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


class SeenWhileTraining(Callback):
    """Reads the run's events at the start of epoch 2, while the run is still training."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.seen: dict[str, list[tuple[int, float]]] | None = None

    def on_epoch_start(self, trainer: Any, event: Any) -> None:
        if event.epoch == 2:
            self.seen = _scalars(self.run_dir)


def test_events_are_written_live_and_match_metrics_jsonl(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    probe = SeenWhileTraining(run_dir)
    Trainer(_config(), run_dir, callbacks=[probe]).fit()
    assert probe.seen is not None and "epoch/train_loss" in probe.seen and "epoch/val_rmse" in probe.seen
    assert "step/loss" in probe.seen
    scalars = _scalars(run_dir)
    records = read_metrics(run_dir)
    steps = [r for r in records if isinstance(r, StepRecord)]
    assert [s for s, _ in scalars["step/loss"]] == [r.step for r in steps]
    assert [v for _, v in scalars["step/loss"]] == pytest.approx([r.loss for r in steps], rel=1e-6)
    val = [r for r in records if isinstance(r, EpochRecord) and r.split == "val"]
    assert [v for _, v in scalars["epoch/val_r2"]] == pytest.approx([r.r2 for r in val], rel=1e-6)
    (test,) = [r for r in records if isinstance(r, EpochRecord) and r.split == "test"]
    assert scalars["epoch/test_loss"] == [(test.step, pytest.approx(test.loss, rel=1e-6))]
    assert scalars["step/lr"] and scalars["epoch/test_rmse"]


def test_the_option_turns_it_off(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    Trainer(_config(tensorboard=False, epochs=1), run_dir).fit()
    assert (run_dir / "metrics.jsonl").is_file()
    assert not list(run_dir.glob("events.out.tfevents.*"))


def test_a_resumed_run_does_not_show_a_step_twice(tmp_path: Path) -> None:
    """Events written after the checkpoint a run resumes from (a crash) are purged, as metrics.jsonl's are."""
    run_dir = tmp_path / "run"
    Trainer(_config(epochs=1), run_dir).fit()
    last = run_dir / "checkpoints" / "last.pt"
    saved = last.read_bytes()
    Trainer(_config(epochs=2), run_dir, resume=True).fit()  # events up to the end of epoch 2 ...
    last.write_bytes(saved)  # ... then that epoch is lost, as if the process had died before saving it
    Trainer(_config(epochs=2), run_dir, resume=True).fit()
    scalars = _scalars(run_dir)
    records = read_metrics(run_dir)
    steps = [r.step for r in records if isinstance(r, StepRecord)]
    assert [s for s, _ in scalars["step/loss"]] == steps and len(set(steps)) == len(steps)
    val = [r for r in records if isinstance(r, EpochRecord) and r.split == "val"]
    assert [s for s, _ in scalars["epoch/val_loss"]] == [r.step for r in val] and len(val) == 2
