"""`make_batches(split, device)`: the batch source a split trains or evaluates from.

It sits above both kinds of source (`batches.InMemoryBatches`, `loader.LoaderBatches`), so neither
imports the other's module to choose.
"""

from __future__ import annotations

import torch

from studio.data.base import Split
from studio.data.batches import Augment, BatchSource, InMemoryBatches
from studio.data.loader import LoaderBatches


def make_batches(
    split: Split, device: torch.device, augment: Augment | None = None, num_workers: int = 0
) -> BatchSource:
    """Index slicing when the split's images (or features) are in memory, else a DataLoader over its files."""
    if isinstance(split.x, torch.Tensor):
        return InMemoryBatches(split, device, augment)
    return LoaderBatches(split, device, augment, num_workers=num_workers)
