"""mnist, fashion-mnist and cifar10 from small files in the exact on-disk formats torchvision reads.

No test touches the network: `urllib.request.urlopen` is replaced by one that fails, as offline.
"""

from __future__ import annotations

import pickle
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli import main
from studio.config import config_from_dict
from studio.data import load_data
from studio.errors import DataError


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    tried: list[str] = []

    def refuse(url, *args, **kwargs):
        tried.append(getattr(url, "full_url", url))
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return tried


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (big-endian magic, dims, then uint8 data), as yann.lecun.com published MNIST."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str, n_train: int = 60, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    data = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": np.arange(n_train, dtype=np.uint8) % 10,
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": np.arange(n_test, dtype=np.uint8) % 10,
    }
    raw = root / folder / "raw"
    write_idx(raw / "train-images-idx3-ubyte", data["train_x"])
    write_idx(raw / "train-labels-idx1-ubyte", data["train_y"])
    write_idx(raw / "t10k-images-idx3-ubyte", data["test_x"])
    write_idx(raw / "t10k-labels-idx1-ubyte", data["test_y"])
    return data


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root: Path, per_batch: int = 10, n_test: int = 10) -> dict[str, np.ndarray]:
    """cifar-10-batches-py/ with pickled dicts: data [N, 3072] uint8 (R, G, B planes), labels, meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(
                {
                    "batch_label": f"training batch {i} of 5",
                    "labels": y,
                    "data": x,
                    "filenames": [f"img_{i}_{j}.png" for j in range(per_batch)],
                },
                fh,
                protocol=2,
            )
        xs.append(x)
        ys += y
    tx = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    ty = [j % 10 for j in range(n_test)]
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": ty, "data": tx}, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": CIFAR_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072}, fh, protocol=2)
    return {
        "train_x": np.concatenate(xs).reshape(-1, 3, 32, 32),
        "train_y": np.array(ys),
        "test_x": tx.reshape(-1, 3, 32, 32),
        "test_y": np.array(ty),
    }


def _config(source: str, cache: Path, **data: object):
    return config_from_dict({"data": {"source": source, "cache_dir": str(cache), **data}, "train": {"batch_size": 4}})


@pytest.mark.parametrize(
    "source, folder, labels",
    [
        ("mnist", "MNIST", tuple(str(i) for i in range(10))),
        (
            "fashion-mnist",
            "FashionMNIST",
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
    ],
)
def test_mnist_pair_reads_idx_files(tmp_path: Path, source: str, folder: str, labels: tuple, offline) -> None:
    data = write_mnist(tmp_path, folder)
    bundle = load_data(_config(source, tmp_path, val_split=0.2))
    assert offline == []  # everything was there: no download tried
    assert bundle.spec.labels == labels and bundle.spec.input_shape == (1, 28, 28)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (50, 10, 20)
    assert torch.bincount(bundle.val.y, minlength=10).tolist() == [1] * 10  # stratified, 0.2 of 6 per class
    assert torch.equal(bundle.test.x[:, 0], torch.from_numpy(data["test_x"]))  # the official test set
    assert torch.equal(bundle.test.y, torch.from_numpy(data["test_y"]).long())
    pos = bundle.train.indices
    assert torch.equal(bundle.train.x[:, 0], torch.from_numpy(data["train_x"])[pos])
    assert torch.equal(bundle.train.y, torch.from_numpy(data["train_y"]).long()[pos])


def test_cifar10_reads_pickled_batches(tmp_path: Path, offline) -> None:
    data = write_cifar(tmp_path)
    bundle = load_data(_config("cifar10", tmp_path, val_split=0.2))
    assert offline == []
    assert bundle.spec.labels == tuple(CIFAR_NAMES) and bundle.spec.input_shape == (3, 32, 32)
    assert len(bundle.train) + len(bundle.val) == 50 and 7 <= len(bundle.val) <= 13 and len(bundle.test) == 10
    assert torch.equal(bundle.test.x, torch.from_numpy(data["test_x"]))
    pos = bundle.train.indices
    assert torch.equal(bundle.train.x, torch.from_numpy(data["train_x"])[pos])
    assert torch.equal(bundle.train.y, torch.from_numpy(data["train_y"])[pos])


def test_channels_and_image_size_apply_to_built_in_sets(tmp_path: Path) -> None:
    data = write_cifar(tmp_path)
    bundle = load_data(_config("cifar10", tmp_path, channels=1, image_size=16))
    assert bundle.spec.input_shape == (1, 16, 16)
    assert bundle.test.x.dtype == torch.uint8
    gray = (torch.from_numpy(data["test_x"]).float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    small = torch.nn.functional.interpolate(gray[:, None], size=(16, 16), mode="bilinear", antialias=True)
    assert (bundle.test.x.float() - small).abs().max() <= 1.0


@pytest.mark.parametrize(
    "source, where, files",
    [
        ("mnist", "MNIST/raw", "train-images-idx3-ubyte.gz"),
        ("fashion-mnist", "FashionMNIST/raw", "t10k-labels-idx1-ubyte.gz"),
        ("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
    ],
)
def test_offline_error_says_where_to_put_the_files(
    tmp_path: Path, source: str, where: str, files: str, offline
) -> None:
    with pytest.raises(DataError) as info:
        load_data(_config(source, tmp_path / "cache"))
    message = str(info.value)
    assert offline, "a download was attempted"
    assert "cannot download" in message and "network is unreachable" in message
    assert str(tmp_path / "cache" / where) in message and files in message
    assert "cache_dir" in message


def test_offline_cli_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "mnist.toml"
    cfg.write_text(f'[data]\nsource = "mnist"\ncache_dir = "{(tmp_path / "c").as_posix()}"\n', encoding="utf-8")
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    error_lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1 and "MNIST/raw" in error_lines[0]


def test_corrupt_files_are_clear_errors(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match=r"corrupt.*delete them to download again"):
        load_data(_config("mnist", tmp_path))


def test_cifar_batches_that_carry_code_are_refused(tmp_path: Path) -> None:
    write_cifar(tmp_path)

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as fh:
        pickle.dump({"labels": [0], "data": Payload()}, fh)
    with pytest.raises(DataError, match=r"data_batch_3.*refusing to load builtins\.print"):
        load_data(_config("cifar10", tmp_path))


def test_default_cache_is_the_users_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from studio.data.torchvision_sets import cache_root

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = cache_root(config_from_dict({"data": {"source": "mnist"}}))
    assert root.parts[-2:] == ("studio", "datasets")
    assert cache_root(_config("mnist", tmp_path / "mine")) == tmp_path / "mine"
