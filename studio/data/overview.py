"""Everything the data explorer shows about a configured data set, computed without Qt.

`data_overview(config)` loads the data the way training does and gathers class counts per split,
a few samples per class, image sizes, and warnings (class imbalance, train/val/test duplicates,
and the loader's own), so the GUI only draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from studio.config import Config
from studio.data import DataBundle, load_data
from studio.data.balance import class_counts, imbalance_warnings
from studio.data.duplicates import DuplicateReport, find_duplicates
from studio.data.images import take_images


@dataclass(frozen=True)
class DataOverview:
    """Plain data (numpy and Python values) for the data explorer."""

    summary: str
    source: str
    kind: str  # image | tabular
    task: str  # classification | regression
    labels: tuple[str, ...]
    split_sizes: dict[str, int]
    counts: dict[str, list[int]]  # split -> samples per class (classification)
    samples: dict[int, np.ndarray] = field(default_factory=dict)  # class -> uint8 [n, C, H, W] from train
    image_shape: tuple[int, ...] | None = None  # (C, H, W) as trained on
    image_sizes: dict[str, int] = field(default_factory=dict)  # "W×H" -> images (original sizes when known)
    pixel_mean: tuple[float, ...] = ()
    pixel_std: tuple[float, ...] = ()
    feature_names: tuple[str, ...] = ()
    feature_table: list[tuple[str, float, float, float, float]] = field(
        default_factory=list
    )  # name, mean, std, min, max
    target_histogram: tuple[np.ndarray, np.ndarray] | None = None  # (counts, edges), regression
    duplicates: DuplicateReport | None = None
    warnings: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # what was checked and found fine
    task_reason: str = ""  # why the task is what it is (CSV: `data.task_decision`)


def _class_samples(bundle: DataBundle, per_class: int, seed: int) -> dict[int, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    y = bundle.train.y.long()
    out = {}
    for c in range(len(bundle.spec.labels)):
        idx = torch.nonzero(y == c, as_tuple=True)[0]
        idx = idx[torch.randperm(len(idx), generator=gen)[:per_class]]
        out[c] = take_images(bundle.train.x, idx).numpy()
    return out


def _image_sizes(bundle: DataBundle, total: int) -> dict[str, int]:
    """Sizes of the source images before any resize when the loader recorded them, else the trained size."""
    recorded = getattr(bundle, "image_sizes", None)  # image-folder sources record the original sizes
    if recorded:
        return {str(k).replace("x", "×"): int(v) for k, v in recorded.items()}
    _, h, w = bundle.spec.input_shape
    return {f"{w}×{h}": total}


def data_overview(config: Config, bundle: DataBundle | None = None, per_class: int = 12) -> DataOverview:
    """Load (or take) the data and summarise it for the explorer; bad data raises `DataError`."""
    bundle = bundle or load_data(config)
    spec = bundle.spec
    sizes = {"train": len(bundle.train), "val": len(bundle.val), "test": len(bundle.test)}
    counts = class_counts(bundle)
    dupes = find_duplicates(bundle)
    warnings = list(bundle.warnings) + dupes.warnings() + imbalance_warnings(counts, spec.labels)
    checks = []
    total = sum(sizes.values())
    if not dupes.leaked:
        checks.append(f"no exact duplicates between train and val/test ({total:,} samples hashed)")
    if counts and not imbalance_warnings(counts, spec.labels):
        train = [c for c in counts["train"] if c > 0]
        ratio = max(train) / min(train) if train else 1.0
        checks.append(f"classes balanced: the largest training class is {ratio:.1f}x the smallest")
    common: dict[str, Any] = dict(
        summary=bundle.summary(),
        source=spec.source,
        kind=spec.kind,
        task=spec.task,
        labels=spec.labels,
        split_sizes=sizes,
        counts=counts,
        duplicates=dupes,
        warnings=warnings,
        checks=checks,
        task_reason=bundle.task_reason,
    )
    if spec.kind == "image":
        c, h, w = spec.input_shape
        return DataOverview(
            **common,
            samples=_class_samples(bundle, per_class, config.seed) if spec.task == "classification" else {},
            image_shape=(c, h, w),
            image_sizes=_image_sizes(bundle, total),
            pixel_mean=spec.mean,
            pixel_std=spec.std,
        )
    x = bundle.train.x.double()
    table = []
    for i, name in enumerate(spec.feature_names):
        col = x[:, i]
        col = col[~torch.isnan(col)]
        if len(col):
            table.append((name, float(col.mean()), float(col.std(unbiased=False)), float(col.min()), float(col.max())))
        else:
            table.append((name, float("nan"), float("nan"), float("nan"), float("nan")))
    hist = None
    if spec.task == "regression" and len(bundle.train):
        counts_, edges = np.histogram(bundle.train.y.double().numpy(), bins=30)
        hist = (counts_, edges)
    return DataOverview(**common, feature_names=spec.feature_names, feature_table=table, target_histogram=hist)
