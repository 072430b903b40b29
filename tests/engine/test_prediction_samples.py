"""The per-epoch validation samples: a fixed, class-balanced set, predicted after every epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from studio.config import config_from_dict, load_config
from studio.data.overview import data_overview
from studio.engine.prediction_samples import PredictionSamples, ValidationSamples, pick_watch_indices
from studio.engine.trainer import Trainer


def test_pick_is_round_robin_over_classes_and_deterministic() -> None:
    labels = torch.tensor([0] * 50 + [1] * 5 + [2] * 30)
    idx = pick_watch_indices(labels, 9, seed=3)
    assert len(idx) == 9 and len(set(idx.tolist())) == 9
    assert sorted(labels[idx].tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert torch.equal(idx, pick_watch_indices(labels, 9, seed=3))
    assert len(pick_watch_indices(torch.tensor([0, 1]), 5, seed=0)) == 2  # fewer samples than asked


def test_callback_predicts_the_same_images_after_every_epoch(tmp_path: Path) -> None:
    got: list[PredictionSamples] = []
    cfg = load_config("examples/digits.toml", ["train.epochs=2", "model.hidden=[32]", "train.batch_size=256"])
    trainer = Trainer(cfg, tmp_path / "run", callbacks=[ValidationSamples(got.append, count=20)])
    trainer.fit()
    assert [s.epoch for s in got] == [1, 2]
    first, last = got
    assert first.images.shape == (20, 1, 28, 28) and first.images.dtype == np.uint8
    assert np.array_equal(first.images, last.images) and first.true == last.true
    assert sorted(set(first.true)) == list(range(10))  # every class shows up
    assert all(0.1 <= c <= 1.0 for c in last.confidence)
    assert last.wrong == tuple(t != p for t, p in zip(last.true, last.pred, strict=True))
    assert sum(last.wrong) <= 6  # two epochs already get most digits right
    # Images come straight from the validation split.
    val = trainer.bundle.val
    first_img = torch.from_numpy(first.images[0])
    assert any(torch.equal(first_img, val.x[i]) for i in range(len(val)))


def test_callback_is_silent_for_tables(tmp_path: Path) -> None:
    got: list[PredictionSamples] = []
    cfg = config_from_dict({"data": {"source": "linear"}, "model": {"arch": "linear"}, "train": {"epochs": 1}})
    Trainer(cfg, tmp_path / "lin", callbacks=[ValidationSamples(got.append)]).fit()
    assert got == []


def test_data_overview_for_digits() -> None:
    o = data_overview(load_config("examples/digits.toml"), per_class=5)
    assert o.kind == "image" and o.task == "classification" and o.labels == tuple(str(i) for i in range(10))
    assert [sum(o.counts[s]) for s in ("train", "val", "test")] == [6400, 800, 800]
    assert set(o.samples) == set(range(10)) and all(v.shape == (5, 1, 28, 28) for v in o.samples.values())
    assert o.image_shape == (1, 28, 28) and o.image_sizes == {"28×28": 8000}
    assert o.warnings == [] and any("no exact duplicates" in c for c in o.checks)
