"""Exact duplicates between train and val/test, and class-imbalance warnings."""

from __future__ import annotations

import torch

from studio.config import Config
from studio.data import bundle_from_arrays, load_data
from studio.data.balance import class_counts, imbalance_warnings
from studio.data.base import DataBundle, DataSpec, Split
from studio.data.duplicates import find_duplicates, sample_hashes


def _bundle(train: Split, val: Split, test: Split) -> DataBundle:
    spec = DataSpec(source="digits", kind="image", task="classification", input_shape=(1, 4, 4), labels=("a", "b", "c"))
    return DataBundle(spec, train, val, test)


def _images(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=gen)


def test_hashes_tell_identical_bytes_apart_from_one_changed_pixel() -> None:
    x = _images(3, 0)
    x[1] = x[0]
    h = sample_hashes(x)
    assert h[0] == h[1] and h[0] != h[2]
    y = x.clone()
    y[1, 0, 0, 0] ^= 1
    assert sample_hashes(y)[1] != h[0]
    assert sample_hashes(x[:0]) == []


def test_finds_planted_leaks_with_positions_and_label_conflicts() -> None:
    tr_x, va_x, te_x = _images(20, 1), _images(6, 2), _images(5, 3)
    tr_y = torch.arange(20) % 3
    va_y, te_y = torch.zeros(6, dtype=torch.long), torch.ones(5, dtype=torch.long)
    va_x[2] = tr_x[7]  # train label 1, val label 0: a leak whose labels disagree
    va_x[4] = tr_x[9]  # train label 0, val label 0: a plain leak
    te_x[0] = tr_x[4]  # train label 1, test label 1
    tr_x[15] = tr_x[3]  # a repeat inside train
    report = find_duplicates(_bundle(Split(tr_x, tr_y), Split(va_x, va_y), Split(te_x, te_y)))
    assert sorted(report.leaks["val"].pairs) == [(7, 2), (9, 4)]
    assert report.leaks["val"].count == 2
    assert report.leaks["val"].label_conflicts == 1
    assert report.leaks["test"].pairs == [(4, 0)] and report.leaks["test"].label_conflicts == 0
    assert report.train_repeats == 1
    assert report.leaked == 3
    text = report.warnings()
    assert text[0].startswith("2 val samples (33.3% of it) also appear in train")
    assert "1 of the copies carry a different label" in text[0]
    assert text[1].startswith("1 test sample (20.0% of it) also appears in train")
    assert "1 exact repeat" in text[2]


def test_clean_data_has_no_warnings_and_empty_splits_are_fine() -> None:
    tr, va = _images(10, 4), _images(4, 5)
    y = torch.zeros(10, dtype=torch.long)
    empty = Split(tr[:0], y[:0])
    report = find_duplicates(_bundle(Split(tr, y), Split(va, y[:4]), empty))
    assert report.leaked == 0 and report.train_repeats == 0 and report.warnings() == []


def test_bundled_digits_have_no_cross_split_duplicates() -> None:
    bundle = load_data(Config())
    report = find_duplicates(bundle)
    assert report.sizes == {"train": 6400, "val": 800, "test": 800}
    assert report.leaked == 0, report.warnings()


def test_tabular_rows_are_hashed_too() -> None:
    cfg = Config()
    x = torch.tensor([[1.0, 2.0]] * 4 + [[float(i), 0.5] for i in range(16)])
    y = torch.tensor([0.0] * 20)
    bundle = bundle_from_arrays(cfg, x, y, kind="tabular", task="regression", feature_names=("a", "b"))
    report = find_duplicates(bundle)
    # The four identical rows are spread over the splits or repeated within train.
    assert report.leaked + report.train_repeats == 3


def test_class_counts_per_split() -> None:
    bundle = load_data(Config())
    counts = class_counts(bundle)
    assert sum(counts["train"]) == 6400 and sum(counts["val"]) == 800 and sum(counts["test"]) == 800
    assert len(counts["train"]) == 10
    assert imbalance_warnings(counts, bundle.spec.labels) == []  # MNIST is roughly balanced


def test_imbalance_warnings() -> None:
    labels = ("cat", "dog", "fox")
    w = imbalance_warnings({"train": [900, 100, 300], "val": [90, 10, 30]}, labels)
    assert len(w) == 1 and "'cat' has 900 samples, 'dog' only 100 (9x)" in w[0]
    w = imbalance_warnings({"train": [100, 0, 90], "val": [10, 0, 0], "test": [0, 0, 0]}, labels)
    assert any("no training samples for 'dog'" in s for s in w)
    assert any("the val split has no samples of 'fox'" in s for s in w)
    assert not any("test split" in s for s in w)  # an empty split is not a missing class
    assert imbalance_warnings({}, labels) == []


class _FileBacked:
    """Stands in for an image folder too big for memory: indexes like a tensor, decodes on demand."""

    def __init__(self, x: torch.Tensor) -> None:
        self._x = x
        self.decoded = 0

    def __len__(self) -> int:
        return len(self._x)

    def __getitem__(self, idx: torch.Tensor) -> _FileBacked:
        return _FileBacked(self._x[idx])

    def decode(self) -> torch.Tensor:
        return self._x.clone()


def test_file_backed_splits_are_hashed_by_file(tmp_path) -> None:
    paths = []
    for i, content in enumerate([b"cat-1", b"cat-2", b"dog-1", b"cat-1", b"dog-9"]):
        p = tmp_path / f"{i}.png"
        p.write_bytes(content)
        paths.append(str(p))
    x = _FileBacked(_images(5, 9))
    y = torch.tensor([0, 0, 1, 0, 1])
    bundle = _bundle(
        Split(x[torch.tensor([0, 1, 2])], y[:3], torch.tensor([0, 1, 2])),  # type: ignore[arg-type]
        Split(x[torch.tensor([3])], y[3:4], torch.tensor([3])),  # type: ignore[arg-type]
        Split(x[torch.tensor([4])], y[4:5], torch.tensor([4])),
    )
    bundle.paths = tuple(paths)  # what the folder source records
    report = find_duplicates(bundle)
    assert report.leaks["val"].pairs == [(0, 0)]  # file 3 has the bytes of file 0
    assert report.leaks["test"].pairs == []


def test_file_backed_splits_without_paths_are_decoded() -> None:
    tr = _images(6, 10)
    va = tr[:2].clone()
    y = torch.zeros(6, dtype=torch.long)
    bundle = _bundle(
        Split(_FileBacked(tr), y),
        Split(_FileBacked(va), y[:2]),  # type: ignore[arg-type]
        Split(tr[:0], y[:0]),
    )
    assert find_duplicates(bundle).leaks["val"].count == 2
