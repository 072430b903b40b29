"""Terminal progress for headless runs: rich's live bar on a terminal, plain lines otherwise.

On a terminal the bar (rich, which also draws `studio eval`'s tables) moves with every step record
and shows the epoch's samples, the loss, the rate and the time left; messages and epoch lines print
above it. When stderr is a file or a pipe (a cluster job's log), a plain progress line is written
at least every `HEARTBEAT_S` seconds during an epoch, from a small thread if the steps themselves
are slower than that, so a long epoch never looks hung.

`epoch_line` and `fit_end_line` word an epoch's end and the run's end; the GUI's log shows the
same lines (the worker forwards them as messages), so a run reads the same in both.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, TextIO

from studio.engine.callbacks import Callback, TrainerView
from studio.engine.estimates import remaining_seconds
from studio.engine.events import EpochEnd, EpochStart, FitEnd, FitStart, Message
from studio.engine.records import StepRecord

HEARTBEAT_S = 10.0  # the longest silence on a non-terminal stderr during an epoch


def _fmt_time(s: float | None) -> str:
    if s is None or s != s or s == float("inf"):
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def epoch_line(event: EpochEnd) -> str:
    """`epoch 2/5 | train loss 0.3120 | acc 0.9100 | val loss 0.3300 | val acc 0.9050 | 1.2s | ETA 00:04 *`.

    Regression shows the validation RMSE (in the target's units) and R² where classification
    shows accuracy.
    """
    m = event.metrics
    parts = [f"epoch {event.epoch}/{event.epochs}", f"train loss {m['train_loss']:.4f}"]
    if m.get("train_accuracy") is not None:
        parts.append(f"acc {m['train_accuracy']:.4f}")
    if m.get("val_loss") is not None:
        parts.append(f"val loss {m['val_loss']:.4f}")
    if m.get("val_accuracy") is not None:
        parts.append(f"val acc {m['val_accuracy']:.4f}")
    if m.get("val_rmse") is not None:
        parts.append(f"val RMSE {m['val_rmse']:.4g}")
    if m.get("val_r2") is not None:
        parts.append(f"val R² {m['val_r2']:.4f}")
    if event.epoch_s is not None:
        parts.append(f"{event.epoch_s:.1f}s")
    if event.eta_s:
        parts.append(f"ETA {_fmt_time(event.eta_s)}")
    return " | ".join(parts) + (" *" if event.is_best else "")


def headline(summary: dict[str, Any]) -> str | None:
    """The run's one headline figure and the checkpoint it comes from, from its summary.

    `test accuracy 0.9700 (best checkpoint, epoch 4)`; regression: `test RMSE 1.02, R² 0.9871 (...)`.
    None when the run has no test figures.
    """
    m = summary.get("metrics") or {}
    if m.get("test_accuracy") is not None:
        text = f"test accuracy {m['test_accuracy']:.4f}"
    elif m.get("test_rmse") is not None:
        text = f"test RMSE {m['test_rmse']:.4g}"
        if m.get("test_r2") is not None:
            text += f", R² {m['test_r2']:.4f}"
    elif m.get("test_loss") is not None:
        text = f"test loss {m['test_loss']:.4f}"
    else:
        return None
    best_epoch = (summary.get("best") or {}).get("epoch")
    if summary.get("checkpoint") == "best":
        text += f" (best checkpoint, epoch {best_epoch})" if best_epoch else " (best checkpoint)"
    elif summary.get("checkpoint") == "last":
        text += " (last weights)"
    return text


def fit_end_line(event: FitEnd) -> str:
    """`completed: 5 epoch(s), test accuracy 0.9700 (best checkpoint, epoch 4); run saved in runs/...`."""
    s = event.summary
    line = f"{event.status}: {s.get('epochs_completed')} epoch(s)"
    figure = headline(s)
    if figure:
        line += f", {figure}"
    if event.reason and event.status != "completed":
        line += f" ({event.reason})"
    saved = f"run saved in {event.run_dir}" if event.run_dir else "nothing saved"
    return f"{line}; {saved}"


class ProgressPrinter(Callback):
    """Prints the engine's messages and progress (loss, accuracy, lr, samples/s, ETA) to stderr.

    The position in the epoch is read from the trainer's loop state, which moves at every optimizer
    step, so the bar and the timed lines follow each batch, not only the step records.
    """

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.heartbeat_s = heartbeat_s
        self._trainer: TrainerView | None = None
        self._epochs = 0
        self._num_train = 0
        self._epoch = 0
        self._in_epoch = False
        self._epoch_t0 = time.perf_counter()
        self._last: StepRecord | None = None  # the epoch's latest step record: its loss, rate and speed
        self._lock = threading.Lock()  # the heartbeat thread and the loop both write
        self._last_line = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None  # a rich Progress on a terminal, while the fit runs
        self._task: Any = None

    # -- where the epoch is ------------------------------------------------------------------------

    def _fraction(self) -> float:
        """How far into the epoch the run is, 0..1: the loop's position, else the last step record's."""
        state = getattr(self._trainer, "state", None)
        if state is not None and self._num_train:
            return min(1.0, max(0.0, state.pos / self._num_train))
        return (self._last.epoch_progress or 0.0) if self._last is not None else 0.0

    def _samples(self, fraction: float) -> str:
        return f"{round(fraction * self._num_train):,}/{self._num_train:,}" if self._num_train else ""

    def progress_line(self) -> str | None:
        """`epoch 2/5 43% (2,752/6,400 samples) loss 0.3120 acc 0.910 lr 0.001 bs 64 ETA 00:12`; None between epochs."""
        if not self._in_epoch:
            return None
        fraction = self._fraction()
        eta = remaining_seconds(time.perf_counter() - self._epoch_t0, fraction) if fraction > 0 else None
        samples = f" ({self._samples(fraction)} samples)" if self._num_train else ""
        figures = f" {_figures(self._last)}" if self._last is not None else ""
        return f"epoch {self._epoch}/{self._epochs} {fraction:.0%}{samples}{figures} ETA {_fmt_time(eta)}"

    # -- output ------------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                self.stream.write(text + "\n")
                self.stream.flush()
            self._last_line = time.monotonic()

    def _start_bar(self) -> None:
        from rich.console import Console, RenderableType
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            Task,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column
        from rich.text import Text

        printer = self

        class FiguresColumn(ProgressColumn):
            """The step's figures; the one column that gives way (cut short) on a narrow terminal."""

            def render(self, task: Task) -> Text:
                return Text(str(task.fields.get("figures", "")), no_wrap=True, overflow="ellipsis")

        class LiveBar(Progress):
            """Moves with the loop's position at each refresh (8 a second), between step records too."""

            def get_renderables(self) -> Iterable[RenderableType]:
                if printer._task is not None and printer._in_epoch:
                    fraction = printer._fraction()
                    self.update(printer._task, completed=fraction, samples=printer._samples(fraction))
                yield from super().get_renderables()

        # Everything but the figures keeps its width; on a narrow terminal the figures lose their end.
        def fixed() -> Column:
            return Column(no_wrap=True)

        self._bar = LiveBar(
            TextColumn("{task.description}", table_column=fixed()),
            BarColumn(bar_width=16, table_column=fixed()),
            TaskProgressColumn(table_column=fixed()),
            TextColumn("{task.fields[samples]}", table_column=fixed()),
            TimeRemainingColumn(table_column=fixed()),
            FiguresColumn(),
            console=Console(file=self.stream, force_terminal=True),
            transient=True,
            refresh_per_second=8,
        )
        self._task = self._bar.add_task("", total=1.0, samples="", figures="")
        self._bar.start()

    def _stop_bar(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s / 4):
            if time.monotonic() - self._last_line >= self.heartbeat_s:
                line = self.progress_line()
                if line is not None:
                    self._print(line)

    # -- hooks -------------------------------------------------------------------------------------

    def on_message(self, trainer: TrainerView, event: Message) -> None:
        if self.quiet and event.level == "info":
            return
        prefix = {"warning": "warning: ", "error": "error: "}.get(event.level, "")
        self._print(prefix + event.text)

    def on_fit_start(self, trainer: TrainerView, event: FitStart) -> None:
        self._trainer, self._epochs, self._num_train = trainer, event.epochs, event.num_train
        if self.quiet:
            return
        if self.tty:
            self._start_bar()
        else:
            self._stop.clear()
            self._last_line = time.monotonic()
            self._thread = threading.Thread(target=self._heartbeat, name="studio-progress", daemon=True)
            self._thread.start()

    def on_epoch_start(self, trainer: TrainerView, event: EpochStart) -> None:
        self._epoch_t0 = time.perf_counter()
        self._epoch, self._in_epoch, self._last = event.epoch, True, None
        if self._bar is not None:
            self._bar.reset(self._task, total=1.0, description=f"epoch {event.epoch}/{event.epochs}", figures="")

    def on_step_end(self, trainer: TrainerView, event: StepRecord) -> None:
        if self.quiet:
            return
        self._last = event
        if self._bar is not None:
            self._bar.update(self._task, figures=_figures(event))
        elif time.monotonic() - self._last_line >= self.heartbeat_s:
            line = self.progress_line()
            if line is not None:
                self._print(line)

    def on_epoch_end(self, trainer: TrainerView, event: EpochEnd) -> None:
        self._in_epoch, self._last = False, None
        if not self.quiet:
            self._print(epoch_line(event))

    def on_fit_end(self, trainer: TrainerView, event: FitEnd) -> None:
        self.close()
        if not self.quiet or event.status != "completed":
            self._print(fit_end_line(event))

    def close(self) -> None:
        """End the live bar and the heartbeat thread (the fit's end does; a caller may again, safely)."""
        self._in_epoch = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._stop_bar()


def _figures(r: StepRecord) -> str:
    acc = f" acc {r.accuracy:.3f}" if r.accuracy is not None else ""
    speed = f" {r.samples_per_s:,.0f}/s" if r.samples_per_s is not None else ""
    return f"loss {r.loss:.4f}{acc} lr {r.lr:.3g} bs {r.batch_size}{speed}"
