"""The run directory: layout, metrics.jsonl reading and writing, summary.json."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from studio.engine.files import atomic_write_json, atomic_write_text, write_error
from studio.errors import CheckpointError

RUN_FILES = ("config.toml", "metrics.jsonl", "summary.json")  # written atomically beside checkpoints/


def default_runs_dir() -> Path:
    """$STUDIO_RUNS_DIR, else the user's data folder (XDG on Linux, the platform's elsewhere)."""
    env = os.environ.get("STUDIO_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "studio" / "runs"


def new_run_dir(base: Path, source: str, arch: str) -> Path:
    """A fresh, unique folder name: date-time, data source and architecture."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stamp}-{source}-{arch}")
    path = Path(base) / name
    i = 2
    while path.exists():
        path = Path(base) / f"{name}-{i}"
        i += 1
    return path


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class MetricsFile:
    """Appends one JSON object a line to metrics.jsonl, flushed at once so readers see it live.

    A full disk or a read-only folder raises `WriteError`. `holds(record)` tells whether the last
    write was that very record, so a caller interrupted right after writing it does not write it twice.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise write_error(exc, self.path) from None
        self._last: dict[str, Any] | None = None

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(_clean(record), allow_nan=False) + "\n"
        try:
            self._fh.write(line)
            self._fh.flush()
        except OSError as exc:
            raise write_error(exc, self.path) from None
        self._last = record

    def holds(self, record: dict[str, Any]) -> bool:
        return self._last is record

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:
            raise write_error(exc, self.path) from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of a run's metrics.jsonl; a torn last line (a killed run) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def truncate_metrics(run_dir: Path, step: int, epoch: int) -> None:
    """Keep only the records up to a checkpoint, so a resumed run never logs a step twice."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return
    keep = [r for r in read_metrics(run_dir)
            if (r.get("kind") == "epoch" and r.get("split") != "test" and r.get("epoch", 0) <= epoch)
            or (r.get("kind") == "step" and r.get("step", 0) <= step)]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(Path(run_dir) / "summary.json", _clean(summary))


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def check_run_dir(run_dir: Path) -> Path:
    """A run directory the user named must exist and hold a config.toml."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory '{run_dir}' not found")
    if not (run_dir / "config.toml").is_file():
        raise CheckpointError(f"'{run_dir}' is not a run directory (no config.toml)")
    return run_dir
