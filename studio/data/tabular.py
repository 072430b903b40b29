"""CSV data: numeric feature columns plus a target column.

Rules (documented in the README):
- the first row is the header; the target column is named by `data.target`;
- a text target means classification, a fractional one regression, and whole numbers are classes
  when they have few distinct values for the rows and a quantity when they have many
  (`decide_task` says which and why; `data.task` overrides the guess);
- a feature column with no numeric cell at all (names, ids as text) is dropped with a warning;
  a numeric column with a stray text cell is an error that names the row and column;
- blank feature cells follow `data.blank_cells`: `error` (the default) names the first one,
  `drop` drops those rows, `mean` leaves them as NaN for the model's input layer to fill with
  the training mean (so the exported model does the same);
- an infinite feature cell (`inf`, `-inf`, `1e999`, or beyond float32's +-3.4e38, which the model
  computes in) is no number a model can use: it follows `data.blank_cells` like a blank cell, and
  every message says it is infinite and names its line and column;
- rows with a blank target are dropped with a warning; an infinite regression target is an error
  naming its line.

Line numbers are the file's own (a blank line counts), as a text editor shows them.
"""

from __future__ import annotations

import csv
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from studio.errors import DataError

MISSING = {"", "na", "nan", "null", "none", "?"}


FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Table:
    features: torch.Tensor  # float32 [N, F], NaN where blank
    feature_names: tuple[str, ...]
    target: list[str]  # raw target cells, one per row
    warnings: list[str]
    lines: list[int] = field(default_factory=list)  # each row's line in the file


def _infinite(text: str) -> bool:
    """A number that is infinite once the model reads it as float32 (`inf`, `1e999`, `1e39`)."""
    return abs(float(text)) > FLOAT32_MAX


def _infinite_note(text: str) -> str:
    if math.isinf(float(text)):
        return f"'{text}' is infinite"
    return f"'{text}' is beyond the float32 range (+-3.4e38) the model computes in, so it would be infinite"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Return (header, rows) of a CSV file, with clear errors for empty or ragged files."""
    header, body, _ = read_csv_lines(path)
    return header, body


def read_csv_lines(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows, the line each row starts on) of a CSV file; empty or ragged files are errors."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise DataError(f"{path}: the CSV file is empty")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(text.splitlines(), dialect)
    rows: list[list[str]] = []
    starts: list[int] = []
    first_line = 1
    for r in reader:
        if any(c.strip() for c in r):
            rows.append(r)
            starts.append(first_line)
        first_line = reader.line_num + 1
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DataError(f"{path}: the header names column '{dup}' twice")
    body, lines = rows[1:], starts[1:]
    for line, row in zip(lines, body, strict=True):
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} cells but the header has {len(header)}")
    if not body:
        raise DataError(f"{path}: the CSV file has a header but no data rows")
    return header, body, lines


def load_table(path: Path, target: str, blank_cells: str = "error", feature_names: tuple[str, ...] = ()) -> Table:
    """Read a CSV into numeric features and raw target cells (see the module doc for the rules).

    With `feature_names` (prediction), exactly those columns are read, in that order, and no
    target is needed.
    """
    header, body, lines = read_csv_lines(path)
    warnings: list[str] = []
    target_cells: list[str] = []
    if not feature_names:
        if target not in header:
            near = difflib.get_close_matches(target, header, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; columns are: {', '.join(header)}"
            raise DataError(f"{path}: no target column '{target}'{hint}")
        t = header.index(target)
        blank_target = [r for r in body if r[t].strip().lower() in MISSING]
        if blank_target:
            warnings.append(f"{path}: dropped {len(blank_target)} row(s) with a blank '{target}' cell")
            lines = [n for n, r in zip(lines, body, strict=True) if r[t].strip().lower() not in MISSING]
            body = [r for r in body if r[t].strip().lower() not in MISSING]
        if not body:
            raise DataError(f"{path}: every row has a blank target '{target}'")
        target_cells = [r[t].strip() for r in body]
        columns = [i for i in range(len(header)) if i != t]
    else:
        missing = [f for f in feature_names if f not in header]
        if missing:
            raise DataError(
                f"{path}: missing feature column(s) {', '.join(missing)}; the model needs {', '.join(feature_names)}"
            )
        columns = [header.index(f) for f in feature_names]

    kept: list[int] = []
    dropped: list[str] = []
    for c in columns:
        cells = [r[c].strip() for r in body]
        present = [v for v in cells if v.lower() not in MISSING]
        numeric = [v for v in present if _is_number(v)]
        if present and not numeric and not feature_names:
            dropped.append(header[c])
            continue
        if len(numeric) != len(present):
            row = next(i for i, v in enumerate(cells) if v.lower() not in MISSING and not _is_number(v))
            raise DataError(f"{path}: line {lines[row]}, column '{header[c]}': '{cells[row]}' is not a number")
        kept.append(c)
    if dropped:
        warnings.append(f"{path}: ignored text column(s) {', '.join(dropped)} (features must be numbers)")
    if not kept:
        raise DataError(f"{path}: no numeric feature columns besides the target '{target}'")

    values = [[float(r[c]) if r[c].strip().lower() not in MISSING else math.nan for c in kept] for r in body]
    features = torch.tensor(values, dtype=torch.float64)
    infinite = torch.isinf(features) | (features.abs() > FLOAT32_MAX)
    blank = torch.isnan(features) | infinite
    features = features.to(torch.float32)
    if blank.any():
        first_inf = ""
        if infinite.any():
            row, col = (int(v) for v in torch.nonzero(infinite)[0])
            first_inf = (
                f"line {lines[row]}, column '{header[kept[col]]}': {_infinite_note(body[row][kept[col]].strip())}"
            )
        if blank_cells == "error":
            row, col = (int(v) for v in torch.nonzero(blank)[0])
            if infinite[row, col]:
                raise DataError(
                    f"{path}: {first_inf}; features must be finite numbers (fix the cell, or set "
                    '[data] blank_cells = "drop" or "mean" to handle it as a blank cell)'
                )
            raise DataError(
                f"{path}: line {lines[row]}, column '{header[kept[col]]}' is blank; "
                'set [data] blank_cells = "drop" or "mean" to handle blanks'
            )
        n_inf = int(infinite.sum())
        inf_part = f"{n_inf} infinite cell(s), the first at {first_inf}" if n_inf else ""
        if blank_cells == "drop":
            keep = ~blank.any(dim=1)
            kinds = "blank or infinite cells" if n_inf else "blank cells"
            warnings.append(
                f"{path}: dropped {int((~keep).sum())} row(s) with {kinds}" + (f" ({inf_part})" if n_inf else "")
            )
            features = features[keep]
            kept_rows = keep.tolist()
            target_cells = [v for v, k in zip(target_cells, kept_rows, strict=True) if k] if target_cells else []
            lines = [n for n, k in zip(lines, kept_rows, strict=True) if k]
            if features.shape[0] == 0:
                raise DataError(
                    f"{path}: every row has a blank or infinite cell"
                    if n_inf
                    else f"{path}: every row has a blank cell"
                )
        else:
            features[blank] = math.nan
            n_blank = int(blank.sum()) - n_inf
            if n_blank:
                warnings.append(f"{path}: {n_blank} blank cell(s) will be filled with the training mean")
            if n_inf:
                warnings.append(f"{path}: {inf_part}; they will be filled with the training mean, as blank cells are")
    return Table(features, tuple(header[c] for c in kept), target_cells, warnings, lines)


# Whole-number targets: at most this many distinct values, and at most this share of the rows,
# read as classes (AutoGluon's problem-type inference uses the same kind of ratio). Prices in
# whole dollars or disease-progression scores have many values, each seen a few times: a quantity.
MAX_CLASSES = 100
MAX_CLASS_SHARE_SMALL = 0.1  # up to 1,000 rows
MAX_CLASS_SHARE = 0.05  # more rows


def decide_task(cells: list[str]) -> tuple[str, str]:
    """(task, reason) for a target column, decided as a careful person would from its values.

    Text means classes; any fractional number means a quantity (regression); whole numbers are
    classes when there are few distinct values for the number of rows (two always are), and a
    quantity when there are many. The reason is a sentence fragment the setup and the log show.
    """
    n = len(cells)
    numbers: list[float] = []
    for v in cells:
        try:
            f = float(v)
        except ValueError:
            return "classification", f"the target has text values ('{v}'), so each value is a class"
        if not f.is_integer():
            return "regression", f"the target has fractional values ('{v}'), so it is a quantity"
        numbers.append(f)
    k = len(set(numbers))
    share = MAX_CLASS_SHARE_SMALL if n <= 1000 else MAX_CLASS_SHARE
    counted = f"{k} distinct whole number{'s' if k != 1 else ''} over {n} row{'s' if n != 1 else ''}"
    if k <= 2 or (k <= MAX_CLASSES and k <= share * n):
        return "classification", f"{counted}: few values for the rows, so each value is a class"
    return "regression", f"{counted}: many values for the rows, so it is a quantity"


def guess_task(cells: list[str]) -> str:
    """The task `decide_task` picks (see there)."""
    return decide_task(cells)[0]


def encode_target(
    cells: list[str], task: str, path: Path, target: str, lines: list[int] | None = None
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Return (y, labels): class indices in sorted-label order, or float targets.

    `lines` (each cell's line in the file) lets an error name where the bad cell is.
    """
    if task == "regression":

        def where(i: int) -> str:
            return f"line {lines[i]}, " if lines else ""

        for i, v in enumerate(cells):
            if not _is_number(v):
                raise DataError(f"{path}: {where(i)}target '{target}' has text ('{v}') but the task is regression")
            if _infinite(v):
                raise DataError(
                    f"{path}: {where(i)}target '{target}': {_infinite_note(v)}; a regression target "
                    "must be a finite number"
                )
        return torch.tensor([float(v) for v in cells], dtype=torch.float32), ()
    numeric = all(_is_number(v) for v in cells)
    if numeric:
        # "1" and "1.0" are the same class; sort numerically.
        canon = [str(int(float(v))) if float(v).is_integer() else v for v in cells]
        labels = tuple(sorted(set(canon), key=float))
    else:
        canon = cells
        labels = tuple(sorted(set(cells)))
    if len(labels) < 2:
        raise DataError(f"{path}: target '{target}' has only one class ({labels[0]!r}); need at least two")
    index = {label: i for i, label in enumerate(labels)}
    return torch.tensor([index[v] for v in canon], dtype=torch.int64), labels
