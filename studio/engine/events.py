"""Engine events: one flat list of names, and small frozen payloads of plain Python values.

Payloads never carry tensors, so they can cross threads (the GUI's worker) and be logged as JSON.
A callback implements `on_<name>(trainer, payload)` for the names it needs (see callbacks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from studio.engine.records import EpochRecord, StepRecord

EVENTS = ("fit_start", "epoch_start", "step_end", "validation_end", "epoch_end", "fit_end", "message")


@dataclass(frozen=True)
class FitStart:
    run_dir: str
    epochs: int
    start_epoch: int  # 1-based epoch the loop starts in (> 1 when resuming)
    device: str
    device_name: str
    task: str
    labels: tuple[str, ...]
    param_count: int
    model_summary: str
    num_train: int
    num_val: int
    num_test: int
    resumed: bool
    step: int  # global optimizer step at start (0 unless resuming)


@dataclass(frozen=True)
class EpochStart:
    epoch: int
    epochs: int


# The step_end payload is the step record itself (see records.py): one shape, live and on disk.
StepEnd = StepRecord


@dataclass(frozen=True)
class ValidationEnd:
    epoch: int
    split: str
    loss: float
    accuracy: float | None


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    step: int
    time: float
    metrics: dict[str, float | None]  # train_loss, train_accuracy, val_loss, val_accuracy
    best_epoch: int | None
    is_best: bool
    eta_s: float | None = None
    epoch_s: float | None = None  # the epoch's wall time, training and validation
    # The train and val records this epoch wrote to metrics.jsonl: a view reads the same type live
    # as `read_metrics` gives it for a reopened run.
    records: tuple[EpochRecord, ...] = ()


class RunStatus(StrEnum):
    """How a run ended; the values are summary.json's "status" strings (CONTRACT.md)."""

    COMPLETED = "completed"  # every epoch trained
    EARLY_STOPPED = "early_stopped"  # a stop rule (patience, target loss) ended it
    STOPPED = "stopped"  # the user stopped it (Stop, Ctrl-C), or a tool on the loop did (the LR finder)
    FAILED = "failed"  # an error ended it


@dataclass(frozen=True)
class FitEnd:
    status: RunStatus
    reason: str | None
    run_dir: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    text: str
    level: str = "info"  # info | warning | error
