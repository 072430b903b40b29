"""Terminal progress for headless runs: a live bar on a TTY, one line per epoch otherwise.

`epoch_line` and `fit_end_line` word an epoch's end and the run's end; the GUI's log shows the
same lines (the worker forwards them as messages), so a run reads the same in both.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from studio.engine.callbacks import Callback, TrainerView
from studio.engine.estimates import remaining_seconds
from studio.engine.events import EpochEnd, EpochStart, FitEnd, FitStart, Message
from studio.engine.records import StepRecord


def _fmt_time(s: float | None) -> str:
    if s is None or s != s or s == float("inf"):
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def epoch_line(event: EpochEnd) -> str:
    """`epoch 2/5 | train loss 0.3120 | acc 0.9100 | val loss 0.3300 | val acc 0.9050 | 1.2s | ETA 00:04 *`."""
    m = event.metrics
    parts = [f"epoch {event.epoch}/{event.epochs}", f"train loss {m['train_loss']:.4f}"]
    if m.get("train_accuracy") is not None:
        parts.append(f"acc {m['train_accuracy']:.4f}")
    if m.get("val_loss") is not None:
        parts.append(f"val loss {m['val_loss']:.4f}")
    if m.get("val_accuracy") is not None:
        parts.append(f"val acc {m['val_accuracy']:.4f}")
    if event.epoch_s is not None:
        parts.append(f"{event.epoch_s:.1f}s")
    if event.eta_s:
        parts.append(f"ETA {_fmt_time(event.eta_s)}")
    return " | ".join(parts) + (" *" if event.is_best else "")


def fit_end_line(event: FitEnd) -> str:
    """`completed: 5 epoch(s), test accuracy 0.9700; run saved in runs/...` (with the reason of an early end)."""
    s = event.summary
    m = s.get("metrics", {})
    line = f"{event.status}: {s.get('epochs_completed')} epoch(s)"
    if m.get("test_accuracy") is not None:
        line += f", test accuracy {m['test_accuracy']:.4f}"
    elif m.get("test_loss") is not None:
        line += f", test loss {m['test_loss']:.4f}"
    if event.reason and event.status != "completed":
        line += f" ({event.reason})"
    saved = f"run saved in {event.run_dir}" if event.run_dir else "nothing saved"
    return f"{line}; {saved}"


class ProgressPrinter(Callback):
    """Prints the engine's messages and progress (loss, accuracy, lr, samples/s, ETA) to stderr."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._last_draw = 0.0
        self._epochs = 0
        self._epoch_t0 = time.perf_counter()

    def _print(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def on_message(self, trainer: TrainerView, event: Message) -> None:
        if self.quiet and event.level == "info":
            return
        prefix = {"warning": "warning: ", "error": "error: "}.get(event.level, "")
        self._print(prefix + event.text)

    def on_fit_start(self, trainer: TrainerView, event: FitStart) -> None:
        self._epochs = event.epochs

    def on_epoch_start(self, trainer: TrainerView, event: EpochStart) -> None:
        self._epoch_t0 = time.perf_counter()

    def on_step_end(self, trainer: TrainerView, event: StepRecord) -> None:
        if self.quiet or not self.tty:
            return
        now = time.perf_counter()
        progress = event.epoch_progress or 0.0
        if now - self._last_draw < 0.1 and progress < 1.0:
            return
        self._last_draw = now
        width = 24
        filled = int(width * progress)
        elapsed = now - self._epoch_t0
        eta = remaining_seconds(elapsed, progress)
        acc = f" acc {event.accuracy:.3f}" if event.accuracy is not None else ""
        speed = f" {event.samples_per_s:,.0f} samples/s" if event.samples_per_s is not None else ""
        self.stream.write(
            f"\r\033[Kepoch {event.epoch}/{self._epochs} [{'#' * filled}{'.' * (width - filled)}] "
            f"loss {event.loss:.4f}{acc} lr {event.lr:.3g} bs {event.batch_size}{speed} "
            f"ETA {_fmt_time(eta)}"
        )
        self.stream.flush()

    def on_epoch_end(self, trainer: TrainerView, event: EpochEnd) -> None:
        if not self.quiet:
            self._print(epoch_line(event))

    def on_fit_end(self, trainer: TrainerView, event: FitEnd) -> None:
        if not self.quiet or event.status != "completed":
            self._print(fit_end_line(event))
