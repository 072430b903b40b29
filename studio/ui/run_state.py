"""The window's run as values: its `RunState`, a run about to start, an opened run, progress, why it cannot start.

Plain data for the `RunController` (run_controller.py, which re-exports these names) and the views
that follow it; nothing here holds a thread or a widget.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from studio.config import Config
from studio.engine.records import StepRecord


class RunState(StrEnum):
    """Where the window's run is; the ended states are summary.json's statuses."""

    READY = "ready"
    TRAINING = "training"
    PAUSED = "paused"
    STOPPING = "stopping"
    FOLLOWING = "following"  # a run another process writes, shown live (File › Follow Run…)
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def is_training(self) -> bool:
        """A run is in the worker thread (the setup is locked)."""
        return self in (RunState.TRAINING, RunState.PAUSED, RunState.STOPPING)

    @classmethod
    def of_status(cls, status: str | None, default: RunState) -> RunState:
        """The state of a run that ended with `status` (summary.json's word)."""
        return cls(status) if status in ENDED_STATUSES else default


STATE_LABELS = {
    RunState.READY: "Ready",
    RunState.TRAINING: "Training",
    RunState.PAUSED: "Paused",
    RunState.STOPPING: "Stopping…",
    RunState.FOLLOWING: "Following",
    RunState.COMPLETED: "Completed",
    RunState.EARLY_STOPPED: "Early stopped",
    RunState.STOPPED: "Stopped",
    RunState.FAILED: "Failed",
}
ENDED_STATUSES = ("completed", "early_stopped", "stopped", "failed")


@dataclass(frozen=True)
class RunRequest:
    """A run about to start: where, with what setup, and whether it continues from its last checkpoint."""

    run_dir: Path
    config: Config
    resume: bool
    nproc: int = 1  # processes under DDP: more than one run as child processes (torchrun)


@dataclass(frozen=True)
class OpenedRun:
    """A finished or stopped run shown from its folder (File › Open Run, a recent run, a drop)."""

    run_dir: Path
    status: str | None
    epochs_done: int
    epochs_total: int
    records: int


@dataclass(frozen=True)
class RunProgress:
    """Where a training run is, from its latest step record (throttled to `PROGRESS_MS`)."""

    step: StepRecord
    epochs: int
    fraction: float  # of the whole run, 0..1
    eta_s: float | None


class CannotStart(Exception):
    """Why Train or Continue Run cannot go: a title and a message for the dialog."""

    def __init__(self, title: str, message: str, *, info: bool = False) -> None:
        super().__init__(message)
        self.title, self.message, self.info = title, message, info
