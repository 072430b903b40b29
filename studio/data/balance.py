"""Class counts per split and warnings when classes are imbalanced or missing from a split."""

from __future__ import annotations

import numpy as np
import torch

from studio.data.base import DataBundle

IMBALANCE_RATIO = 3.0  # largest / smallest training class at which a warning is worth reading
FOLDER_IMBALANCE_RATIO = 5.0  # largest / smallest class of a whole image folder, said while loading it


def class_counts(bundle: DataBundle) -> dict[str, list[int]]:
    """Samples per class for each split, in label order; empty for regression."""
    k = len(bundle.spec.labels)
    if bundle.spec.task != "classification" or k == 0:
        return {}
    out = {}
    for name, split in (("train", bundle.train), ("val", bundle.val), ("test", bundle.test)):
        y = split.y.long()
        out[name] = torch.bincount(y, minlength=k).tolist() if len(y) else [0] * k
    return out


def imbalance_warnings(
    counts: dict[str, list[int]], labels: tuple[str, ...] | list[str], ratio: float = IMBALANCE_RATIO
) -> list[str]:
    """Plain sentences about classes that are rare, missing from train, or absent from val/test."""
    if not counts or "train" not in counts:
        return []
    out = []
    train = counts["train"]
    missing = [labels[i] for i, c in enumerate(train) if c == 0]
    if missing:
        out.append(
            f"no training samples for {_names(missing)}: the model can never predict "
            f"{'it' if len(missing) == 1 else 'them'}"
        )
    present = [(c, labels[i]) for i, c in enumerate(train) if c > 0]
    if len(present) >= 2:
        (small, small_name), (big, big_name) = min(present), max(present)
        if big >= ratio * small:
            out.append(
                f"class imbalance in train: '{big_name}' has {big:,} samples, '{small_name}' only "
                f"{small:,} ({big / small:.0f}x); accuracy can hide a weak class, so watch its "
                "recall in the per-class table (or rebalance the data)"
            )
    for name in ("val", "test"):
        split = counts.get(name)
        if not split or sum(split) == 0:
            continue
        absent = [labels[i] for i, c in enumerate(split) if c == 0 and train[i] > 0]
        if absent:
            out.append(
                f"the {name} split has no samples of {_names(absent)}, so its figures say nothing "
                f"about {'that class' if len(absent) == 1 else 'those classes'}"
            )
    return out


def _names(names: list[str], most: int = 5) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def folder_imbalance_warning(classes: tuple[str, ...], y: np.ndarray) -> str | None:
    """One sentence when an image folder's classes (before splitting) are strongly imbalanced or one is empty."""
    counts = np.bincount(y, minlength=len(classes))
    big, small = int(counts.argmax()), int(counts.argmin())
    if counts[small] == 0:
        return f"class '{classes[small]}' has no usable images left"
    ratio = counts[big] / counts[small]
    if ratio < FOLDER_IMBALANCE_RATIO:
        return None
    return (
        f"strong class imbalance: '{classes[big]}' has {counts[big]} images but '{classes[small]}' only "
        f"{counts[small]} ({ratio:.0f}:1); accuracy can look high while the small classes are missed"
    )
