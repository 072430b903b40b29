"""The loop's state: `LoopState` (where the run is), `RunningSums` (the meter) and `StepInFlight`.

`LoopState` is exactly the loop's part of a checkpoint: `to_checkpoint` writes it, `from_checkpoint`
reads it back, and the trainer advances it in two places only, `advance_step` and `end_epoch`, each
called where the weights, the records and the checkpoint agree. `RunningSums` keeps the loss and
hit sums of the log window and the epoch on the device, so reading them (a sync) happens once
per log interval. `StepInFlight` is one optimizer step from its first batch to its commit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from studio.config import TrainConfig
from studio.engine.early_stopping import EarlyStopping

EpochMetrics = dict[str, float | None]  # {"loss": ..., "accuracy": ...} of one split


@dataclass
class LoopState:
    """Where the run is; a checkpoint saves exactly this (beside weights, optimizer, RNG and sums)."""

    base_lr: float  # the schedule's base rate (a live change replaces it)
    batch_size: int  # the current batch size (a live change replaces it)
    early: EarlyStopping  # patience's best loss and epochs without improvement
    epoch: int = 0  # completed epochs
    pos: int = 0  # samples of the current epoch already trained on
    step: int = 0  # optimizer steps taken
    elapsed_before: float = 0.0  # seconds trained by earlier processes of this run
    best_loss: float = math.inf  # the watched loss (val, else train) of the best epoch
    best_epoch: int | None = None
    last_metrics: dict[str, float | None] = field(default_factory=dict)  # train/val loss and accuracy

    @classmethod
    def start(cls, train: TrainConfig) -> LoopState:
        """The state of a run before its first step."""
        return cls(base_lr=train.lr, batch_size=train.batch_size, early=EarlyStopping(train.patience, train.min_delta))

    def advance_step(self, pos: int) -> None:
        """One optimizer step joined the weights; `pos` is the epoch's position after its batches."""
        self.step += 1
        self.pos = pos

    def end_epoch(self, epoch: int, train: EpochMetrics, val: EpochMetrics, watched: float) -> bool:
        """The epoch is done: counters, metrics and the best move together. True when it is the best so far."""
        is_best = watched < self.best_loss
        if is_best:
            self.best_loss, self.best_epoch = watched, epoch
        self.epoch, self.pos = epoch, 0
        self.last_metrics = {
            "train_loss": train["loss"],
            "train_accuracy": train["accuracy"],
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
        }
        for split, metrics in (("train", train), ("val", val)):  # regression: RMSE, MAE, R² where present
            self.last_metrics |= {
                f"{split}_{k}": metrics[k] for k in ("rmse", "mae", "r2") if metrics.get(k) is not None
            }
        return is_best

    def to_checkpoint(self, elapsed: float) -> dict[str, Any]:
        """The checkpoint keys of the loop's state; `elapsed` is the run's training time so far."""
        return {
            "epoch": self.epoch,
            "pos": self.pos,
            "step": self.step,
            "base_lr": self.base_lr,
            "batch_size": self.batch_size,
            "elapsed": elapsed,
            "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "best_epoch": self.best_epoch,
            "early_stopping": self.early.state_dict(),
            "last_metrics": self.last_metrics,
        }

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        """Take the loop's state from a checkpoint; a missing key or a bad value raises KeyError or ValueError."""
        self.epoch, self.pos, self.step = int(state["epoch"]), int(state["pos"]), int(state["step"])
        self.base_lr, self.batch_size = float(state["base_lr"]), int(state["batch_size"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        self.best_loss = float(state["best_loss"]) if state.get("best_loss") is not None else math.inf
        self.best_epoch = state.get("best_epoch")
        self.early.load_state_dict(state["early_stopping"])
        self.last_metrics = dict(state.get("last_metrics") or {})

    def is_possible(self) -> bool:
        """False for a position no run reaches (a damaged or forged checkpoint)."""
        return 0 <= self.pos and 0 <= self.step and 0 <= self.epoch


def generator_states(device: torch.device) -> dict[str, Any]:
    """The generators a step draws from: the CPU's (augmentation) and the training device's (dropout)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = (device, torch.cuda.get_rng_state(device))
    return state


def set_generator_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        device, rng = state["cuda"]
        torch.cuda.set_rng_state(rng, device)


@dataclass
class StepInFlight:
    """One optimizer step from its first batch to its commit: what undoing or finishing it needs.

    Until the optimizer applies the update, nothing of the step is in the weights: an interrupt
    undoes it (the generators go back to `rng`, live changes to `base_lr`/`batch_size`). Once
    `updated` is set, the step is finished instead, by the same commit the loop calls.
    """

    epoch: int
    n: int  # samples in the epoch
    pos: int  # position in the epoch after the batches taken so far
    rng: dict[str, Any]  # generator states before the step's first batch
    base_lr: float  # before this step's live changes
    batch_size: int
    loss: torch.Tensor | None = None  # float64 loss sum over the step's batches, on the device
    correct: torch.Tensor | None = None  # hits over the step's batches (classification)
    count: int = 0
    batches: int = 0
    changed: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.0
    log_now: bool = False
    grad_norm: torch.Tensor | None = None
    updated: bool = False  # the optimizer has applied this step's update to the weights

    def add_batch(
        self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor, classify: bool, taken: int | None = None
    ) -> None:
        """Add one batch's loss and hits; `taken` is how far it moves the epoch (a DDP rank's global batch)."""
        bs = int(y.shape[0])
        self.pos += bs if taken is None else taken
        self.count += bs
        self.batches += 1
        total = loss.detach().double() * bs
        self.loss = total if self.loss is None else self.loss + total
        if classify:
            hits = (out.detach().argmax(dim=1) == y).sum()
            self.correct = hits if self.correct is None else self.correct + hits


class RunningSums:
    """The meter: loss, hits and sample counts of the current log window and of the epoch's earlier windows.

    They are loop state like the step counter: a checkpoint holds them, so a run resumed in the
    middle of an epoch reports the same epoch averages and step records as one that never stopped.
    They stay on the device; they are read (a sync) once per log interval, when the window closes
    into the epoch's sums. A non-finite loss shows in the window's sum; the window's per-step sums
    then tell which step it was.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        zero = torch.zeros((), device=device, dtype=torch.float64)
        self.loss, self.correct, self.n = zero.clone(), zero.clone(), 0  # closed windows of this epoch
        self.win_loss, self.win_correct, self.win_n = zero.clone(), zero.clone(), 0
        self._win_steps: list[tuple[int, torch.Tensor]] = []  # (step number, its loss sum)
        self._bad_step: int | None = None  # from a checkpoint saved with a non-finite step in its window

    def add(self, step: StepInFlight, number: int) -> None:
        assert step.loss is not None
        self.win_loss += step.loss
        if step.correct is not None:
            self.win_correct += step.correct
        self.win_n += step.count
        self._win_steps.append((number, step.loss))

    def first_bad_step(self) -> int | None:
        """The first step of the window whose loss was nan or inf (a sync; read it at a log point)."""
        if self._bad_step is not None:
            return self._bad_step
        if not self._win_steps:
            return None
        finite = torch.isfinite(torch.stack([loss for _, loss in self._win_steps])).tolist()
        return next((number for (number, _), ok in zip(self._win_steps, finite, strict=True) if not ok), None)

    def close_window(self) -> None:
        self.loss += self.win_loss
        self.correct += self.win_correct
        self.n += self.win_n
        self.win_loss.zero_()
        self.win_correct.zero_()
        self.win_n = 0
        self._win_steps.clear()
        self._bad_step = None

    def reset_epoch(self) -> None:
        self.close_window()
        self.loss.zero_()
        self.correct.zero_()
        self.n = 0

    def epoch_totals(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The epoch's sums so far, including the open window."""
        return self.loss + self.win_loss, self.correct + self.win_correct, self.n + self.win_n

    def state_dict(self) -> dict[str, Any]:
        # float64 and Python floats convert exactly, so a resumed sum continues bit for bit.
        bad = self.first_bad_step()
        return {
            "loss": float(self.loss),
            "correct": float(self.correct),
            "n": self.n,
            "win_loss": float(self.win_loss),
            "win_correct": float(self.win_correct),
            "win_n": self.win_n,
            "bad_step": -1 if bad is None else bad,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        def f64(value: Any) -> torch.Tensor:
            return torch.tensor(float(value), device=self.device, dtype=torch.float64)

        self.loss, self.correct = f64(state["loss"]), f64(state["correct"])
        self.win_loss, self.win_correct = f64(state["win_loss"]), f64(state["win_correct"])
        self.n, self.win_n = int(state["n"]), int(state["win_n"])
        self._win_steps = []
        self._bad_step = int(state["bad_step"]) if int(state["bad_step"]) >= 0 else None
