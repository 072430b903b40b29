"""CSV cells that are infinite (`inf`, `-inf`, `1e999`, or past float32's range) are named as such, never as blank."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from studio.config import config_from_dict
from studio.data import load_data
from studio.data.tabular import load_table
from studio.errors import DataError


def _csv(tmp_path: Path, text: str, **data: object):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    return load_data(config_from_dict({"data": {"source": "csv", "path": str(path), **data}}))


def _rows(n: int, cell=lambda i: str(i)) -> str:
    return "".join(f"{cell(i)},{i},{i % 2}\n" for i in range(n))


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e999", "Infinity", "1e39"])
def test_an_infinite_feature_cell_is_an_error_that_says_infinite(tmp_path: Path, cell: str) -> None:
    text = "a,b,label\n" + _rows(20, lambda i: cell if i == 3 else str(i))
    with pytest.raises(DataError) as info:
        _csv(tmp_path, text)
    message = str(info.value)
    assert f"line 5, column 'a': '{cell}' is " in message and "blank" not in message.split(";")[0], message
    assert ("float32" in message) == (cell == "1e39")
    assert "infinite" in message and "blank_cells" in message


def test_infinite_cells_follow_blank_cells_and_the_warnings_say_infinite(tmp_path: Path) -> None:
    text = "a,b,label\n" + "".join(
        f"{'' if i == 2 else 'inf' if i == 7 else i},{'1e999' if i == 9 else i},{i % 2}\n" for i in range(20)
    )
    dropped = _csv(tmp_path, text, blank_cells="drop")
    assert len(dropped.train) + len(dropped.val) + len(dropped.test) == 17
    [note] = [w for w in dropped.warnings if "dropped" in w]
    assert "dropped 3 row(s) with blank or infinite cells" in note
    assert "2 infinite cell(s), the first at line 9, column 'a': 'inf' is infinite" in note
    filled = _csv(tmp_path, text, blank_cells="mean", val_split=0.0, test_split=0.0)
    assert torch.isnan(filled.train.x).sum() == 3 and not torch.isinf(filled.train.x).any()
    assert all(math.isfinite(v) for v in filled.spec.mean + filled.spec.std)
    assert any("1 blank cell(s) will be filled" in w for w in filled.warnings), filled.warnings
    assert any(
        "2 infinite cell(s), the first at line 9, column 'a'" in w and "training mean" in w for w in filled.warnings
    ), filled.warnings


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e999", "1e39"])
def test_an_infinite_regression_target_is_an_error_naming_its_line(tmp_path: Path, cell: str) -> None:
    text = "x,y\n" + "".join(f"{i},{cell if i == 6 else i * 0.5 + 0.25}\n" for i in range(20))
    must = "a regression target must be a finite number"
    with pytest.raises(DataError, match=rf"line 8, target 'y': '{cell}' is .*{must}"):
        _csv(tmp_path, text, target="y", task="regression")
    # The guess sees a fractional number: the same file without `task` is regression too.
    with pytest.raises(DataError, match=r"line 8, target 'y'"):
        _csv(tmp_path, text, target="y")


def test_line_numbers_are_the_files_own_past_blank_lines_and_dropped_targets(tmp_path: Path) -> None:
    # line 1 header, 2 data, 3 blank, 4 data with a blank target (dropped), 5 data, 6 the bad target
    text = "x,y\n1,0.5\n\n2,\n3,1.5\n4,inf\n" + "".join(f"{i},{i * 0.5 + 0.25}\n" for i in range(5, 20))
    with pytest.raises(DataError, match=r"line 6, target 'y': 'inf' is infinite"):
        _csv(tmp_path, text, target="y", task="regression")
    from studio.data.tabular import read_csv_lines  # new with line numbers; imported here so main's tests run

    path = tmp_path / "t.csv"
    header, rows, lines = read_csv_lines(path)
    assert header == ["x", "y"] and lines[:4] == [2, 4, 5, 6] and rows[3] == ["4", "inf"]
    text = "a,label\n1,0\n\n2,1\noops,0\n" + "".join(f"{i},{i % 2}\n" for i in range(10))
    with pytest.raises(DataError, match=r"line 5, column 'a': 'oops' is not a number"):
        _csv(tmp_path, text)


def test_prediction_rows_with_an_infinite_cell_warn_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("x\n1\n-inf\n3\n", encoding="utf-8")
    table = load_table(path, "", "mean", feature_names=("x",))
    assert torch.isnan(table.features).tolist() == [[False], [True], [False]]
    assert table.warnings == [
        f"{path}: 1 infinite cell(s), the first at line 3, column 'x': '-inf' is infinite; "
        "they will be filled with the training mean, as blank cells are"
    ]
