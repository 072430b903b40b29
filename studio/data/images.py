"""Decoding image files: one conversion rule for training, statistics and prediction.

`load_image(path, size, channels)` is the single place a file becomes a uint8 `[C, H, W]` array:
the first frame, EXIF orientation applied (photos from phones), alpha dropped the way
torchvision's loader drops it (`convert("RGB")`), 16-bit and float images scaled to 0..255,
grayscale from RGB by ITU-R 601-2 luma (PIL's `convert("L")`, as torchvision's `Grayscale`), and
a squash resize to `size` x `size` with PIL's antialiasing bilinear filter, so nothing is cropped.
Prediction must use this function too, so a deployed model sees what training saw.

`probe_image` reads only the header (size and whether the image is grayscale); `decode_images`
decodes many files, in parallel threads when they are large enough for that to pay
(`decode_threads`: Pillow releases the GIL while it decodes and resizes).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.data.bundles import image_stats

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_EXIF_ORIENTATION = 0x0112


def is_image_file(path: str | Path) -> bool:
    """True for a file whose suffix is one of the supported image formats (case-insensitive)."""
    return os.path.splitext(str(path))[1].lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class ImageProbe:
    """What a file's header says: the displayed size and whether every pixel is gray."""

    width: int
    height: int
    gray: bool


def _palette_is_gray(im: Image.Image) -> bool:
    palette = im.getpalette() or []
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))


def _orientation(im: Image.Image) -> int:
    if im.format not in ("JPEG", "TIFF", "WEBP", "MPO"):
        return 1
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block is no reason to lose the image
        return 1


_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def open_image(path: str | Path) -> Image.Image:
    """PIL's open, trying the format the suffix names first (skips probing every other plugin)."""
    fmt = _FORMATS.get(os.path.splitext(str(path))[1].lower())
    if fmt is not None:
        try:
            return Image.open(path, formats=[fmt])
        except UnidentifiedImageError:
            pass  # a misnamed file: let PIL look at the bytes
    return Image.open(path)


def _probe_of(im: Image.Image) -> ImageProbe:
    w, h = im.size
    if w < 1 or h < 1:
        raise ValueError("the image has no pixels")
    if _orientation(im) in (5, 6, 7, 8):  # rotated by 90 degrees when shown
        w, h = h, w
    gray = im.mode in _GRAY_MODES or (im.mode in ("P", "PA") and _palette_is_gray(im))
    return ImageProbe(w, h, gray)


def probe_image(path: str) -> ImageProbe:
    """Read a file's header; raises (any exception) when PIL cannot identify it or it is empty."""
    with open_image(path) as im:
        return _probe_of(im)


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and float images keep their contrast instead of clipping at 255."""
    a = np.asarray(im)
    if im.mode == "F":
        a = a.astype(np.float32)
        top = float(np.nanmax(a)) if a.size else 1.0
        a = a * 255.0 if top <= 1.0 else a
        return Image.fromarray(np.nan_to_num(a).clip(0, 255).astype(np.uint8), "L")
    a = a.astype(np.int64)
    a = a // 257 if a.max(initial=0) > 255 else a
    return Image.fromarray(a.clip(0, 255).astype(np.uint8), "L")


def load_image(path: str | Path, size: int, channels: int) -> np.ndarray:
    """Decode one file into uint8 `[channels, size, size]` (see the module doc for the rules)."""
    return decode_file(path, size, channels)[0]


def decode_file(path: str | Path, size: int, channels: int) -> tuple[np.ndarray, ImageProbe]:
    """`load_image`, plus what the file's header said (its size and whether it is grayscale)."""
    with open_image(path) as im:
        probe = _probe_of(im)
        if im.format == "JPEG":
            # Let libjpeg decode at a reduced scale when the file is much larger than needed.
            im.draft("L" if channels == 1 else "RGB", (size, size))
        im.load()
        if _orientation(im) != 1:
            im = ImageOps.exif_transpose(im)
        if im.mode in _WIDE_MODES:
            im = _to_8bit(im)
        im = im.convert("L" if channels == 1 else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        a = np.array(im)  # a writable copy: torch refuses to wrap PIL's read-only buffer quietly
    return (a[None] if channels == 1 else np.ascontiguousarray(a.transpose(2, 0, 1))), probe


PARALLEL_PIXELS = 96 * 96  # below this many pixels a file, decoding threads only fight over the GIL


def _pool_size(n: int) -> int:
    return max(1, min(8, os.cpu_count() or 1, n // 64 or 1))


def decode_threads(probes: Sequence[ImageProbe], n: int) -> int:
    """Threads worth using to decode `n` files like these: Pillow releases the GIL while it
    decompresses and resizes, which pays off for photos; for thumbnails the Python around each
    file dominates and threads only contend for the GIL (8,000 28x28 PNGs: 0.41 s on one thread,
    0.78 s on two)."""
    pixels = sorted(p.width * p.height for p in probes)
    return _pool_size(n) if pixels and pixels[len(pixels) // 2] >= PARALLEL_PIXELS else 1


def _chunks(n: int, parts: int, per_worker: int = 4) -> list[range]:
    step = max(1, -(-n // (parts * per_worker)))  # a few chunks per thread evens out slow files
    return [range(i, min(i + step, n)) for i in range(0, n, step)]


PROCESS_FILES = 4000  # small files at which forking decoder processes beats the ~0.1 s it costs


def _process_count(n: int) -> int:
    """Decoder processes for many small files (where threads cannot help): only where forking is
    safe and cheap, i.e. a POSIX process running no other thread (the GUI's trainer thread rules
    it out: a fork can copy a lock another thread holds)."""
    if n < PROCESS_FILES or os.name != "posix" or threading.active_count() > 1 or sys.platform == "darwin":
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _decode_part(
    paths: list[str], size: int, channels: int
) -> tuple[np.ndarray, dict[int, str], list[ImageProbe | None]]:
    return decode_images(paths, size, channels, threads=1, processes=False)


def probe_images(paths: Sequence[str]) -> list[ImageProbe | str]:
    """Probe every file in parallel; a failure comes back as its reason (a string)."""

    def work(r: range) -> list[ImageProbe | str]:
        out: list[ImageProbe | str] = []
        for i in r:
            try:
                out.append(probe_image(paths[i]))
            except Exception as exc:  # noqa: BLE001 - every way a file can be broken is a skip
                out.append(_reason(exc))
        return out

    with ThreadPoolExecutor(_pool_size(len(paths))) as pool:
        return [p for part in pool.map(work, _chunks(len(paths), _pool_size(len(paths)))) for p in part]


def decode_images(
    paths: Sequence[str], size: int, channels: int, threads: int | None = None, processes: bool = True
) -> tuple[np.ndarray, dict[int, str], list[ImageProbe | None]]:
    """Decode files in parallel into one uint8 `[N, C, size, size]` array.

    Returns the array, the failures by position (their rows stay zero; the caller drops them)
    and each file's probe (None where it failed).
    """
    out = np.zeros((len(paths), channels, size, size), dtype=np.uint8)
    failures: dict[int, str] = {}
    probes: list[ImageProbe | None] = [None] * len(paths)

    def work(r: range) -> None:
        for i in r:
            try:
                out[i], probes[i] = decode_file(paths[i], size, channels)
            except Exception as exc:  # noqa: BLE001 - a truncated or broken file is a skip
                failures[i] = _reason(exc)

    threads = threads or _pool_size(len(paths))
    workers = _process_count(len(paths)) if threads == 1 and processes else 1
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.starmap(
                _decode_part,
                [(list(paths[r.start : r.stop]), size, channels) for r in _chunks(len(paths), workers, per_worker=1)],
            )
        pos = 0
        for arr, part_failures, part_probes in parts:
            out[pos : pos + len(arr)] = arr
            probes[pos : pos + len(arr)] = part_probes
            failures.update({pos + i: why for i, why in part_failures.items()})
            pos += len(arr)
    elif threads == 1:
        work(range(len(paths)))
    else:
        with ThreadPoolExecutor(threads) as executor:
            list(executor.map(work, _chunks(len(paths), threads)))
    return out, failures, probes


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "cannot identify image file" in text:
        return "not a readable image"
    return text[:100]


class ImageFiles:
    """Images decoded on demand: what a split holds when the decoded data exceeds the memory budget.

    It indexes like the uint8 tensor it stands for (`files[idx]` with an index tensor, a list or a
    slice returns the subset, `shape` is `[N, C, H, W]`), so splitting code treats both alike;
    `load(i)` decodes one image. A file that breaks after the first scan decodes as black rather
    than stopping a long run.
    """

    dtype = torch.uint8

    def __init__(self, paths: Sequence[str] | np.ndarray, size: int, channels: int) -> None:
        self.paths = np.asarray(paths, dtype=object)
        self.size = size
        self.channels = channels

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.channels, self.size, self.size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, idx: torch.Tensor | np.ndarray | list[int] | slice) -> ImageFiles:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        if isinstance(idx, int):
            raise TypeError("ImageFiles[i] with one position: use load(i) to decode an image")
        return ImageFiles(self.paths[idx], self.size, self.channels)

    def load(self, i: int) -> torch.Tensor:
        try:
            return torch.from_numpy(load_image(self.paths[i], self.size, self.channels))
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):  # see the class doc
            return torch.zeros(self.channels, self.size, self.size, dtype=torch.uint8)

    def decode(self, positions: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """Decode some (or all) images into one uint8 tensor, in parallel threads."""
        paths = self.paths if positions is None else self.paths[np.asarray(positions, dtype=np.int64)]
        arr, _, _ = decode_images(list(paths), self.size, self.channels)
        return torch.from_numpy(arr)

    def pixel_stats(self, limit: int = 10_000, seed: int = 0) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std of pixels in [0, 1] over (a seeded sample of at most `limit` of) the images."""
        n = len(self)
        if n > limit:
            pick = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
        else:
            pick = np.arange(n)
        return image_stats(self.decode(pick))


def take_images(x: Any, positions: Any) -> torch.Tensor:
    """uint8 images [k, C, H, W] at these positions of a split's `x`.

    `x` is an in-memory uint8 tensor, or a file-backed stand-in (an image folder too big for the
    memory budget) that indexes like one and decodes on `decode()`; only the rows asked for are read.
    """
    idx = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
    rows = x[idx]
    if not isinstance(rows, torch.Tensor) and hasattr(rows, "decode"):
        rows = rows.decode()
    return torch.as_tensor(rows)
