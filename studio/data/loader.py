"""The DataLoader path: batches from images decoded by worker processes while training.

Used for image folders whose decoded size exceeds `[data] memory_budget_mb` (see
`studio.data.batch_sources.make_batches`). It yields what `InMemoryBatches` yields for the same order:
worker processes decode fixed-size chunks of the requested order, and this side cuts them into
batches, asking the loop for the batch size as each batch is cut, so a live batch-size change
still applies from the next batch no matter how many chunks the workers have prefetched.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from studio.data.base import Split
from studio.data.batches import Augment, cut_size, prepare_images
from studio.data.images import ImageFiles

CHUNK = 32  # images per worker task: small enough to cut any batch size, large enough to amortise IPC


class DecodedImages(Dataset):
    """Position -> uint8 `[C, H, W]` image, decoded from its file (runs in the workers)."""

    def __init__(self, files: ImageFiles) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.files.load(i)


class PassOrder(Sampler[int]):
    """The positions of the current pass; set before each pass so the persistent workers stay up."""

    def __init__(self) -> None:
        self.positions: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


def _context() -> multiprocessing.context.BaseContext | None:
    # Forking a process that runs other threads (the GUI trains in a QThread) can copy a held lock
    # into the child and hang it; a fork server starts workers from a clean single-threaded process.
    if os.name == "posix" and threading.active_count() > 1:
        return multiprocessing.get_context("forkserver")
    return None


class LoaderBatches:
    """Batches of images decoded by DataLoader workers, the same samples and order as the fast path."""

    def __init__(
        self, split: Split, device: torch.device, augment: Augment | None = None, num_workers: int = 2
    ) -> None:
        if not isinstance(split.x, ImageFiles):
            raise TypeError("LoaderBatches reads an ImageFiles split; use InMemoryBatches for tensors")
        self.device: torch.device = device
        self.augment: Augment | None = augment
        self.files: ImageFiles = split.x
        self.y: torch.Tensor = split.y.to(device)
        self.order: PassOrder = PassOrder()
        # Its own generator: starting a pass must not draw from the global RNG, or augmentation and
        # dropout would differ from the fast path's (and a resumed run from an uninterrupted one).
        options: dict = {
            "batch_size": CHUNK,
            "sampler": self.order,
            "num_workers": num_workers,
            "pin_memory": device.type == "cuda",
            "generator": torch.Generator().manual_seed(0),
        }
        if num_workers > 0:
            options |= {"persistent_workers": True, "prefetch_factor": 4, "multiprocessing_context": _context()}
        self.loader: DataLoader[torch.Tensor] = DataLoader(DecodedImages(self.files), **options)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batches(
        self, order: torch.Tensor, start: int, batch_size: Callable[[], int], augment: bool = True
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        positions = order[start:]
        n = len(positions)
        if n == 0:
            return
        self.order.positions = positions.tolist()
        on_device = positions.to(self.y.device)  # once a pass: a copy per batch would wait for the GPU each time
        stream = iter(self.loader)
        pending: list[torch.Tensor] = []
        have, pos = 0, 0
        while pos < n:
            want = cut_size(batch_size(), n - pos)
            while have < want:
                # Each chunk comes pinned (pin_memory) and goes to the device as it arrives, without
                # waiting; the batch is cut there, so no pageable copy (a torch.cat on the host) is made.
                chunk = next(stream).to(self.device, non_blocking=True)
                pending.append(chunk)
                have += len(chunk)
            joined = torch.cat(pending) if len(pending) > 1 else pending[0]
            xb, rest = joined[:want], joined[want:]
            pending, have = ([rest], len(rest)) if len(rest) else ([], 0)
            idx = on_device[pos : pos + want]
            pos += want
            yield prepare_images(xb, self.augment if augment else None), self.y[idx]
