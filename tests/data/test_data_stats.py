"""The data explorer's Qt-free statistics: counts per split, samples per class, sizes, mean/std."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.config import config_from_dict
from studio.data import load_data
from studio.data.stats import data_stats, sample_images, sample_paths

from image_files import write_digit_folder, write_image


def test_digits_counts_samples_and_statistics() -> None:
    bundle = load_data(config_from_dict({}))
    stats = data_stats(bundle, samples_per_class=5)
    assert stats.labels == tuple(str(i) for i in range(10))
    assert stats.sizes == {"train": 6400, "val": 800, "test": 800} and stats.num_samples == 8000
    for split in ("train", "val", "test"):
        assert stats.counts[split] == torch.bincount(getattr(bundle, split).y, minlength=10).tolist()
    assert stats.image_sizes == {"28x28": 8000}
    assert stats.mean == bundle.spec.mean and stats.std == bundle.spec.std
    assert 1.0 <= stats.imbalance() < 1.5
    for c, label in enumerate(stats.labels):
        picks = stats.samples[label]
        assert len(picks) == 5 and len(set(picks)) == 5
        assert all(int(bundle.train.y[p]) == c for p in picks)
    images = sample_images(bundle, "train", stats.samples["3"])
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
    assert np.array_equal(images[0, :, :, 0], bundle.train.x[stats.samples["3"][0], 0].numpy())
    assert sample_paths(bundle, "train", stats.samples["3"]) is None
    assert data_stats(bundle, samples_per_class=5, seed=1).samples != stats.samples


def test_folder_sizes_histogram_paths_and_a_lazy_folder(tmp_path: Path) -> None:
    root = tmp_path / "d"
    written = write_digit_folder(root, per_class=6, classes=(0, 1))
    write_image(root / "1" / "big.png", np.zeros((40, 40), np.uint8))
    for budget in (2048, 0):  # in memory, and decoded on demand
        bundle = load_data(config_from_dict({"data": {"source": "folder", "path": str(root),
                                                      "memory_budget_mb": budget}, "train": {"batch_size": 2}}))
        stats = data_stats(bundle, samples_per_class=3)
        assert stats.image_sizes == {"28x28": 12, "40x40": 1}
        assert sum(sum(c) for c in stats.counts.values()) == 13
        picks = stats.samples["0"]
        paths = sample_paths(bundle, "train", picks)
        assert all(Path(p).parent.name == "0" for p in paths)
        images = sample_images(bundle, "train", picks)
        assert images.shape == (3, 28, 28, 1)
        for img, p in zip(images, paths):
            assert np.array_equal(img[:, :, 0], written[Path(p)])


def test_tabular_data_has_no_classes_to_show() -> None:
    bundle = load_data(config_from_dict({"data": {"source": "linear"}}))
    stats = data_stats(bundle)
    assert stats.counts == {} and stats.samples == {} and stats.image_sizes == {} and stats.imbalance() is None
    with pytest.raises(ValueError, match="image data"):
        sample_images(bundle, "train", [0])
