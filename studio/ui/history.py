"""`RunHistory`: the curves' data, in growing numpy buffers, filled live or from a run's metrics.jsonl.

Views subscribe to `changed` and read the buffers; nothing here draws. The x axis of everything
is the position in epochs (1.5 = halfway through epoch 2), so step and epoch points line up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from PySide6.QtCore import QObject, Signal

SMOOTHING_EPOCHS = 0.25  # the smoothed loss averages over about a quarter of an epoch
MIN_ALPHA = 0.01  # however dense the points, a new one always counts a little


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


@dataclass(frozen=True)
class ChangeMarker:
    """A live change at a position on the x axis, labelled like "lr → 0.01"."""

    x: float
    label: str


def change_label(key: str, new: Any) -> str:
    name = {"lr": "lr", "batch_size": "batch"}.get(key, key)
    value = f"{new:g}" if isinstance(new, float) else str(new)
    return f"{name} → {value}"


class RunHistory(QObject):
    """The step and epoch series of one run; emits `changed` after each batch of new points."""

    changed = Signal()
    reset = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.step_x = GrowingBuffer()
        self.step_loss = GrowingBuffer()
        self.step_smooth = GrowingBuffer()
        self.step_lr = GrowingBuffer()
        self.step_acc = GrowingBuffer()
        self.epoch_x: dict[str, GrowingBuffer] = {}
        self.epoch_loss: dict[str, GrowingBuffer] = {}
        self.epoch_acc: dict[str, GrowingBuffer] = {}
        self.markers: list[ChangeMarker] = []
        self.epochs_total = 0
        self.last_step = 0
        self._ema = 0.0
        self._ema_weight = 0.0
        self._last_x = 0.0
        self.clear()

    def clear(self) -> None:
        for buf in (self.step_x, self.step_loss, self.step_smooth, self.step_lr, self.step_acc):
            buf.clear()
        self.epoch_x = {s: GrowingBuffer(64) for s in ("train", "val")}
        self.epoch_loss = {s: GrowingBuffer(64) for s in ("train", "val")}
        self.epoch_acc = {s: GrowingBuffer(64) for s in ("train", "val")}
        self.markers = []
        self.last_step = 0
        self._ema, self._ema_weight, self._last_x = 0.0, 0.0, 0.0
        self.reset.emit()

    # -- adding points ---------------------------------------------------------------------------

    def _add_step(self, x: float, step: int, loss: float | None, accuracy: float | None, lr: float | None,
                  changed: dict[str, Any] | None) -> None:
        self.step_x.append(x)
        self.step_loss.append(loss)
        last_x, self._last_x = self._last_x, x
        if loss is not None and math.isfinite(loss):
            # An exponential average over a span of epochs, not of points, so runs logged densely and
            # runs with two steps an epoch look equally smooth; debiased by the weight so far.
            dx = max(x - last_x, 0.0)
            alpha = min(max(1.0 - math.exp(-dx / SMOOTHING_EPOCHS), MIN_ALPHA), 1.0)
            self._ema = (1 - alpha) * self._ema + alpha * loss
            self._ema_weight = (1 - alpha) * self._ema_weight + alpha
            self.step_smooth.append(self._ema / self._ema_weight)
        else:
            self.step_smooth.append(None)
        self.step_lr.append(lr)
        self.step_acc.append(accuracy)
        self.last_step = step
        for key, (_old, new) in (changed or {}).items():
            self.markers.append(ChangeMarker(x, change_label(key, new)))

    def _add_epoch(self, split: str, epoch: int, loss: float | None, accuracy: float | None) -> None:
        if split not in self.epoch_x:
            return
        xs = self.epoch_x[split].view()
        if len(xs) and xs[-1] >= epoch:  # a resumed run re-reports an epoch: keep the latest
            return
        self.epoch_x[split].append(float(epoch))
        self.epoch_loss[split].append(loss)
        self.epoch_acc[split].append(accuracy)

    def add_steps(self, events: Iterable[Any]) -> None:
        """Append engine `StepEnd` events (the worker's batches).

        A resumed run reloads metrics.jsonl while the trainer may already be appending to it, so a
        step can arrive both from the file and as an event; steps only grow, so older ones are skipped.
        """
        for e in events:
            if e.step <= self.last_step:
                continue
            self._add_step(e.epoch_float, e.step, e.loss, e.accuracy, e.lr, e.changed)
        self.changed.emit()

    def add_epoch(self, event: Any) -> None:
        """Append an engine `EpochEnd` (train and val metrics of one epoch)."""
        m = event.metrics
        self._add_epoch("train", event.epoch, m.get("train_loss"), m.get("train_accuracy"))
        if m.get("val_loss") is not None:
            self._add_epoch("val", event.epoch, m.get("val_loss"), m.get("val_accuracy"))
        self.changed.emit()

    def load_records(self, records: list[dict[str, Any]], epochs_total: int = 0) -> None:
        """Rebuild the history from metrics.jsonl records (File > Open Run)."""
        self.clear()
        self.epochs_total = epochs_total
        # A step record's position within its epoch comes from the epoch's first and last steps.
        step_records = [r for r in records if r.get("kind") == "step"]
        epoch_end_step: dict[int, int] = {}
        for r in records:
            if r.get("kind") == "epoch" and r.get("split") == "train":
                epoch_end_step[int(r["epoch"])] = int(r.get("step", 0))
        prev_end = 0
        bounds: dict[int, tuple[int, int]] = {}
        for ep in sorted(epoch_end_step):
            bounds[ep] = (prev_end, epoch_end_step[ep])
            prev_end = epoch_end_step[ep]
        for r in step_records:
            ep, step = int(r.get("epoch", 1)), int(r.get("step", 0))
            start, end = bounds.get(ep, (prev_end, 0))
            if end <= start:  # the unfinished epoch: estimate from the previous epoch's length
                per = (epoch_end_step[ep - 1] - bounds[ep - 1][0]) if ep - 1 in bounds else 0
                end = start + per if per > 0 else max(step, start + 1)
            frac = min(max((step - start) / max(end - start, 1), 0.0), 1.0)
            self._add_step(ep - 1 + frac, step, r.get("loss"), r.get("accuracy"), r.get("lr"), r.get("changed"))
        for r in records:
            if r.get("kind") == "epoch":
                self._add_epoch(r.get("split", ""), int(r["epoch"]), r.get("loss"), r.get("accuracy"))
        self.changed.emit()

    # -- reading ---------------------------------------------------------------------------------

    def latest_epoch_metrics(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for split in ("train", "val"):
            n = len(self.epoch_loss[split])
            out[f"{split}_loss"] = _finite(self.epoch_loss[split].view()[-1]) if n else None
            out[f"{split}_accuracy"] = _finite(self.epoch_acc[split].view()[-1]) if n else None
        return out

    def best_val(self) -> tuple[int, float] | None:
        """(epoch, val loss) of the lowest val loss so far."""
        losses = self.epoch_loss["val"].view()
        if not len(losses) or np.all(np.isnan(losses)):
            return None
        i = int(np.nanargmin(losses))
        return int(self.epoch_x["val"].view()[i]), float(losses[i])


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
