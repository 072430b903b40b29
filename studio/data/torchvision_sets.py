"""The classic data sets, `mnist`, `fashion-mnist` and `cifar10`, through `torchvision.datasets`.

Files go to `[data] cache_dir` (default: the user's cache folder, see `default_cache_dir`) and are
downloaded once, with torchvision's progress bar on stderr. Offline, the error says which files
to put where by hand. The official training set is split into train and val by `val_split`
(stratified, with the run's seed); the official test set is the test split, so `test_split` is
not used for these sources. They are small enough decoded (MNIST 55 MB, CIFAR-10 184 MB) to take
the in-memory fast path always.

MNIST and Fashion-MNIST are read by torchvision's own IDX reader. CIFAR-10 is downloaded and
checked by torchvision (the archive's MD5), but its pickled batches are read here with an
unpickler that can only build plain containers and numpy arrays: torchvision's `CIFAR10` calls
`pickle.load` on the files (which could run code from a file planted in the cache) and insists
on each file's MD5 (which rules out a hand-made subset, as the tests use).
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from studio.config import Config
from studio.data.base import DataBundle, Split
from studio.data.bundles import finish_bundle
from studio.data.splits import split_indices
from studio.errors import DataError

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")


def default_cache_dir() -> Path:
    """The user's cache folder for downloaded data sets (XDG on Linux, the platform's elsewhere)."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "studio" / "Cache"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "studio"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "studio"
    return base / "datasets"


def cache_root(config: Config) -> Path:
    return Path(config.data.cache_dir).expanduser() if config.data.cache_dir else default_cache_dir()


def _first_line(exc: BaseException) -> str:
    """The gist of an error: its first line, plus its last when torchvision lists causes below it."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"
    return text[:200]


# -- MNIST and Fashion-MNIST ---------------------------------------------------------------------


def _mnist_class(source: str) -> Any:
    from torchvision import datasets

    return datasets.MNIST if source == "mnist" else datasets.FashionMNIST


def _read_mnist(source: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    cls = _mnist_class(source)
    raw = root / cls.__name__ / "raw"
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError as exc:
        if "not found" in str(exc).lower():
            raise FileNotFoundError(raw) from None
        raise DataError(
            f"{source}: the files in '{raw}' are corrupt ({_first_line(exc)}); delete them to download again"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torchvision's reader raises many kinds for a broken file
        raise DataError(
            f"{source}: the files in '{raw}' are corrupt ({_first_line(exc)}); delete them to download again"
        ) from None
    return ds.data.unsqueeze(1).contiguous(), ds.targets.long()


def _download_mnist(source: str, root: Path) -> None:
    cls = _mnist_class(source)
    raw = root / cls.__name__ / "raw"
    print(f"downloading {source} into {raw} ...", file=sys.stderr, flush=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - no network, a proxy page, a full disk: all end here
        names = ", ".join(f"{n}.gz" for n in MNIST_FILES)
        raise DataError(
            f"{source}: cannot download ({_first_line(exc)}). Offline, put {names} "
            f"(from {cls.mirrors[0]}) or their unpacked versions in '{raw}' by hand, "
            "or point [data] cache_dir at a folder that has them"
        ) from None


def load_mnist_like(
    source: str, root: Path
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(train x, train y, test x, test y, class names) of MNIST or Fashion-MNIST, downloading if needed."""
    try:
        xtr, ytr = _read_mnist(source, root, True)
    except FileNotFoundError:
        _download_mnist(source, root)
        xtr, ytr = _read_mnist(source, root, True)
    xte, yte = _read_mnist(source, root, False)
    labels = tuple(str(i) for i in range(10)) if source == "mnist" else tuple(_mnist_class(source).classes)
    return xtr, ytr, xte, yte, labels


# -- CIFAR-10 --------------------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and refuses every other object."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only arrays and plain values)")


def _unpickle(path: Path) -> Any:
    with open(path, "rb") as fh:
        return _ArrayUnpickler(fh, encoding="latin1").load()


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        entry = _unpickle(path)
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"] if "labels" in entry else entry["fine_labels"], dtype=np.int64)
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or unsafe files all end here
        raise DataError(
            f"cifar10: '{path}' is not a CIFAR-10 batch ({_first_line(exc)}); delete it to download again"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != data.shape[0]:
        raise DataError(
            f"cifar10: '{path}' has data of shape {data.shape} and {len(labels)} labels; "
            "expected [N, 3072] and N labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"cifar10: '{path}' has labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _download_cifar(root: Path) -> None:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    print(f"downloading cifar10 into {root} ...", file=sys.stderr, flush=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    except Exception as exc:  # noqa: BLE001 - see _download_mnist
        raise DataError(
            f"cifar10: cannot download ({_first_line(exc)}). Offline, put {CIFAR10.filename} "
            f"(from {CIFAR10.url}) in '{root}' by hand, or its unpacked folder "
            f"'{root / CIFAR10.base_folder}' with {', '.join(CIFAR_FILES)}; or point "
            "[data] cache_dir at a folder that has them"
        ) from None


def load_cifar10(root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(train x, train y, test x, test y, class names) of CIFAR-10, downloading if needed."""
    folder = root / "cifar-10-batches-py"
    if not all((folder / name).is_file() for name in CIFAR_FILES):
        _download_cifar(root)
        missing = [n for n in CIFAR_FILES if not (folder / n).is_file()]
        if missing:
            raise DataError(f"cifar10: '{folder}' lacks {', '.join(missing)} after unpacking the archive")
    parts = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    xtr = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    ytr = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    xte_np, yte_np = _read_cifar_batch(folder / "test_batch")
    try:
        names = _unpickle(folder / "batches.meta")["label_names"]
        labels = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except Exception as exc:  # noqa: BLE001 - see _download_mnist: a broken meta file fails in many ways
        raise DataError(
            f"cifar10: '{folder / 'batches.meta'}' is not a CIFAR-10 meta file ({_first_line(exc)})"
        ) from None
    if len(labels) != 10:
        raise DataError(f"cifar10: '{folder / 'batches.meta'}' names {len(labels)} classes; expected 10")
    return xtr, ytr, torch.from_numpy(xte_np), torch.from_numpy(yte_np), labels


# -- the loader ----------------------------------------------------------------------------------


def adapt_images(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Honour `[data] channels` and `image_size` for a built-in set (luma for gray, antialiased resize)."""
    if channels and channels != x.shape[1]:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        else:
            w = torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
            x = torch.cat(
                [
                    (c.float() * w).sum(dim=1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
                    for c in x.split(4096)
                ]
            )
    if size and size != x.shape[-1]:
        x = torch.cat(
            [
                F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
                .round_()
                .clamp_(0, 255)
                .to(torch.uint8)
                for c in x.split(2048)
            ]
        )
    return x


def load_torchvision_set(config: Config) -> DataBundle:
    """Load mnist, fashion-mnist or cifar10 (downloading once), split train/val by the seed."""
    d = config.data
    root = cache_root(config)
    if d.source == "cifar10":
        xtr, ytr, xte, yte, labels = load_cifar10(root)
    else:
        xtr, ytr, xte, yte, labels = load_mnist_like(d.source, root)
    xtr, xte = adapt_images(xtr, d.channels, d.image_size), adapt_images(xte, d.channels, d.image_size)
    tr, va, _ = split_indices(len(ytr), d.val_split, 0.0, config.seed, ytr)
    return finish_bundle(
        config,
        Split(xtr[tr], ytr[tr], tr),
        Split(xtr[va], ytr[va], va),
        Split(xte, yte, torch.arange(len(yte))),
        kind="image",
        task="classification",
        labels=labels,
    )
