"""`RunHistory`: every series of one run, in growing numpy buffers, filled from its typed records.

One shape in: the engine's `StepRecord`s and `EpochRecord`s (records.py), whether they arrive live
from the worker or from a reopened run's metrics.jsonl (`read_metrics`). Views subscribe to
`changed` and `reset` and read the buffers; nothing here draws. The curves' x axis is the position
in epochs (1.5 = halfway through epoch 2), so step and epoch points line up; the Signals tab's x
axis is the global step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.engine.estimates import ExponentialMean
from studio.engine.records import EpochRecord, Record, StepRecord

SMOOTHING_EPOCHS = 0.25  # the smoothed loss averages over about a quarter of an epoch
MIN_ALPHA = 0.01  # however dense the points, a new one always counts a little
SIGNAL_SMOOTHING = 0.8  # gradient norm and throughput: drawn over the raw line, as TensorBoard's slider does
MB = 1024 * 1024
EPOCH_SPLITS = ("train", "val")
REGRESSION_FIGURES = ("rmse", "mae", "r2")  # what an epoch record of a regression run may also carry
DIVERGED_RATIO = 10.0  # a loss this many times the one before a live change has exploded
WATCH_EPOCHS = 1.0  # an explosion later than this after a change is not pinned on it


class GrowingBuffer:
    """A float64 array that doubles its capacity as points arrive; `view()` is the filled part."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def append(self, value: float | None) -> None:
        if self.n == len(self._data):
            grown = np.empty(len(self._data) * 2, dtype=np.float64)
            grown[: self.n] = self._data[: self.n]
            self._data = grown
        self._data[self.n] = math.nan if value is None else value
        self.n += 1

    def view(self) -> np.ndarray:
        return self._data[: self.n]

    def clear(self) -> None:
        self.n = 0

    def __len__(self) -> int:
        return self.n


class StepSignals:
    """The Signals tab's series, one row per step record: `view(name)` is one column so far."""

    NAMES = (
        "step",
        "grad_norm",
        "lr",
        "samples_per_s",
        "cuda_allocated_mb",
        "cuda_reserved_mb",
        "grad_norm_smooth",
        "samples_per_s_smooth",
    )

    def __init__(self, columns: dict[str, GrowingBuffer]) -> None:
        self._columns = columns

    def view(self, name: str) -> np.ndarray:
        return self._columns[name].view()

    @property
    def n(self) -> int:
        return len(self._columns["step"])


@dataclass(frozen=True)
class ChangeMarker:
    """A live change at a position on the x axis, labelled like "lr → 0.01"; `detail` is the tooltip."""

    x: float
    label: str
    key: str = ""
    detail: str = ""


def change_label(key: str, new: Any) -> str:
    name = {"lr": "lr", "batch_size": "batch"}.get(key, key)
    value = f"{new:g}" if isinstance(new, float) else str(new)
    return f"{name} → {value}"


def change_detail(key: str, old: Any, new: Any, x: float, step: int) -> str:
    name = {"lr": "learning rate", "batch_size": "batch size"}.get(key, key)
    fmt = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    return f"{name} {fmt(old)} → {fmt(new)} at epoch {x:.2f} (step {step:,})"


@dataclass
class _Watch:
    """The loss just before a live change, to tell whether the change made it explode."""

    marker: int
    label: str
    before: float
    x: float
    step: int


class RunHistory(QObject):
    """The step and epoch series of one run; emits `changed` after each batch of new records."""

    changed = Signal()
    reset = Signal()
    # (marker index, message): the loss exploded after a live change (only for records arriving live).
    diverged = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # The curves (x in epochs).
        self.step_x = GrowingBuffer()
        self.step_loss = GrowingBuffer()
        self.step_smooth = GrowingBuffer()
        self.step_lr = GrowingBuffer()
        self.step_acc = GrowingBuffer()
        # The Signals tab (x in steps).
        self._signal_columns = {name: GrowingBuffer(256) for name in StepSignals.NAMES}
        self.signals = StepSignals(self._signal_columns)
        self.cuda_seen = False
        self.epoch_x: dict[str, GrowingBuffer] = {}
        self.epoch_loss: dict[str, GrowingBuffer] = {}
        self.epoch_acc: dict[str, GrowingBuffer] = {}
        self.epoch_figures: dict[str, dict[str, GrowingBuffer]] = {}  # split -> rmse/mae/r2
        self.markers: list[ChangeMarker] = []
        self.alarms: dict[int, str] = {}  # marker index -> what went wrong after it
        self._watch: _Watch | None = None
        self._live = True
        self.epochs_total = 0
        self.last_step = 0
        self._loss_mean = ExponentialMean()
        self._grad_mean = ExponentialMean(SIGNAL_SMOOTHING)
        self._speed_mean = ExponentialMean(SIGNAL_SMOOTHING)
        self._last_x = 0.0
        self.clear()

    def clear(self) -> None:
        for buf in (
            self.step_x,
            self.step_loss,
            self.step_smooth,
            self.step_lr,
            self.step_acc,
            *self._signal_columns.values(),
        ):
            buf.clear()
        self.epoch_x = {s: GrowingBuffer(64) for s in EPOCH_SPLITS}
        self.epoch_loss = {s: GrowingBuffer(64) for s in EPOCH_SPLITS}
        self.epoch_acc = {s: GrowingBuffer(64) for s in EPOCH_SPLITS}
        self.epoch_figures = {s: {k: GrowingBuffer(64) for k in REGRESSION_FIGURES} for s in EPOCH_SPLITS}
        self.markers = []
        self.alarms = {}
        self._watch = None
        self.last_step = 0
        self.cuda_seen = False
        for mean in (self._loss_mean, self._grad_mean, self._speed_mean):
            mean.reset()
        self._last_x = 0.0
        self.reset.emit()

    # -- adding records --------------------------------------------------------------------------

    def add_records(self, records: Iterable[Record]) -> None:
        """Append records as they come (the worker's batches of steps, an epoch's records).

        A resumed run reloads metrics.jsonl while the trainer may already be appending to it, so a
        step can arrive both from the file and live; steps only grow, so older ones are skipped.
        """
        for r in records:
            if isinstance(r, StepRecord):
                if r.step > self.last_step:
                    self._add_step(r, r.epoch_float)
            elif isinstance(r, EpochRecord):
                self._add_epoch(r)
        self.changed.emit()

    def load_records(self, records: Sequence[Record], epochs_total: int = 0) -> None:
        """Rebuild the history from a run's records (File > Open Run, a resumed run)."""
        self.clear()
        self._live = False  # an old run's explosion is marked on its plot, not announced
        self.epochs_total = epochs_total
        epoch_ends = [r for r in records if isinstance(r, EpochRecord)]
        where = _step_positions(epoch_ends)
        for r in records:
            if isinstance(r, StepRecord) and r.step > self.last_step:
                self._add_step(r, r.epoch_float if r.epoch_progress is not None else where(r))
        for r in epoch_ends:
            self._add_epoch(r)
        self._live = True
        self.changed.emit()

    def _add_step(self, r: StepRecord, x: float) -> None:
        before = self.smoothed_loss()
        self.step_x.append(x)
        self.step_loss.append(r.loss)
        last_x, self._last_x = self._last_x, x
        if math.isfinite(r.loss):
            # An exponential average over a span of epochs, not of points, so runs logged densely and
            # runs with two steps an epoch look equally smooth.
            alpha = max(1.0 - math.exp(-max(x - last_x, 0.0) / SMOOTHING_EPOCHS), MIN_ALPHA)
            self.step_smooth.append(self._loss_mean.add(r.loss, alpha))
        else:
            self.step_smooth.append(None)
        self.step_lr.append(r.lr)
        self.step_acc.append(r.accuracy)
        self.last_step = r.step
        self._check_divergence(r.loss, x)
        for key, (old, new) in (r.changed or {}).items():
            label = change_label(key, new)
            self.markers.append(ChangeMarker(x, label, key, change_detail(key, old, new, x, r.step)))
            if before is not None:
                self._watch = _Watch(len(self.markers) - 1, label, before, x, r.step)
        c = self._signal_columns
        c["step"].append(r.step)
        c["grad_norm"].append(r.grad_norm)
        c["lr"].append(r.lr)
        c["samples_per_s"].append(r.samples_per_s)
        for name, value, mean in (
            ("grad_norm_smooth", r.grad_norm, self._grad_mean),
            ("samples_per_s_smooth", r.samples_per_s, self._speed_mean),
        ):
            # A step without the figure keeps the line at its last mean rather than breaking it.
            c[name].append(mean.add(value) if value is not None and math.isfinite(value) else mean.value)
        alloc, reserved = r.cuda_memory_allocated, r.cuda_memory_reserved
        self.cuda_seen = self.cuda_seen or alloc is not None
        c["cuda_allocated_mb"].append(None if alloc is None else alloc / MB)
        c["cuda_reserved_mb"].append(None if reserved is None else reserved / MB)

    def _check_divergence(self, loss: float, x: float) -> None:
        """Flag the last live change when the loss after it exploded (non-finite, or 10x what it was)."""
        w = self._watch
        if w is None:
            return
        if x - w.x > WATCH_EPOCHS:
            self._watch = None
            return
        if math.isfinite(loss) and loss <= DIVERGED_RATIO * max(w.before, 1e-12):
            return
        self._watch = None
        msg = (
            f"the loss went from {w.before:.3g} to {loss:.3g} after {w.label} (step {w.step:,}): "
            "undo that change (a lower learning rate, usually)"
        )
        self.alarms[w.marker] = msg
        if self._live:
            self.diverged.emit(w.marker, msg)

    def _add_epoch(self, r: EpochRecord) -> None:
        if r.split not in self.epoch_x:
            return
        xs = self.epoch_x[r.split].view()
        if len(xs) and xs[-1] >= r.epoch:  # a resumed run re-reports an epoch: keep the latest
            return
        self.epoch_x[r.split].append(float(r.epoch))
        self.epoch_loss[r.split].append(r.loss)
        self.epoch_acc[r.split].append(r.accuracy)
        for k in REGRESSION_FIGURES:  # records from before these fields have none: NaN, shown as "–"
            self.epoch_figures[r.split][k].append(getattr(r, k, None))

    # -- reading ---------------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return len(self.step_x) == 0 and len(self.epoch_x["train"]) == 0

    def smoothed_loss(self) -> float | None:
        smooth = self.step_smooth.view()
        return _finite(smooth[-1]) if len(smooth) else None

    def latest_epoch_metrics(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for split in EPOCH_SPLITS:
            n = len(self.epoch_loss[split])
            out[f"{split}_loss"] = _finite(self.epoch_loss[split].view()[-1]) if n else None
            out[f"{split}_accuracy"] = _finite(self.epoch_acc[split].view()[-1]) if n else None
            for k in REGRESSION_FIGURES:
                out[f"{split}_{k}"] = _finite(self.epoch_figures[split][k].view()[-1]) if n else None
        return out

    def best_val(self) -> tuple[int, float] | None:
        """(epoch, val loss) of the lowest val loss so far."""
        losses = self.epoch_loss["val"].view()
        if not len(losses) or np.all(np.isnan(losses)):
            return None
        i = int(np.nanargmin(losses))
        return int(self.epoch_x["val"].view()[i]), float(losses[i])

    def val_accuracy_at(self, epoch: int) -> float | None:
        for x, acc in zip(self.epoch_x["val"].view(), self.epoch_acc["val"].view(), strict=True):
            if int(x) == epoch:
                return _finite(acc)
        return None


def _step_positions(epoch_ends: list[EpochRecord]) -> Callable[[StepRecord], float]:
    """Where a step record of an older file (no `epoch_progress`) sits: from its epoch's first and last steps."""
    end_step = {r.epoch: r.step for r in epoch_ends if r.split == "train"}
    bounds: dict[int, tuple[int, int]] = {}
    prev_end = 0
    for ep in sorted(end_step):
        bounds[ep] = (prev_end, end_step[ep])
        prev_end = end_step[ep]

    def where(r: StepRecord) -> float:
        start, end = bounds.get(r.epoch, (prev_end, 0))
        if end <= start:  # the unfinished epoch: estimate from the previous epoch's length
            per = (end_step[r.epoch - 1] - bounds[r.epoch - 1][0]) if r.epoch - 1 in bounds else 0
            end = start + per if per > 0 else max(r.step, start + 1)
        return r.epoch - 1 + min(max((r.step - start) / max(end - start, 1), 0.0), 1.0)

    return where


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
