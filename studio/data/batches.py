"""Batches for the training loop.

`InMemoryBatches` is the fast path: the whole split lives in one tensor (on the training device
when it is a GPU), and a batch is an index slice, converted to float and augmented on that device.
`studio.data.loader.LoaderBatches` is the fallback for image folders over the memory budget: a
DataLoader decodes files in worker processes, and the batches come out the same (same samples,
same order, same float conversion and augmentation). `studio.data.batch_sources.make_batches`
picks one for a split.
The loop asks for the batch size before every batch, so a live change applies from the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import torch

from studio.data.base import Split

Augment = Callable[[torch.Tensor], torch.Tensor]


class BatchSource(Protocol):
    """What the loop iterates: `batches(order, start, batch_size)` yields `(x, y)` on the device."""

    def __len__(self) -> int: ...

    def batches(
        self, order: torch.Tensor, start: int, batch_size: Callable[[], int], augment: bool = True
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch: a pure function of (seed, epoch), so resume is exact."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


def cut_size(requested: int, remaining: int) -> int:
    """The size of the next batch: as asked, but a lone last sample joins this batch instead.

    A one-sample batch breaks BatchNorm in training ("expected more than 1 value per channel"),
    and dropping the sample would waste data; so 6,401 samples in batches of 64 end in one of 65.
    """
    size = min(max(1, requested), remaining)
    return remaining if remaining - size == 1 else size


def prepare_images(xb: torch.Tensor, augment: Augment | None) -> torch.Tensor:
    """uint8 images to float pixels in [0, 1], then the training augmentation, on xb's device."""
    xb = xb.float().div_(255.0)
    return augment(xb) if augment is not None else xb


class InMemoryBatches:
    """Index-sliced batches from tensors held in memory (moved to the GPU once, when training there)."""

    def __init__(self, split: Split, device: torch.device, augment: Augment | None = None) -> None:
        self.device = device
        self.augment = augment
        x, y = split.x, split.y
        if device.type == "cuda":
            # Pinned host memory makes the one-off copy asynchronous and fast.
            x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        elif device.type != "cpu":
            x, y = x.to(device), y.to(device)
        self.x, self.y = x, y
        self.is_image = x.dtype == torch.uint8

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, idx: torch.Tensor, augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(self.x.device)
        xb = self.x[idx]
        if self.is_image:
            xb = prepare_images(xb, self.augment if augment else None)
        return xb, self.y[idx]

    def batches(
        self, order: torch.Tensor, start: int, batch_size: Callable[[], int], augment: bool = True
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The order goes to the device once an epoch: copying each batch's indices would wait for the
        # GPU to finish the previous step every time (a pageable copy synchronises the stream).
        order = order.to(self.x.device)
        pos, n = start, len(order)
        while pos < n:
            idx = order[pos : pos + cut_size(batch_size(), n - pos)]
            pos += len(idx)
            yield self.take(idx, augment)
