"""Exact-duplicate samples shared between train and val/test: a leak that inflates every metric.

Each sample's raw bytes (uint8 pixels or float32 features, exactly as trained on) are hashed, so
the check finds byte-identical copies, such as the same image saved twice in two folders; it does
not look for near-duplicates (resized or re-encoded copies).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from studio.data.base import DataBundle, Split
from studio.data.images import take_images


def sample_hashes(x: torch.Tensor) -> list[bytes]:
    """A 128-bit BLAKE2b digest of each sample's bytes (first axis = samples)."""
    if x.shape[0] == 0:
        return []
    flat = x.detach().cpu().contiguous().reshape(x.shape[0], -1).numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


@dataclass(frozen=True)
class SplitLeak:
    """Samples of one held-out split that also occur, byte for byte, in the training split."""

    split: str  # "val" | "test"
    pairs: list[tuple[int, int]]  # (position in train, position in this split)
    label_conflicts: int  # pairs whose two copies carry different labels

    @property
    def count(self) -> int:
        """Held-out samples with a copy in train."""
        return len({other for _, other in self.pairs})


@dataclass(frozen=True)
class DuplicateReport:
    """What `find_duplicates` found: leaks into val and test, and repeats inside train."""

    leaks: dict[str, SplitLeak] = field(default_factory=dict)
    train_repeats: int = 0  # extra copies inside the training split (harmless, but worth knowing)
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def leaked(self) -> int:
        return sum(leak.count for leak in self.leaks.values())

    def warnings(self) -> list[str]:
        """One sentence per problem, for the data explorer and the run's messages."""
        out = []
        for name, leak in self.leaks.items():
            if not leak.count:
                continue
            size = self.sizes.get(name, 0)
            share = f" ({leak.count / size:.1%} of it)" if size else ""
            text = (
                f"{leak.count} {name} sample{'s' if leak.count != 1 else ''}{share} also "
                f"appear{'s' if leak.count == 1 else ''} in train, byte for byte: "
                f"the {name} figures are inflated"
            )
            if leak.label_conflicts:
                text += f"; {leak.label_conflicts} of the copies carry a different label"
            out.append(text)
        if self.train_repeats:
            out.append(
                f"train holds {self.train_repeats} exact repeat{'s' if self.train_repeats != 1 else ''} "
                "of other train samples"
            )
        return out


def file_hashes(paths: list[str]) -> list[bytes]:
    """BLAKE2b digests of whole files: byte-identical files are exact duplicates."""
    out = []
    for path in paths:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out.append(h.digest())
    return out


def split_hashes(bundle: DataBundle, split: Split) -> list[bytes]:
    """One digest per sample: of its bytes in memory, or of its source file for a file-backed split."""
    if len(split) == 0:
        return []
    if isinstance(split.x, torch.Tensor):
        return sample_hashes(split.x)
    paths = getattr(bundle, "paths", ())
    if paths and split.indices is not None:  # an image folder too big for memory: hash the files
        return file_hashes([paths[int(i)] for i in split.indices])
    out: list[bytes] = []
    for start in range(0, len(split), 512):  # decode in chunks so memory stays bounded
        out += sample_hashes(take_images(split.x, range(start, min(start + 512, len(split)))))
    return out


def _leak(name: str, train_index: dict[bytes, list[int]], train: Split, other: Split, hashes: list[bytes]) -> SplitLeak:
    pairs: list[tuple[int, int]] = []
    conflicts = 0
    for j, h in enumerate(hashes):
        for i in train_index.get(h, ()):
            pairs.append((i, j))
            if train.y.dtype.is_floating_point:
                conflicts += int(float(train.y[i]) != float(other.y[j]))
            else:
                conflicts += int(int(train.y[i]) != int(other.y[j]))
    return SplitLeak(name, pairs, conflicts)


def find_duplicates(bundle: DataBundle) -> DuplicateReport:
    """Hash every sample and report the ones val or test share with train."""
    train_index: dict[bytes, list[int]] = {}
    repeats = 0
    for i, h in enumerate(split_hashes(bundle, bundle.train)):
        seen = train_index.setdefault(h, [])
        repeats += bool(seen)
        seen.append(i)
    leaks = {
        name: _leak(name, train_index, bundle.train, split, split_hashes(bundle, split))
        for name, split in (("val", bundle.val), ("test", bundle.test))
    }
    sizes = {"train": len(bundle.train), "val": len(bundle.val), "test": len(bundle.test)}
    return DuplicateReport(leaks, repeats, sizes)
