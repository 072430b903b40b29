"""Augmentation: each transform does what it says, per sample, and only the training split sees it."""

from __future__ import annotations

import pytest
import torch

from studio.config import config_from_dict
from studio.data.augment import build_augment, color_jitter, random_affine, random_flip
from studio.data.base import DataSpec, Split
from studio.data.batch_sources import make_batches
from studio.engine.evaluate import predict_all
from studio.engine.trainer import Trainer

IMAGE = DataSpec("digits", "image", "classification", (1, 8, 8), labels=("a", "b"), mean=(0.5,), std=(0.5,))


def _augment(**keys):
    return build_augment(config_from_dict({"augment": keys}), IMAGE)


def test_nothing_enabled_or_tabular_data_means_no_transform() -> None:
    assert _augment() is None
    tabular = DataSpec("csv", "tabular", "classification", (4,), labels=("a", "b"))
    assert build_augment(config_from_dict({"augment": {"flip": True}}), tabular) is None
    assert repr(_augment(flip=True, rotate=5.0)) == "BatchAugment(flip, rotate 5°)"


def test_flip_mirrors_about_half_of_the_images() -> None:
    torch.manual_seed(0)
    x = torch.rand(200, 1, 8, 8)
    out = random_flip(x)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert bool((flipped | same).all())
    assert 70 < int(flipped.sum()) < 130


def test_translate_shifts_by_whole_pixels_without_blur() -> None:
    torch.manual_seed(1)
    x = torch.zeros(50, 1, 10, 10)
    x[:, :, 5, 5] = 1.0
    out = random_affine(x, translate=0.2, rotate=0.0)
    # Each image still holds exactly one lit pixel (no interpolation), within 2 px of where it was.
    assert torch.equal(out.flatten(1).sum(1), torch.ones(50))
    assert set(out.flatten(1).unique().tolist()) == {0.0, 1.0}
    rows, cols = (out[:, 0] == 1).nonzero()[:, 1], (out[:, 0] == 1).nonzero()[:, 2]
    assert rows.min() >= 3 and rows.max() <= 7 and cols.min() >= 3 and cols.max() <= 7
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # shifts differ per image


def test_fill_modes_decide_what_a_shift_uncovers() -> None:
    torch.manual_seed(2)
    x = torch.full((20, 1, 8, 8), 0.7)
    assert (random_affine(x, 0.25, 0.0, "zeros") == 0).any()
    assert torch.allclose(random_affine(x, 0.25, 0.0, "border"), x)
    assert torch.allclose(random_affine(x, 0.25, 0.0, "reflection"), x)


def test_no_shift_and_no_rotation_is_the_identity_and_rotation_is_small() -> None:
    x = torch.rand(4, 3, 16, 16)
    assert torch.allclose(random_affine(x, 0.0, 0.0), x, atol=1e-6)
    torch.manual_seed(3)
    disc = torch.zeros(1, 1, 32, 32)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disc[0, 0] = (((yy - 15.5) ** 2 + (xx - 15.5) ** 2) < 100).float()
    # A centred disc is the same under any rotation; a bar rotated by up to 5 degrees moves a little.
    spun = random_affine(disc.repeat(8, 1, 1, 1), 0.0, 30.0)
    assert (spun - disc).abs().mean() < 0.02
    assert spun.sum(dim=(1, 2, 3)).sub(disc.sum()).abs().max() < 0.02 * disc.sum()
    bar = torch.zeros(8, 1, 32, 32)
    bar[:, :, 15:17, 4:28] = 1.0
    rotated = random_affine(bar, 0.0, 5.0)
    assert (rotated - bar).abs().sum() > 1.0
    assert (rotated[:, :, :10].sum() + rotated[:, :, 22:].sum()) < 1.0


def test_color_jitter_stays_in_range_keeps_channels_and_varies_per_image() -> None:
    torch.manual_seed(4)
    rgb = torch.rand(16, 3, 8, 8)
    out = color_jitter(rgb, 0.5)
    assert out.shape == rgb.shape and out.min() >= 0 and out.max() <= 1
    ratios = out.mean(dim=(1, 2, 3)) / rgb.mean(dim=(1, 2, 3))
    assert ratios.std() > 0.05
    assert torch.allclose(color_jitter(rgb, 0.0), rgb, atol=1e-6)
    gray = torch.rand(16, 1, 8, 8)
    assert color_jitter(gray, 0.5).shape == gray.shape


def test_same_seed_same_augmentation() -> None:
    aug = _augment(flip=True, translate=0.1, rotate=10.0, color_jitter=0.3)
    x = torch.rand(8, 1, 8, 8)
    torch.manual_seed(5)
    a = aug(x)
    torch.manual_seed(5)
    assert torch.equal(aug(x), a)
    assert not torch.equal(a, x)


def test_evaluation_never_augments_and_training_does() -> None:
    calls = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return x

    split = Split(torch.randint(0, 255, (10, 1, 8, 8), dtype=torch.uint8), torch.randint(0, 2, (10,)))
    src = make_batches(split, torch.device("cpu"), spy)
    predict_all(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)), src)
    assert calls == []
    list(src.batches(torch.arange(10), 0, lambda: 4))
    assert calls == [4, 4, 2]


def test_the_trainer_augments_only_the_training_split(tmp_path) -> None:
    cfg = config_from_dict({"augment": {"flip": True, "translate": 0.1}, "train": {"epochs": 1, "device": "cpu"}})
    trainer = Trainer(cfg, tmp_path / "run")
    trainer._set_up()
    setup = trainer.setup
    assert setup is not None
    assert setup.train_src.augment is not None
    assert setup.val_src.augment is None and setup.test_src.augment is None


@pytest.mark.parametrize("key, value", [("translate", 0.6), ("rotate", -1.0), ("fill", "wrap")])
def test_bad_augment_keys_are_config_errors(key: str, value: object) -> None:
    from studio.errors import ConfigError

    with pytest.raises(ConfigError, match=f"\\[augment\\] {key}"):
        config_from_dict({"augment": {key: value}})


def test_flip_rides_along_in_the_affine_resampling() -> None:
    torch.manual_seed(6)
    x = torch.rand(300, 1, 8, 8)
    out = random_affine(x, 0.0, 0.0, flip=True)
    flipped = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    same = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert bool((flipped | same).all()) and 100 < int(flipped.sum()) < 200
