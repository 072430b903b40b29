"""The fast path and the DataLoader path give the same batches, and training on them the same run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from image_files import write_digit_folder

from studio.config import config_from_dict
from studio.data import load_data
from studio.data.batch_sources import make_batches
from studio.data.batches import InMemoryBatches, epoch_order
from studio.data.loader import LoaderBatches
from studio.engine.trainer import Trainer


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loader") / "digits"
    write_digit_folder(root, per_class=15, classes=(0, 1, 2, 3))
    return root


def _config(root: Path, budget: int, workers: int = 0, augment: dict | None = None):
    return config_from_dict(
        {
            "seed": 3,
            "data": {"source": "folder", "path": str(root), "memory_budget_mb": budget, "num_workers": workers},
            "augment": augment or {},
            "model": {"arch": "mlp", "hidden": [8]},
            "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "log_every": 1},
        }
    )


def _all_batches(src, order, start, sizes):
    calls = iter(sizes)
    return list(src.batches(order, start, lambda: next(calls)))


@pytest.mark.parametrize("workers", [0, 2])
def test_same_samples_in_the_same_order_for_the_same_seed(folder: Path, workers: int) -> None:
    fast_bundle = load_data(_config(folder, 2048))
    lazy_bundle = load_data(_config(folder, 0, workers))
    cpu = torch.device("cpu")
    fast = make_batches(fast_bundle.train, cpu)
    lazy = make_batches(lazy_bundle.train, cpu, num_workers=workers)
    assert isinstance(fast, InMemoryBatches) and isinstance(lazy, LoaderBatches)
    n = len(fast)
    assert len(lazy) == n
    for epoch, start in ((1, 0), (2, 5)):  # a fresh epoch, and a resumed one mid-way
        order = epoch_order(n, 3, epoch)
        # The batch size changes between batches (a live change): both paths cut the same batches.
        sizes = [7, 7, 3, 40, 1, 9, 9, 9, 9, 9, 9]
        a = _all_batches(fast, order, start, sizes)
        b = _all_batches(lazy, order, start, sizes)
        assert [len(y) for _, y in a] == [len(y) for _, y in b]
        assert sum(len(y) for _, y in a) == n - start
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(torch.cat([y for _, y in a]), fast_bundle.train.y[order[start:]])


def _run(config, run_dir: Path) -> tuple[list[dict], dict]:
    summary = Trainer(config, run_dir).fit()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in ("kind", "split", "step", "loss", "accuracy")} for r in records], summary


def test_training_on_either_path_is_the_same_run(folder: Path, tmp_path: Path) -> None:
    # Augmentation on too: the DataLoader path must not draw from the global RNG the augmentation uses.
    aug = {"translate": 0.1, "rotate": 5.0}
    fast_records, fast = _run(_config(folder, 2048, augment=aug), tmp_path / "fast")
    lazy_records, lazy = _run(_config(folder, 0, workers=1, augment=aug), tmp_path / "lazy")
    assert len(fast_records) > 4
    assert lazy_records == fast_records
    assert lazy["metrics"] == fast["metrics"]
