"""Engine events: one flat list of names, and small frozen payloads of plain Python values.

Payloads never carry tensors, so they can cross threads (the GUI's worker) and be logged as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class StepEnd:
    epoch: int
    step: int
    loss: float
    accuracy: float | None
    lr: float
    batch_size: int
    time: float
    epoch_progress: float  # fraction of this epoch's samples seen, 0..1
    samples_per_s: float
    grad_norm: float | None = None
    cuda_memory_allocated: int | None = None
    cuda_memory_reserved: int | None = None
    changed: dict[str, Any] | None = None  # live changes applied at this step: {"lr": [old, new]}

    @property
    def epoch_float(self) -> float:
        """Position in epochs, e.g. 1.5 is halfway through epoch 2 (the plots' x axis)."""
        return self.epoch - 1 + self.epoch_progress


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


@dataclass(frozen=True)
class FitEnd:
    status: str  # completed | early_stopped | stopped | failed
    reason: str | None
    run_dir: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    text: str
    level: str = "info"  # info | warning | error
