"""The runs under a runs directory, for the Runs view: list, read curves, delete, export as CSV.

Everything comes from the files a run leaves (config.toml, summary.json, metrics.jsonl), so runs
trained headless, in another window, or by an older studio all show up.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.engine.records import EpochRecord, Record
from studio.engine.run_dir import RunDir
from studio.errors import CheckpointError, StudioError
from studio.files import atomic_write_text

RUNNING_WINDOW_S = 90.0  # a run without a fresh summary whose metrics changed this recently is running
CSV_FIRST = (
    "kind",
    "split",
    "epoch",
    "step",
    "loss",
    "accuracy",
    "lr",
    "batch_size",
    "time",
    "samples_per_s",
    "grad_norm",
    "cuda_memory_allocated",
    "cuda_memory_reserved",
)


@dataclass(frozen=True)
class RunInfo:
    """One row of the runs table."""

    path: Path
    name: str
    date: datetime | None
    data: str  # e.g. "digits" or "folder: flowers"
    model: str  # e.g. "mlp [128]"
    status: str  # completed | early_stopped | stopped | failed | running | interrupted | new
    best_val_accuracy: float | None
    best_val_loss: float | None
    test_accuracy: float | None
    epochs_completed: int
    epochs_total: int | None
    task: str | None


def _stamp(name: str) -> datetime | None:
    m = re.match(r"(\d{8}-\d{6})", name)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def _describe_data(data: dict[str, Any]) -> str:
    source = str(data.get("source", "?"))
    path = str(data.get("path") or "")
    return f"{source}: {Path(path).name}" if path and source in ("folder", "csv") else source


def _describe_model(model: dict[str, Any]) -> str:
    arch = str(model.get("arch", "?"))
    if arch == "mlp" and isinstance(model.get("hidden"), list):
        return f"mlp {model['hidden']}"
    return arch


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """A TOML table (or JSON object) of a file read from disk; {} when it is missing or not a table."""
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def read_run(run_dir: Path) -> RunInfo | None:
    """The table row for one run directory, or None when the folder is not a run."""
    files = RunDir(run_dir)
    run_dir, config_path = files.path, files.config
    if not config_path.is_file():
        return None
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        raw = {}
    data, model, train = _table(raw, "data"), _table(raw, "model"), _table(raw, "train")
    records = files.read_metrics()
    summary = files.read_summary() or {}
    epoch_records = [r for r in records if isinstance(r, EpochRecord)]
    val = [r for r in epoch_records if r.split == "val"]
    accs = [r.accuracy for r in val if r.accuracy is not None]
    losses = [r.loss for r in val if r.loss is not None]
    epochs_seen = max((r.epoch for r in epoch_records if r.split == "train"), default=0)
    metrics = _table(summary, "metrics")
    status = _status(files, summary, records)
    total = train.get("epochs") if isinstance(train.get("epochs"), int) else None
    date = _stamp(run_dir.name)
    if date is None:
        first = _mtime(config_path)
        date = datetime.fromtimestamp(first) if first is not None else None
    task = None
    if epoch_records:  # classification records carry an accuracy; regression ones carry null
        has_acc = any(r.accuracy is not None for r in epoch_records)
        task = "classification" if has_acc else "regression"
    return RunInfo(
        path=run_dir,
        name=run_dir.name,
        date=date,
        data=_describe_data(data),
        model=_describe_model(model),
        status=status,
        best_val_accuracy=max(accs) if accs else metrics.get("val_accuracy"),
        best_val_loss=min(losses) if losses else metrics.get("val_loss"),
        test_accuracy=metrics.get("test_accuracy"),
        epochs_completed=epochs_seen if status == "running" else int(summary.get("epochs_completed") or epochs_seen),
        epochs_total=total,
        task=task,
    )


def _status(files: RunDir, summary: dict[str, Any], records: list[Record]) -> str:
    metrics_t = _mtime(files.metrics)
    summary_t = _mtime(files.summary)
    fresh = metrics_t is not None and time.time() - metrics_t < RUNNING_WINDOW_S
    # A resumed run keeps its old summary until it ends, so a newer metrics file means it is going.
    if metrics_t is not None and fresh and (summary_t is None or metrics_t > summary_t + 1.0):
        return "running"
    if summary.get("status"):
        return str(summary["status"])
    return "interrupted" if records else "new"


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run directly under `runs_dir`, newest first; a missing folder has no runs."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [info for child in runs_dir.iterdir() if child.is_dir() for info in [read_run(child)] if info]
    return sorted(runs, key=lambda r: (r.date or datetime.min, r.name), reverse=True)


def delete_run(run_dir: Path, runs_dir: Path | None = None) -> None:
    """Delete a run folder; refuses anything that is not a run (no config.toml) or lies outside `runs_dir`."""
    run_dir = Path(run_dir)
    if not RunDir(run_dir).is_run():
        raise CheckpointError(f"'{run_dir}' is not a run directory (no {RunDir.CONFIG}); not deleting it")
    if runs_dir is not None:
        inside = run_dir.resolve().parent == Path(runs_dir).resolve()
        if not inside:
            raise StudioError(f"'{run_dir}' is not directly under the runs folder '{runs_dir}'; not deleting it")
    shutil.rmtree(run_dir)


def epoch_curves(run_dir: Path) -> dict[str, dict[str, list[float | None]]]:
    """Per-split epoch series `{"train": {"epoch": [...], "loss": [...], "accuracy": [...]}, "val": ...}`."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for r in RunDir(run_dir).read_metrics():
        if isinstance(r, EpochRecord) and r.split in ("train", "val"):
            series = out.setdefault(r.split, {"epoch": [], "loss": [], "accuracy": []})
            series["epoch"].append(r.epoch)
            series["loss"].append(r.loss)
            series["accuracy"].append(r.accuracy)
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else value


def metrics_csv(run_dirs: Iterable[Path]) -> str:
    """The metrics.jsonl records of one or more runs as CSV text, with a `run` column first."""
    rows: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        files = RunDir(run_dir)
        if not files.metrics.is_file():
            raise CheckpointError(f"'{files}' has no {RunDir.METRICS} to export")
        rows += [{"run": files.name, **r} for r in files.read_metrics()]
    extra = sorted({k for r in rows for k in r} - {"run", *CSV_FIRST})
    columns = ["run", *CSV_FIRST, *extra]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: _cell(r.get(c)) for c in columns})
    return buf.getvalue()


def export_metrics_csv(run_dirs: Iterable[Path], path: Path) -> int:
    """Write the runs' metrics as one CSV file (atomically); returns the number of data rows."""
    text = metrics_csv(run_dirs)
    atomic_write_text(Path(path), text)
    return text.count("\n") - 1
