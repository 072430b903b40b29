"""CSV and synthetic sources, splits, and statistics from the training split only."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from studio.config import config_from_dict
from studio.data import load_data
from studio.data.splits import split_indices
from studio.errors import DataError


def _csv(tmp_path: Path, text: str, **data: object) -> object:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    cfg = config_from_dict({"data": {"source": "csv", "path": str(path), **data}})
    return load_data(cfg)


def _rows(n: int, fmt) -> str:
    return "".join(fmt(i) for i in range(n))


def test_integer_target_is_classification(tmp_path: Path) -> None:
    b = _csv(tmp_path, "a,b,label\n" + _rows(40, lambda i: f"{i},{i % 3},{i % 2}\n"))
    assert b.spec.task == "classification" and b.spec.labels == ("0", "1")
    assert b.spec.feature_names == ("a", "b") and b.spec.input_shape == (2,)
    assert len(b.train) + len(b.val) + len(b.test) == 40


def test_string_target_labels_are_sorted(tmp_path: Path) -> None:
    b = _csv(tmp_path, "x,kind\n" + _rows(30, lambda i: f"{i},{['cat', 'ant', 'bee'][i % 3]}\n"), target="kind")
    assert b.spec.labels == ("ant", "bee", "cat")
    assert set(b.train.y.tolist()) == {0, 1, 2}


def test_float_target_is_regression_and_task_overrides(tmp_path: Path) -> None:
    text = "x,y\n" + _rows(30, lambda i: f"{i},{i * 0.5 + 0.25}\n")
    assert _csv(tmp_path, text, target="y").spec.task == "regression"
    ints = "x,y\n" + _rows(30, lambda i: f"{i},{i}\n")
    assert _csv(tmp_path, ints, target="y", task="regression").spec.task == "regression"


def test_standardisation_uses_training_split_only(tmp_path: Path) -> None:
    b = _csv(tmp_path, "f,label\n" + _rows(50, lambda i: f"{i * i},{i % 2}\n"))
    assert b.spec.mean[0] == pytest.approx(float(b.train.x[:, 0].mean()), rel=1e-5)
    everything = torch.cat([b.train.x, b.val.x, b.test.x])[:, 0]
    assert b.spec.mean[0] != pytest.approx(float(everything.mean()), rel=1e-3)


def test_text_column_dropped_with_warning(tmp_path: Path) -> None:
    b = _csv(tmp_path, "name,a,label\n" + _rows(20, lambda i: f"n{i},{i},{i % 2}\n"))
    assert b.spec.feature_names == ("a",)
    assert any("ignored text column(s) name" in w for w in b.warnings)


def test_stray_text_cell_is_an_error_naming_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"line 4, column 'a': 'oops' is not a number"):
        _csv(tmp_path, "a,label\n1,0\n2,1\noops,0\n" + _rows(10, lambda i: f"{i},{i % 2}\n"))


def test_blank_cells_error_drop_and_mean(tmp_path: Path) -> None:
    text = "a,b,label\n" + _rows(20, lambda i: f"{'' if i == 3 else i},{i},{i % 2}\n")
    with pytest.raises(DataError, match=r"line 5, column 'a' is blank.*blank_cells"):
        _csv(tmp_path, text)
    dropped = _csv(tmp_path, text, blank_cells="drop")
    assert len(dropped.train) + len(dropped.val) + len(dropped.test) == 19
    filled = _csv(tmp_path, text, blank_cells="mean", val_split=0.0, test_split=0.0)
    assert torch.isnan(filled.train.x).sum() == 1 and not math.isnan(filled.spec.mean[0])


def test_blank_target_rows_dropped(tmp_path: Path) -> None:
    b = _csv(tmp_path, "a,label\n" + _rows(20, lambda i: f"{i},{'' if i == 5 else i % 2}\n"))
    assert any("blank 'label'" in w for w in b.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV file is empty"),
        ("   \n\n", "the CSV file is empty"),
        ("a,label\n", "header but no data rows"),
        ("a,b\n1,2\n", "no target column 'label'; columns are: a, b"),
        ("a,labl\n1,2\n", "did you mean 'labl'"),
        ("a,label\n1,0\n2\n", "line 3 has 1 cells but the header has 2"),
        ("a,label\n1,0\n2,0\n", "only one class"),
        ("name,label\nx,0\ny,1\n", "no numeric feature columns"),
    ],
)
def test_bad_csv_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        _csv(tmp_path, text)


def test_folder_path_for_csv_source(tmp_path: Path) -> None:
    cfg = config_from_dict({"data": {"source": "csv", "path": str(tmp_path)}})
    with pytest.raises(DataError, match="is a folder"):
        load_data(cfg)


def test_linear_source() -> None:
    b = load_data(config_from_dict({"data": {"source": "linear"}}))
    assert b.spec.task == "regression" and b.spec.input_shape == (1,)
    x = torch.cat([b.train.x, b.val.x, b.test.x])[:, 0]
    assert len(x) == 100 and float(x.min()) == 0.0 and float(x.max()) == 5.0
    y = torch.cat([b.train.y, b.val.y, b.test.y])
    assert float((y - (2 * x + 1)).std()) == pytest.approx(0.5, abs=0.1)


def test_digits_source_loads_fast_and_stratified() -> None:
    import time

    t = time.perf_counter()
    b = load_data(config_from_dict({}))
    assert time.perf_counter() - t < 1.0
    assert b.train.x.dtype == torch.uint8 and b.spec.input_shape == (1, 28, 28)
    assert (len(b.train), len(b.val), len(b.test)) == (6400, 800, 800)
    counts = torch.bincount(b.val.y, minlength=10).float()
    full = torch.bincount(torch.cat([b.train.y, b.val.y, b.test.y]), minlength=10).float()
    assert torch.allclose(counts / counts.sum(), full / full.sum(), atol=0.01)  # stratified


def test_splits_are_seeded_disjoint_and_complete() -> None:
    y = torch.arange(100) % 4
    a = split_indices(100, 0.2, 0.1, seed=1, labels=y)
    b = split_indices(100, 0.2, 0.1, seed=1, labels=y)
    c = split_indices(100, 0.2, 0.1, seed=2, labels=y)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    assert [len(p) for p in a] == [72, 20, 8]
