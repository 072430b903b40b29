"""The one bridge between the engine and Qt: a `TrainingWorker` that runs `Trainer.fit()` on a `QThread`.

The worker is also the engine callback that knows Qt exists. It turns engine events into signals
carrying plain Python values (the engine's frozen dataclasses), and throttles step events to about
20 emissions a second: steps that arrive in between are batched, never dropped, so the curves keep
every logged point while the GUI's event queue stays short however fast training runs.

    thread, worker = start_training(config, run_dir, control)
    worker.step_ended.connect(...)      # a list[StepEnd], oldest first
    worker.samples_predicted.connect(...)  # PredictionSamples after an epoch (numpy images, tuples)
    worker.finished.connect(...)        # a RunOutcome, always, after errored if there was an error
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from studio.config import Config
from studio.engine.control import TrainingControl
from studio.engine.events import Message
from studio.errors import StudioError

STEP_INTERVAL_S = 0.05  # at most ~20 step emissions a second
SAMPLES_INTERVAL_S = 0.1  # validation-sample grids: at most ten a second (tiny epochs can be faster)


@dataclass(frozen=True)
class RunError:
    """Why a run could not go on: `kind` is "input" (the user can fix it), "diverged" or "bug"."""

    kind: str
    message: str
    details: str = ""


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: the engine's summary (empty when it never started) and any error."""

    run_dir: str
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: RunError | None = None


class _LineStream:
    """A text stream that hands each complete line to a function, so the CLI's printer feeds the log."""

    def __init__(self, emit: Any) -> None:
        self._emit = emit
        self._buf = ""

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        pass


class TrainingWorker(QObject):
    """Runs one fit in its thread; connect to its signals before the thread starts."""

    started = Signal()
    fit_started = Signal(object)  # FitStart
    step_ended = Signal(object)  # list[StepEnd], batched to ~20 emissions a second
    epoch_ended = Signal(object)  # EpochEnd
    samples_predicted = Signal(object)  # PredictionSamples: plain numpy and tuples, never tensors
    message = Signal(object)  # Message: the lines the CLI prints, for the log panel
    errored = Signal(object)  # RunError
    finished = Signal(object)  # RunOutcome, always the last signal

    def __init__(self, config: Config, run_dir: str | Path, control: TrainingControl, *,
                 resume: bool = False, step_interval: float = STEP_INTERVAL_S) -> None:
        super().__init__()
        self.config = config
        self.run_dir = Path(run_dir)
        self.control = control
        self.resume = resume
        self.step_interval = step_interval
        self._pending: list[Any] = []
        self._last_emit = 0.0
        self._fit_end: Any = None
        self._pending_samples: Any = None
        self._last_samples_emit = 0.0

    # -- engine callback hooks (called on the worker thread) -----------------------------------

    def on_fit_start(self, trainer: Any, event: Any) -> None:
        self.fit_started.emit(event)

    def on_step_end(self, trainer: Any, event: Any) -> None:
        self._pending.append(event)
        now = time.perf_counter()
        # A live change is shown at once so the user sees the marker right after pressing Enter.
        if now - self._last_emit >= self.step_interval or event.changed:
            self._flush_steps(now)
        if self._pending_samples is not None and now - self._last_samples_emit >= SAMPLES_INTERVAL_S:
            self._flush_samples()  # a grid held back by the throttle goes out with the next steps

    def on_epoch_end(self, trainer: Any, event: Any) -> None:
        self._flush_steps(time.perf_counter())
        self.epoch_ended.emit(event)

    def on_fit_end(self, trainer: Any, event: Any) -> None:
        self._flush_steps(time.perf_counter())
        self._flush_samples()
        self._fit_end = event

    def _on_samples(self, samples: Any) -> None:
        """From `ValidationSamples` after each epoch: only the newest grid matters, so keep one."""
        self._pending_samples = samples
        if time.perf_counter() - self._last_samples_emit >= SAMPLES_INTERVAL_S:
            self._flush_samples()

    def _flush_samples(self) -> None:
        if self._pending_samples is not None:
            samples, self._pending_samples = self._pending_samples, None
            self.samples_predicted.emit(samples)
            self._last_samples_emit = time.perf_counter()

    def _flush_steps(self, now: float) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.step_ended.emit(batch)
        self._last_emit = now

    def _log_line(self, line: str) -> None:
        level = "info"
        for prefix, name in (("warning: ", "warning"), ("error: ", "error")):
            if line.startswith(prefix):
                level, line = name, line[len(prefix):]
        self.message.emit(Message(line, level))

    # -- the run -------------------------------------------------------------------------------

    @Slot()
    def run(self) -> None:
        """Train; every exception becomes `errored`, and `finished` is always emitted last."""
        from studio.engine.prediction_samples import ValidationSamples
        from studio.engine.progress import ProgressPrinter
        from studio.engine.trainer import Trainer, TrainingFailed

        self.started.emit()
        error: RunError | None = None
        summary: dict[str, Any] = {}
        printer = ProgressPrinter(stream=_LineStream(self._log_line))  # type: ignore[arg-type]
        try:
            trainer = Trainer(self.config, self.run_dir, callbacks=[printer, self, ValidationSamples(self._on_samples)],
                              control=self.control, resume=self.resume)
            summary = trainer.fit()
        except StudioError as exc:
            error = RunError("input", str(exc))
        except TrainingFailed as exc:
            error = RunError("diverged", str(exc))
        except Exception as exc:  # noqa: BLE001 - the worker must never let an exception escape its thread
            error = RunError("bug", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if self._fit_end is not None and not summary:
            summary = dict(self._fit_end.summary)
        self._flush_steps(time.perf_counter())
        if error is not None:
            self.message.emit(Message(error.message, "error"))
            self.errored.emit(error)
        status = summary.get("status", "failed")
        self.finished.emit(RunOutcome(str(self.run_dir), status, summary, error))


def start_training(config: Config, run_dir: str | Path, control: TrainingControl, *, resume: bool = False,
                   connect: Any = None) -> tuple[QThread, TrainingWorker]:
    """Create the worker and its thread, let `connect(worker)` hook up signals, then start.

    The thread quits when the worker finishes; callers keep both references until the thread's
    own `finished` signal, and `wait()` on it before dropping them.
    """
    thread = QThread()
    thread.setObjectName("trainingThread")
    worker = TrainingWorker(config, run_dir, control, resume=resume)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    if connect is not None:
        connect(worker)
    thread.start()
    return thread, worker
