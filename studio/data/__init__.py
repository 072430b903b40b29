"""Data sources: `load_data(config)` returns a `DataBundle` of in-memory splits and a `DataSpec`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from studio.config import Config
from studio.data.base import DataBundle, DataSpec, Split
from studio.data.splits import split_indices
from studio.errors import DataError

__all__ = ["DataBundle", "DataSpec", "Split", "load_data", "image_stats", "LOADERS"]


def image_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images [N, C, H, W], as pixels in [0, 1]."""
    c = x.shape[1]
    mean = torch.zeros(c, dtype=torch.float64)
    sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for chunk in x.split(4096):  # chunked so a large set never needs a float copy of itself
        f = chunk.double().div_(255.0)
        mean += f.sum(dim=(0, 2, 3))
        sq += f.pow(2).sum(dim=(0, 2, 3))
        count += f.shape[0] * f.shape[2] * f.shape[3]
    mean /= max(count, 1)
    std = (sq / max(count, 1) - mean.pow(2)).clamp_min(0).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


def feature_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and std of float features [N, F], ignoring NaN (blank) cells."""
    mean = torch.nanmean(x, dim=0)
    mean = torch.where(torch.isnan(mean), torch.zeros_like(mean), mean)
    filled = torch.where(torch.isnan(x), mean, x)
    std = filled.std(dim=0, unbiased=False) if x.shape[0] > 1 else torch.ones_like(mean)
    std = torch.where(std < 1e-8, torch.ones_like(std), std)  # a constant column passes through
    return tuple(mean.tolist()), tuple(std.tolist())


def _subset(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> Split:
    return Split(x[idx], y[idx], idx)


def bundle_from_arrays(config: Config, x: torch.Tensor, y: torch.Tensor, *, kind: str, task: str,
                       labels: tuple[str, ...] = (), feature_names: tuple[str, ...] = (),
                       warnings: list[str] | None = None) -> DataBundle:
    """Split one array set with the run's seed and compute the training split's statistics."""
    d = config.data
    tr, va, te = split_indices(len(y), d.val_split, d.test_split, config.seed,
                               y if task == "classification" else None)
    if len(tr) == 0:
        raise DataError(f"{d.source}: no training samples left after the val/test splits "
                        f"({len(y)} samples in all)")
    train = _subset(x, y, tr)
    return finish_bundle(config, train, _subset(x, y, va), _subset(x, y, te), kind=kind, task=task,
                         labels=labels, feature_names=feature_names, warnings=warnings)


def finish_bundle(config: Config, train: Split, val: Split, test: Split, *, kind: str, task: str,
                  labels: tuple[str, ...] = (), feature_names: tuple[str, ...] = (),
                  warnings: list[str] | None = None) -> DataBundle:
    """Build the spec from the training split only (statistics never see val or test)."""
    if kind == "image" and not isinstance(train.x, torch.Tensor):
        mean, std = train.x.pixel_stats(seed=config.seed)  # decoded on demand (over the memory budget)
    elif kind == "image":
        mean, std = image_stats(train.x)
    else:
        mean, std = feature_stats(train.x)
    t_mean, t_std = 0.0, 1.0
    if task == "regression":
        t_mean = float(train.y.mean())
        t_std = float(train.y.std(unbiased=False)) if len(train.y) > 1 else 1.0
        t_std = t_std if t_std > 1e-8 else 1.0
    spec = DataSpec(source=config.data.source, kind=kind, task=task, input_shape=tuple(train.x.shape[1:]),
                    labels=labels, mean=mean, std=std, feature_names=feature_names,
                    target_mean=t_mean, target_std=t_std)
    return DataBundle(spec, train, val, test, list(warnings or []))


def _load_digits(config: Config) -> DataBundle:
    from studio.data.digits import load_digits

    x, y, labels = load_digits()
    return bundle_from_arrays(config, x, y, kind="image", task="classification", labels=labels)


def _load_linear(config: Config) -> DataBundle:
    from studio.data.synthetic import make_line

    x, y = make_line(config.seed)
    return bundle_from_arrays(config, x, y, kind="tabular", task="regression", feature_names=("x",))


def _load_csv(config: Config) -> DataBundle:
    from studio.data.tabular import encode_target, guess_task, load_table

    d = config.data
    path = Path(d.path).expanduser()
    if path.is_dir():
        raise DataError(f"[data] path '{d.path}' is a folder; the csv source needs a CSV file")
    table = load_table(path, d.target, d.blank_cells)
    task = guess_task(table.target) if d.task == "auto" else d.task
    y, labels = encode_target(table.target, task, path, d.target, table.lines)
    return bundle_from_arrays(config, table.features, y, kind="tabular", task=task, labels=labels,
                              feature_names=table.feature_names, warnings=table.warnings)


def _load_folder(config: Config) -> DataBundle:
    from studio.data.folder import load_folder

    return load_folder(config)


def _load_torchvision(config: Config) -> DataBundle:
    from studio.data.torchvision_sets import load_torchvision_set

    return load_torchvision_set(config)


# One loader per `data.source`; image sources add theirs here.
LOADERS: dict[str, Callable[[Config], DataBundle]] = {
    "digits": _load_digits,
    "linear": _load_linear,
    "csv": _load_csv,
    "folder": _load_folder,
    "mnist": _load_torchvision,
    "fashion-mnist": _load_torchvision,
    "cifar10": _load_torchvision,
}


def load_data(config: Config) -> DataBundle:
    """Load and split the configured data set; bad data raises `DataError` saying what and where."""
    bundle = LOADERS[config.data.source](config)
    if config.train.batch_size > len(bundle.train):
        bundle.warnings.append(f"batch size {config.train.batch_size} is larger than the "
                               f"{len(bundle.train)} training samples; each epoch is one batch")
    return bundle
