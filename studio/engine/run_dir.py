"""The run directory: `RunDir` names every file of a run and reads and writes them.

    RUN_DIR/
      config.toml          RunDir.config
      metrics.jsonl        RunDir.metrics       (typed records: records.py)
      summary.json         RunDir.summary
      checkpoints/last.pt  RunDir.checkpoint("last")
      checkpoints/best.pt  RunDir.checkpoint("best")
      model.onnx           RunDir.onnx          (the default export)
      .studio.lock         RunDir.lock_file     (held while one process trains the run)

No other module spells these names: they ask a `RunDir`.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from studio.engine import runs_folder
from studio.engine.locking import RUN_LOCK_NAME, FileLock, run_dir_lock
from studio.engine.records import EpochRecord, Record, StepRecord, record_from_json, record_to_json
from studio.errors import CheckpointError
from studio.files import atomic_write_json, atomic_write_text, remove_stale_temp_files, stale_temp_files, write_error

CHECKPOINTS = ("last", "best")


@dataclass(frozen=True)
class RunDir:
    """A run directory: its files by name, and the operations on them."""

    path: Path

    CONFIG: ClassVar[str] = "config.toml"
    METRICS: ClassVar[str] = "metrics.jsonl"
    SUMMARY: ClassVar[str] = "summary.json"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    ONNX: ClassVar[str] = "model.onnx"
    CONTROL: ClassVar[str] = "control.json"  # live control written by any process (engine/control_file.py)
    LOCK: ClassVar[str] = RUN_LOCK_NAME
    TOP_FILES: ClassVar[tuple[str, ...]] = (CONFIG, METRICS, SUMMARY)  # written atomically beside checkpoints/
    CHECKPOINT_FILES: ClassVar[tuple[str, ...]] = ("last.pt", "best.pt")
    LAST_CHECKPOINT: ClassVar[str] = "checkpoints/last.pt"  # as users read it, in help texts and messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # -- the files -----------------------------------------------------------------------------

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def tensorboard(self) -> Path:
        """Where the live TensorBoard event files go: the run folder itself, beside metrics.jsonl,
        so `tensorboard --logdir runs` shows each run under its folder's name."""
        return self.path

    @property
    def checkpoints(self) -> Path:
        """The folder of the checkpoints."""
        return self.path / self.CHECKPOINTS

    def checkpoint(self, which: str = "last") -> Path:
        if which not in CHECKPOINTS:
            raise CheckpointError(f"--checkpoint must be best or last (got {which!r})")
        return self.checkpoints / f"{which}.pt"

    @property
    def onnx(self) -> Path:
        return self.path / self.ONNX

    @property
    def control(self) -> Path:
        return self.path / self.CONTROL

    @property
    def lock_file(self) -> Path:
        return self.path / self.LOCK

    # -- questions -----------------------------------------------------------------------------

    def is_run(self) -> bool:
        """A run directory is a folder with a config.toml (a run that never trained has nothing else)."""
        return self.config.is_file()

    def has_checkpoint(self, which: str | None = None) -> bool:
        """Whether `which` ("last" or "best") exists; with None, whether either does."""
        return any(self.checkpoint(w).is_file() for w in ((which,) if which else CHECKPOINTS))

    def best_or_last(self, which: str = "best") -> str | None:
        """The checkpoint to use when `which` is asked for: it, else the other one, else None."""
        for candidate in (which, *(c for c in CHECKPOINTS if c != which)):
            if self.checkpoint(candidate).is_file():
                return candidate
        return None

    def check(self) -> RunDir:
        """This directory, if it exists and holds a config.toml; else a `CheckpointError` saying which."""
        if not self.path.is_dir():
            raise CheckpointError(f"run directory '{self.path}' not found")
        if not self.is_run():
            raise CheckpointError(f"'{self.path}' is not a run directory (no {self.CONFIG})")
        return self

    # -- reading and writing -------------------------------------------------------------------

    def read_metrics(self) -> list[Record]:
        """Every record of metrics.jsonl; a torn line (a killed run) or a line that is no record is skipped."""
        try:
            text = self.metrics.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        records = []
        for line in text.splitlines():
            try:
                record = record_from_json(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                continue
            if record is not None:
                records.append(record)
        return records

    def open_metrics(self) -> MetricsFile:
        return MetricsFile(self.metrics)

    def truncate_metrics(self, step: int, epoch: int) -> None:
        """Keep only the records up to a checkpoint, so a resumed run never logs a step twice."""
        if not self.metrics.exists():
            return
        keep = [
            r
            for r in self.read_metrics()
            if (isinstance(r, EpochRecord) and r.split != "test" and r.epoch <= epoch)
            or (isinstance(r, StepRecord) and r.step <= step)
        ]
        atomic_write_text(self.metrics, "".join(_json_line(r) for r in keep))

    def read_summary(self) -> dict[str, Any] | None:
        """summary.json as a dict; None when it is missing, unreadable or not an object."""
        try:
            summary = json.loads(self.summary.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return None
        return summary if isinstance(summary, dict) else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary, _clean(summary))

    def lock(self) -> FileLock:
        """The lock one process holds while it trains or resumes this run."""
        return run_dir_lock(self.path)

    def stale_temp_files(self) -> list[Path]:
        """Temp files our atomic writes left here (a killed run); only the lock's holder knows they are stale."""
        return [
            *stale_temp_files(self.path, self.TOP_FILES),
            *stale_temp_files(self.checkpoints, self.CHECKPOINT_FILES),
        ]

    def remove_stale_temp_files(self) -> list[Path]:
        """Remove `stale_temp_files`; call it only while holding the run's lock."""
        return [
            *remove_stale_temp_files(self.path, self.TOP_FILES),
            *remove_stale_temp_files(self.checkpoints, self.CHECKPOINT_FILES),
        ]


RUN_FILES = RunDir.TOP_FILES


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _json_line(record: Record) -> str:
    return json.dumps(record_to_json(record), allow_nan=False) + "\n"


class MetricsFile:
    """Appends one record a line to metrics.jsonl, flushed at once so readers see it live.

    A full disk or a read-only folder raises `WriteError`. `holds(record)` tells whether the last
    write was that very record, so a caller interrupted right after writing it does not write it twice.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._fh = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise write_error(exc, self.path) from None
        self._last: Record | None = None

    def write(self, record: Record) -> None:
        line = _json_line(record)
        try:
            self._fh.write(line)
            self._fh.flush()
        except OSError as exc:
            raise write_error(exc, self.path) from None
        self._last = record

    def holds(self, record: Record) -> bool:
        return self._last is record

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:
            raise write_error(exc, self.path) from None


# -- the same operations for callers that hold a plain path ---------------------------------------


def read_metrics(run_dir: str | Path | RunDir) -> list[Record]:
    return RunDir(Path(run_dir)).read_metrics()


def read_summary(run_dir: str | Path | RunDir) -> dict[str, Any] | None:
    return RunDir(Path(run_dir)).read_summary()


def check_run_dir(run_dir: str | Path | RunDir) -> Path:
    """A run directory the user named must exist and hold a config.toml."""
    return RunDir(Path(run_dir)).check().path


# -- where runs go --------------------------------------------------------------------------------


def default_runs_dir() -> Path:
    """$STUDIO_RUNS_DIR, else the folder saved from the window, else the user's data folder (runs_folder.py)."""
    return runs_folder.default_runs_dir()


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
