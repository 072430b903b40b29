"""What the data explorer shows, computed without Qt: class counts, samples, sizes, mean and std.

    bundle = load_data(config)
    stats = data_stats(bundle)                       # small, plain values: fine to send across threads
    images = sample_images(bundle, "train", stats.samples["7"])   # uint8 [k, H, W, C] for display

`data_stats` never decodes images (for a folder over the memory budget nothing is read at all);
`sample_images` decodes only the few images asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from studio.data.base import DataBundle, Split
from studio.data.images import image_rows

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataStats:
    """A data set at a glance; every field is a plain Python value."""

    source: str
    kind: str  # "image" | "tabular"
    task: str  # "classification" | "regression"
    input_shape: tuple[int, ...]
    labels: tuple[str, ...]
    sizes: dict[str, int]  # split -> number of samples
    counts: dict[str, list[int]]  # split -> samples per class, in label order (classification)
    samples: dict[str, list[int]]  # class label -> positions of a few samples in the train split
    image_sizes: dict[str, int]  # "WxH" of the source images, before resizing -> count, most common first
    mean: tuple[float, ...]  # per channel (pixels in [0, 1]) or per feature, from the training split
    std: tuple[float, ...]
    warnings: list[str] = field(default_factory=list)

    @property
    def num_samples(self) -> int:
        return sum(self.sizes.values())

    def imbalance(self) -> float | None:
        """Largest over smallest class count in the whole data set (None without classes)."""
        if not self.counts:
            return None
        total = np.sum([self.counts[s] for s in SPLITS if s in self.counts], axis=0)
        return float(total.max() / total.min()) if total.min() > 0 else float("inf")


def _split(bundle: DataBundle, name: str) -> Split:
    if name not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {name!r})")
    return getattr(bundle, name)


def data_stats(bundle: DataBundle, samples_per_class: int = 8, seed: int = 0) -> DataStats:
    """Counts per split and class, a seeded pick of training samples per class, sizes and statistics."""
    spec = bundle.spec
    splits = {name: _split(bundle, name) for name in SPLITS}
    counts: dict[str, list[int]] = {}
    samples: dict[str, list[int]] = {}
    if spec.task == "classification":
        k = len(spec.labels)
        counts = {name: torch.bincount(s.y, minlength=k).tolist() for name, s in splits.items()}
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(bundle.train), generator=gen)
        shuffled = bundle.train.y[order]
        for c, label in enumerate(spec.labels):
            samples[label] = order[shuffled == c][:samples_per_class].tolist()
    image_sizes = dict(bundle.image_sizes)
    if spec.kind == "image" and not image_sizes:
        _, h, w = spec.input_shape
        image_sizes = {f"{w}x{h}": sum(len(s) for s in splits.values())}
    return DataStats(source=spec.source, kind=spec.kind, task=spec.task, input_shape=tuple(spec.input_shape),
                     labels=tuple(spec.labels), sizes={n: len(s) for n, s in splits.items()}, counts=counts,
                     samples=samples, image_sizes=image_sizes, mean=tuple(spec.mean), std=tuple(spec.std),
                     warnings=list(bundle.warnings))


def sample_images(bundle: DataBundle, split: str, positions: Sequence[int]) -> np.ndarray:
    """uint8 `[k, H, W, C]` images (C = 1 or 3) at these positions of a split, ready to display."""
    if bundle.spec.kind != "image":
        raise ValueError("sample_images needs image data")
    part = _split(bundle, split)
    if not len(positions):
        c, h, w = bundle.spec.input_shape
        return np.zeros((0, h, w, c), dtype=np.uint8)
    x = image_rows(part.x, positions)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def sample_paths(bundle: DataBundle, split: str, positions: Sequence[int]) -> list[str] | None:
    """The source files of these samples (folder source), else None."""
    part = _split(bundle, split)
    if not bundle.paths or part.indices is None:
        return None
    return [bundle.paths[int(part.indices[p])] for p in positions]
