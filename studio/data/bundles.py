"""Building a `DataBundle`: split one array set with the run's seed, and take statistics from train only.

Every source ends here (`bundle_from_arrays` for one array set, `finish_bundle` for sources that
come split), so the spec's normalisation statistics never see the val or test samples.
"""

from __future__ import annotations

import torch

from studio.config import Config
from studio.data.base import DataBundle, DataSpec, Split
from studio.data.splits import split_indices
from studio.errors import DataError


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


def bundle_from_arrays(
    config: Config,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kind: str,
    task: str,
    labels: tuple[str, ...] = (),
    feature_names: tuple[str, ...] = (),
    warnings: list[str] | None = None,
) -> DataBundle:
    """Split one array set with the run's seed and compute the training split's statistics."""
    d = config.data
    tr, va, te = split_indices(len(y), d.val_split, d.test_split, config.seed, y if task == "classification" else None)
    if len(tr) == 0:
        raise DataError(f"{d.source}: no training samples left after the val/test splits ({len(y)} samples in all)")
    train = _subset(x, y, tr)
    return finish_bundle(
        config,
        train,
        _subset(x, y, va),
        _subset(x, y, te),
        kind=kind,
        task=task,
        labels=labels,
        feature_names=feature_names,
        warnings=warnings,
    )


def finish_bundle(
    config: Config,
    train: Split,
    val: Split,
    test: Split,
    *,
    kind: str,
    task: str,
    labels: tuple[str, ...] = (),
    feature_names: tuple[str, ...] = (),
    warnings: list[str] | None = None,
) -> DataBundle:
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
    spec = DataSpec(
        source=config.data.source,
        kind=kind,
        task=task,
        input_shape=tuple(train.x.shape[1:]),
        labels=labels,
        mean=mean,
        std=std,
        feature_names=feature_names,
        target_mean=t_mean,
        target_std=t_std,
    )
    return DataBundle(spec, train, val, test, list(warnings or []))
