"""The `folder` source: a folder of images, one subfolder per class.

Two layouts (the contract's):

- `root/<class>/...`: the run's seed splits the images into train/val/test (stratified);
- `root/{train,val,test}/<class>/...`: the folders are the splits (`valid` and `validation` also
  name the val folder); a missing val or test folder is split off train by `val_split`/`test_split`.

Rules users can rely on:

- class names are the subfolder names in sorted order (as torchvision's `ImageFolder`); images may
  sit deeper inside a class folder; hidden folders and files (`.ipynb_checkpoints`, `.DS_Store`)
  are ignored, and so is every file that is not png, jpg/jpeg, bmp, gif, webp or tiff;
- every real folder is read once and every file counts once: links are followed only to what no
  plain path reaches, so a link loop (`ln -s .. up`), a class folder that links to another class,
  a split folder that is another split, or a second path to a file (a symlink, a hard link) is
  skipped with one warning naming the first few; a file reachable from train and from val/test
  counts in train only. A folder that cannot be listed (permissions) is skipped with a warning
  (the walk itself is `ImageTree` in studio/data/folder_walk.py);
- files that fail to decode are skipped with one warning giving their count and the first few
  paths; no image left, or fewer than two classes with images, is an error;
- `channels` comes from the data (1 when every image is grayscale, else 3) unless `[data]
  channels` says otherwise; `image_size` defaults to the most common size's longer side, capped
  at 224; other sizes are resized (squashed, never cropped) with a warning;
- a strong class imbalance is reported;
- when the decoded images fit `[data] memory_budget_mb` they are decoded once, in parallel, into
  memory (the fast path); otherwise the splits hold `ImageFiles` and a DataLoader decodes them.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from studio.config import Config, DataConfig
from studio.data.balance import folder_imbalance_warning
from studio.data.base import DataBundle, Split
from studio.data.bundles import finish_bundle
from studio.data.folder_walk import FileKey, ImageTree, file_identity, listed, relative
from studio.data.images import ImageFiles, ImageProbe, decode_images, decode_threads, is_image_file, probe_images
from studio.data.splits import split_indices
from studio.errors import DataError

MAX_DEFAULT_SIZE = 224
SAMPLED_PROBES = 1000  # headers read to guess the shape of a large folder before its one decoding pass
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_LAYOUT_HINT = "expected root/<class>/<images> or root/{train,val,test}/<class>/<images>"


@dataclass
class FolderListing:
    """The image files of a folder by split ("all" for the class layout) and the class names."""

    root: Path
    classes: tuple[str, ...]
    files: dict[str, list[tuple[str, int]]]  # split -> [(path, class index)]
    ignored: int = 0  # files that are not images by their suffix
    warnings: list[str] = field(default_factory=list)

    @property
    def split_layout(self) -> bool:
        return "all" not in self.files


def _visible_dirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"{path}: cannot list the folder ({exc.strerror})") from None


def _has_loose_images(path: Path) -> bool:
    try:
        return any(p.is_file() and is_image_file(p.name) for p in path.iterdir())
    except OSError:
        return False


def list_folder(root: str | Path) -> FolderListing:
    """Find the classes and image files of a folder in either layout; errors say what is wrong."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"[data] path '{root}' does not exist")
    if not root.is_dir():
        raise DataError(f"[data] path '{root}' is a file; the folder source needs a folder ({_LAYOUT_HINT})")
    subdirs = _visible_dirs(root)
    split_dirs = {SPLIT_FOLDERS[d.name.lower()]: d for d in subdirs if d.name.lower() in SPLIT_FOLDERS}
    # A `train` folder of class folders means the split layout, even beside stray folders.
    is_split_layout = (
        "train" in split_dirs
        and bool(_visible_dirs(split_dirs["train"]))
        and not _has_loose_images(split_dirs["train"])
    )
    if not subdirs:
        if _has_loose_images(root):
            raise DataError(
                f"{root}: the images are not in class subfolders; put each class's images in "
                f"a folder named after the class ({_LAYOUT_HINT})"
            )
        raise DataError(f"{root}: the folder is empty (no class subfolders; {_LAYOUT_HINT})")
    if not is_split_layout:
        return _list_classes(root, {"all": root})
    split_dirs, aliases = _distinct_split_dirs(split_dirs)
    listing = _list_classes(root, split_dirs)
    listing.warnings[:0] = aliases
    stray = [d.name for d in subdirs if d.name.lower() not in SPLIT_FOLDERS]
    if stray:
        listing.warnings.append(
            f"{root}: ignored folder(s) {', '.join(repr(s) for s in stray[:5])} beside "
            "train/val/test (the split layout reads only those)"
        )
    return listing


def _distinct_split_dirs(split_dirs: dict[str, Path]) -> tuple[dict[str, Path], list[str]]:
    """The split folders without a second name for one folder (`test -> train` would test on train)."""
    kept: dict[str, Path] = {}
    seen: dict[FileKey, str] = {}
    warnings: list[str] = []
    for split in sorted(split_dirs, key=["train", "val", "test"].index):
        path = split_dirs[split]
        try:
            key = file_identity(os.stat(path), str(path))
        except OSError as exc:
            raise DataError(f"{path}: cannot read the folder ({exc.strerror})") from None
        if key in seen:
            fill = " (it is split off train by [data] val_split/test_split)" if split != "train" else ""
            warnings.append(f"{path}: ignored, it is the same folder as '{seen[key]}'{fill}")
            continue
        seen[key] = path.name
        kept[split] = path
    return kept, warnings


def _list_classes(root: Path, split_dirs: dict[str, Path]) -> FolderListing:
    tree = ImageTree(root)
    tree.hold(root, *split_dirs.values())
    # train first: a file reachable from two splits counts in train and never leaks into val or test.
    splits = sorted(split_dirs, key=["all", "train", "val", "test"].index)
    found_dirs = [(split, d.name, d) for split in splits for d in _visible_dirs(split_dirs[split])]
    read = tree.read(found_dirs)
    per_split = {split: read.get(split, {}) for split in splits}
    warnings = tree.warnings()
    ignored = tree.ignored
    accounted = {p for p, _ in tree.unreadable + tree.links_skipped}  # already reported, not "empty"
    main = per_split.get("all", per_split.get("train", {}))
    main_dir = split_dirs.get("all", split_dirs.get("train", root))
    empty = [name for name, files in main.items() if not files and str(main_dir / name) not in accounted]
    classes = tuple(sorted(name for name, files in main.items() if files))
    total = sum(len(f) for found in per_split.values() for f in found.values())
    where = split_dirs.get("train", root)
    if total == 0:
        extra = (
            f" ({ignored} other file(s) ignored: only png, jpg, bmp, gif, webp and tiff are read)" if ignored else ""
        )
        skipped = f"; {'; '.join(warnings)}" if warnings else ""
        raise DataError(f"{root}: no images found{extra}{skipped}")
    if len(classes) < 2:
        skipped = f" ({'; '.join(warnings)})" if warnings else ""
        if not classes:
            raise DataError(f"{where}: no class folder holds images; {_LAYOUT_HINT}{skipped}")
        raise DataError(
            f"{where}: only one class ('{classes[0]}') holds images; a classifier needs at least "
            f"two class folders ({_LAYOUT_HINT}){skipped}"
        )
    if empty:
        warnings.append(
            f"{where}: ignored {len(empty)} class folder(s) without images: "
            f"{', '.join(repr(e) for e in empty[:5])}{' ...' if len(empty) > 5 else ''}"
        )
    index = {name: i for i, name in enumerate(classes)}
    files: dict[str, list[tuple[str, int]]] = {}
    for split, found in per_split.items():
        unknown = [name for name, f in found.items() if f and name not in index]
        if unknown:
            raise DataError(
                f"{split_dirs[split]}: class folder(s) {', '.join(repr(u) for u in unknown)} "
                f"are not in {where}; every {split} class needs training images"
            )
        files[split] = [(path, index[name]) for name in sorted(found) if name in index for path in found[name]]
    return FolderListing(root, classes, files, ignored, warnings)


def choose_size(probes: list[ImageProbe], requested: int) -> int:
    """The training size: the request, else the most common size's longer side, capped at 224."""
    if requested > 0:
        return requested
    (w, h), _ = Counter((p.width, p.height) for p in probes).most_common(1)[0]
    return min(max(w, h), MAX_DEFAULT_SIZE)


def _skip_warning(root: Path, bad: list[tuple[str, str]]) -> str:
    return f"{root}: skipped {len(bad)} file(s) that could not be read as images: {listed(bad, root)}"


def image_shape(probes: list[ImageProbe], data: DataConfig) -> tuple[int, int]:
    """(size, channels) for these images: the config's values, else the data's (see the module doc)."""
    return choose_size(probes, data.image_size), data.channels or (1 if all(p.gray for p in probes) else 3)


def _read_images(
    paths: list[str], d: DataConfig
) -> tuple[torch.Tensor | ImageFiles | None, list[ImageProbe | str], tuple[int, int]]:
    """Decode (or, over the memory budget, only check) every file.

    Returns the images of the readable files (a tensor, or `ImageFiles` to decode later; None when
    none is readable), each file's probe or failure reason, and the (size, channels) chosen.
    Large folders are read in one pass: a seeded sample of headers guesses the shape and the
    decode checks the guess against every file (a second pass only when the guess was wrong).
    """
    budget = d.memory_budget_mb * 2**20

    def fits(n: int, shape: tuple[int, int]) -> bool:
        return n * shape[1] * shape[0] ** 2 <= budget

    n = len(paths)
    if n > 2 * SAMPLED_PROBES:
        pick = np.sort(np.random.default_rng(0).choice(n, SAMPLED_PROBES, replace=False))
        sample = [p for p in probe_images([paths[i] for i in pick]) if not isinstance(p, str)]
        if sample and fits(n, image_shape(sample, d)):
            shape = image_shape(sample, d)
            threads = decode_threads(sample, n)
            arr, failures, decoded = decode_images(paths, *shape, threads)
            good = [p for p in decoded if p is not None]
            if good and image_shape(good, d) != shape and fits(n, image_shape(good, d)):
                shape = image_shape(good, d)  # the sample missed the most common size or a colour image
                arr, failures, decoded = decode_images(paths, *shape, threads)
                good = [p for p in decoded if p is not None]
            if good and image_shape(good, d) == shape:
                ok = np.array([i not in failures for i in range(n)], dtype=bool)
                # A file failed exactly where it has no probe.
                outcome = [failures[i] if p is None or i in failures else p for i, p in enumerate(decoded)]
                return torch.from_numpy(arr[ok]), outcome, shape
    probes = probe_images(paths)
    idx = [i for i, p in enumerate(probes) if not isinstance(p, str)]
    if not idx:
        return None, probes, (0, 0)
    readable = [p for p in probes if not isinstance(p, str)]
    shape = image_shape(readable, d)
    kept = [paths[i] for i in idx]
    if not fits(len(kept), shape):
        return ImageFiles(kept, *shape), probes, shape
    threads = decode_threads(readable, len(kept))
    arr, failures, _ = decode_images(kept, *shape, threads)  # header fine, pixels broken: a truncated file
    for j, why in failures.items():
        probes[idx[j]] = why
    ok = np.array([j not in failures for j in range(len(kept))], dtype=bool)
    return torch.from_numpy(arr[ok]), probes, shape


def load_folder(config: Config) -> DataBundle:
    """Read an image folder into a `DataBundle` (see the module doc for the rules)."""
    d = config.data
    listing = list_folder(d.path)
    root = listing.root
    warnings = list(listing.warnings)
    order = ["all"] if not listing.split_layout else [s for s in ("train", "val", "test") if s in listing.files]
    paths = [p for s in order for p, _ in listing.files[s]]
    labels = np.array([c for s in order for _, c in listing.files[s]], dtype=np.int64)
    split_of = np.array([i for i, s in enumerate(order) for _ in listing.files[s]], dtype=np.int64)

    x, probes, shape = _read_images(paths, d)
    bad = [(paths[i], p) for i, p in enumerate(probes) if isinstance(p, str)]
    keep = np.array([not isinstance(p, str) for p in probes], dtype=bool)
    good = [p for p in probes if not isinstance(p, str)]
    if x is None or not good:
        raise DataError(
            f"{root}: none of the {len(paths)} image file(s) could be read "
            f"(first: {relative(bad[0][0], root)}: {bad[0][1]})"
        )
    size, channels = shape
    sizes = Counter((p.width, p.height) for p in good)
    if len(sizes) > 1 or (d.image_size == 0 and size != max(next(iter(sizes)))):
        (cw, ch), cn = sizes.most_common(1)[0]
        why = (
            f"images come in {len(sizes)} sizes (most common {cw}x{ch}: {cn} of {len(good)})"
            if len(sizes) > 1
            else f"the images are {cw}x{ch}"
        )
        hint = " (set [data] image_size to choose)" if d.image_size == 0 else ""
        warnings.append(f"{why}; all are resized to {size}x{size}{hint}")
    kept_paths = [paths[i] for i in np.flatnonzero(keep)]
    if isinstance(x, ImageFiles):
        mb = len(kept_paths) * channels * size * size / 2**20
        warnings.append(
            f"{len(kept_paths)} images at {channels}x{size}x{size} need {mb:,.0f} MB, over "
            f"[data] memory_budget_mb = {d.memory_budget_mb}; images are decoded while training "
            f"({d.num_workers} workers)"
        )
    if bad:
        warnings.append(_skip_warning(root, bad))
    if len(kept_paths) == 0:
        raise DataError(f"{root}: none of the {len(paths)} image file(s) could be decoded")
    y = torch.from_numpy(labels[keep])
    split_of = split_of[keep]
    present = np.unique(labels[keep])
    if len(present) < 2:
        raise DataError(
            f"{root}: after skipping unreadable files only class '{listing.classes[present[0]]}' "
            "has images; a classifier needs at least two"
        )
    note = folder_imbalance_warning(listing.classes, labels[keep])
    if note:
        warnings.append(note)

    positions = torch.arange(len(y))
    if listing.split_layout:
        parts = {s: positions[torch.from_numpy(split_of == i)] for i, s in enumerate(order)}
    else:
        parts = {"all": positions}
    train_idx, val_idx, test_idx = _assign_splits(config, parts, y)
    if len(train_idx) == 0:
        raise DataError(f"{root}: no training images left after the val/test splits ({len(y)} images in all)")

    def split(idx: torch.Tensor) -> Split:
        return Split(x[idx], y[idx], idx)  # type: ignore[arg-type]  # ImageFiles stands in for the tensor (see Split)

    bundle = finish_bundle(
        config,
        split(train_idx),
        split(val_idx),
        split(test_idx),
        kind="image",
        task="classification",
        labels=listing.classes,
        warnings=warnings,
    )
    bundle.paths = tuple(kept_paths)
    bundle.image_sizes = {f"{w}x{h}": n for (w, h), n in sizes.most_common()}
    return bundle


def _assign_splits(
    config: Config, parts: dict[str, torch.Tensor], y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train/val/test positions: the split folders where they exist, else seeded stratified fractions."""
    d = config.data
    if "all" in parts:
        return split_indices(len(y), d.val_split, d.test_split, config.seed, y)
    train = parts["train"]
    val_frac = 0.0 if "val" in parts else d.val_split
    test_frac = 0.0 if "test" in parts else d.test_split
    tr, va, te = split_indices(len(train), val_frac, test_frac, config.seed, y[train])
    val = parts["val"] if "val" in parts else train[va]
    test = parts["test"] if "test" in parts else train[te]
    return train[tr], val, test
