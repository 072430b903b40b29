"""`studio export`, `studio predict` and `studio eval`'s output: thin layers over the engine and export.

They take plain arguments; parsing the command line stays in `studio.cli`. `studio eval` and
`studio predict` print a readable table (rich) on a terminal, and the contract's JSON with `--json`
or whenever stdout is not a terminal (a pipe, a file, a script).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import StudioError
from studio.export.onnx_export import ExportFailed

if TYPE_CHECKING:
    from rich.console import JustifyMethod


def _progress(message: str) -> None:
    print(f"{message}...", file=sys.stderr, flush=True)


def run_export(
    run_dir: str | Path,
    output: str | Path | None = None,
    *,
    checkpoint: str = "best",
    opset: int | None = None,
    quantize: str | None = None,
) -> int:
    """Export, prove, report on stdout; 1 (with one `error:` line) when the file fails the proof."""
    from studio.export.run_export import export_run

    try:
        report = export_run(
            Path(run_dir), output, checkpoint=checkpoint, opset=opset, quantize=quantize, progress=_progress
        )
    except ExportFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.format())
    return 0


def wants_json(as_json: bool) -> bool:
    """JSON when asked for, and whenever stdout is not a terminal (scripts read the contract's JSON)."""
    return as_json or not sys.stdout.isatty()


def run_predict(model: str | Path, files: Sequence[str], *, top: int = 3, as_json: bool = False) -> int:
    """One JSON line per image or CSV row on stdout (a table on a terminal); warnings go to stderr."""
    from studio.export.predict import open_predictor, predict_files

    if top < 1:
        raise StudioError(f"--top must be >= 1 (got {top})")
    predictor = open_predictor(Path(model))
    results = predict_files(predictor, list(files), top=top, warn=lambda w: print(f"warning: {w}", file=sys.stderr))
    if wants_json(as_json):
        for result in results:
            print(json.dumps(result), flush=True)
        return 0
    print_table(predictions_table(list(results)))
    return 0


def print_table(table: Any) -> None:
    from rich.console import Console

    Console(file=sys.stdout).print(table)


def _fig(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}" if abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-3) else f"{value:.{digits}f}"
        )
    return str(value)


def predictions_table(rows: list[dict[str, Any]]) -> Any:
    """A rich table of `predict_files` results: file (and row), then the label and its top classes or the value."""
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    table.add_column("file", overflow="fold")  # a long path wraps, never loses its end
    has_row = any("row" in r for r in rows)
    if has_row:
        table.add_column("row", justify="right")
    regression = any("prediction" in r for r in rows)
    if regression:
        table.add_column("prediction", justify="right")
    else:
        table.add_column("label")
        table.add_column("probability", justify="right")
        table.add_column("top")
    for r in rows:
        cells = [r["file"]] + ([str(r.get("row", ""))] if has_row else [])
        if regression:
            cells.append(_fig(r.get("prediction")))
        else:
            top = ", ".join(f"{label} {p:.1%}" for label, p in r.get("top", []))
            cells += [str(r.get("label")), f"{r.get('probability', 0.0):.1%}", top]
        table.add_row(*cells)
    return table


def eval_table(report: dict[str, Any]) -> Any:
    """`studio eval`'s report as rich tables: the headline figures, a linear model's parameters,
    and for classification the per-class figures (and the confusion matrix up to 12 classes)."""
    from rich.console import Group
    from rich.table import Table

    head = Table(box=None, show_header=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("run", str(report.get("run_dir")))
    head.add_row("checkpoint", f"{report.get('checkpoint')} (epoch {report.get('epoch')})")
    split = str(report.get("split"))
    head.add_row("split", f"{split}, {report.get('n')} samples")
    if report.get("note"):
        head.add_row("note", str(report["note"]))
    head.add_row("loss", _fig(report.get("loss")))
    if report.get("task") == "classification":
        head.add_row("accuracy", _fig(report.get("accuracy")))
        per_class = report.get("per_class") or {}
        if per_class:
            f1 = [c["f1"] for c in per_class.values()]
            head.add_row("macro F1", _fig(sum(f1) / len(f1)))
    else:
        head.add_row("RMSE", _fig(report.get("rmse")))
        head.add_row("MAE", _fig(report.get("mae")))
        head.add_row("R²", _fig(report.get("r2")))
    parts: list[Any] = [head]
    params = report.get("parameters")
    if params:
        parts.append(_parameters_table(params))
    if report.get("task") == "classification" and report.get("per_class"):
        classes = Table(title="per class", header_style="bold", box=None)
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("class", "left"),
            ("precision", "right"),
            ("recall", "right"),
            ("F1", "right"),
            ("support", "right"),
        )
        for name, justify in columns:
            classes.add_column(name, justify=justify)
        for label, c in report["per_class"].items():
            classes.add_row(label, _fig(c["precision"]), _fig(c["recall"]), _fig(c["f1"]), str(c["support"]))
        parts.append(classes)
        labels, cm = report.get("labels") or [], report.get("confusion_matrix") or []
        if 0 < len(labels) <= 12:
            matrix = Table(title="confusion matrix", header_style="bold", box=None)
            matrix.add_column("true \\ predicted")
            for label in labels:
                matrix.add_column(str(label), justify="right")
            for label, row in zip(labels, cm, strict=False):
                matrix.add_row(str(label), *(str(v) for v in row))
            parts.append(matrix)
    return Group(*parts)


def _parameters_table(params: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(header_style="bold", box=None)  # in the data's units
    weights, intercept = params.get("weights") or {}, params.get("intercept")
    if isinstance(intercept, dict):  # classification: one row of weights per class
        features = list(next(iter(weights.values()), {}))
        table.add_column("class")
        for name in features:
            table.add_column(name, justify="right")
        table.add_column("intercept", justify="right")
        for label, w in weights.items():
            table.add_row(str(label), *(_fig(w[f]) for f in features), _fig(intercept.get(label)))
        return table
    table.add_column("learned parameter")
    table.add_column("value", justify="right")
    if "slope" in params:
        table.add_row(f"slope ({next(iter(weights))})", _fig(params["slope"]))
    else:
        for name, w in weights.items():
            table.add_row(f"weight {name}", _fig(w))
    table.add_row("intercept", _fig(intercept))
    return table
