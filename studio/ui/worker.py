"""The one bridge between the engine and Qt: a `TrainingWorker` that runs `Trainer.fit()` on a `QThread`.

The worker is also the engine callback that knows Qt exists. It forwards the engine's events as
they are (frozen dataclasses of plain Python values: step records, `Message`s, epoch ends) as
signals, and throttles step records to about 20 emissions a second: records that arrive in
between are batched, never dropped, so the curves keep every logged point while the GUI's event
queue stays short however fast training runs. The log gets the engine's messages, and for each
epoch and the run's end the line `studio train` prints (`progress.epoch_line`, `fit_end_line`).

    thread, worker = start_training(config, run_dir, control)
    worker.step_ended.connect(...)      # a list[StepRecord], oldest first
    worker.samples_predicted.connect(...)  # PredictionSamples after an epoch (numpy images, tuples)
    worker.finished.connect(...)        # a RunOutcome, always, after errored if there was an error

A run outlives whoever started it: `start_training` keeps the thread and worker until the thread
has ended, and when the interpreter exits with a run still training (a script that ends, an
event loop that never ran), `stop_running_runs` stops it at the next step, so `last.pt` and
`summary.json` ("stopped") are written and no running QThread is ever destroyed.
"""

from __future__ import annotations

import atexit
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from studio.config import Config
from studio.engine.callbacks import TrainerView
from studio.engine.control import TrainingControl
from studio.engine.events import EpochEnd, FitEnd, FitStart, Message
from studio.engine.progress import epoch_line, fit_end_line
from studio.engine.records import StepRecord
from studio.errors import StudioError

STEP_INTERVAL_S = 0.05  # at most ~20 step emissions a second
SAMPLES_INTERVAL_S = 0.1  # validation-sample grids: at most ten a second (tiny epochs can be faster)
EXIT_WAIT_S = 60.0  # at interpreter exit: a step, a checkpoint and summary.json take far less


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


class TrainingWorker(QObject):
    """Runs one fit in its thread; connect to its signals before the thread starts."""

    started = Signal()
    fit_started = Signal(object)  # FitStart
    step_ended = Signal(object)  # list[StepRecord], batched to ~20 emissions a second
    epoch_ended = Signal(object)  # EpochEnd
    samples_predicted = Signal(object)  # PredictionSamples: plain numpy and tuples, never tensors
    message = Signal(object)  # Message: the engine's, and the lines the CLI prints at each epoch's end
    errored = Signal(object)  # RunError
    finished = Signal(object)  # RunOutcome, always the last signal

    def __init__(
        self,
        config: Config,
        run_dir: str | Path,
        control: TrainingControl,
        *,
        resume: bool = False,
        step_interval: float = STEP_INTERVAL_S,
    ) -> None:
        super().__init__()
        self.config = config
        self.run_dir = Path(run_dir)
        self.control = control
        self.resume = resume
        self.step_interval = step_interval
        self._pending: list[StepRecord] = []
        self._last_emit = 0.0
        self._fit_end: FitEnd | None = None
        self._pending_samples: Any = None
        self._last_samples_emit = 0.0

    def _emit(self, name: str, *payload: Any) -> bool:
        """Emit from the worker thread; a receiver side that is gone stops the run instead of failing it.

        The C++ half of this object can be deleted under a running fit when the program that owned
        it ends without stopping it; PySide then raises RuntimeError. Nobody is listening any more,
        so the run stops at the next step and saves itself, as if Stop had been pressed.
        """
        try:
            getattr(self, name).emit(*payload)
        except RuntimeError:
            self.control.stop()
            return False
        return True

    # -- engine callback hooks (called on the worker thread) -----------------------------------

    def on_fit_start(self, trainer: TrainerView, event: FitStart) -> None:
        self._emit("fit_started", event)

    def on_message(self, trainer: TrainerView, event: Message) -> None:
        self._emit("message", event)

    def on_step_end(self, trainer: TrainerView, event: StepRecord) -> None:
        self._pending.append(event)
        now = time.perf_counter()
        # A live change is shown at once so the user sees the marker right after pressing Enter.
        if now - self._last_emit >= self.step_interval or event.changed:
            self._flush_steps(now)
        if self._pending_samples is not None and now - self._last_samples_emit >= SAMPLES_INTERVAL_S:
            self._flush_samples()  # a grid held back by the throttle goes out with the next steps

    def on_epoch_end(self, trainer: TrainerView, event: EpochEnd) -> None:
        self._emit("message", Message(epoch_line(event)))
        self._flush_steps(time.perf_counter())
        self._emit("epoch_ended", event)

    def on_fit_end(self, trainer: TrainerView, event: FitEnd) -> None:
        self._emit("message", Message(fit_end_line(event)))
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
            self._emit("samples_predicted", samples)
            self._last_samples_emit = time.perf_counter()

    def _flush_steps(self, now: float) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._emit("step_ended", batch)
        self._last_emit = now

    # -- the run -------------------------------------------------------------------------------

    @Slot()
    def run(self) -> None:
        """Train; every exception becomes `errored`, and `finished` is always emitted last."""
        from studio.engine.prediction_samples import ValidationSamples
        from studio.engine.trainer import Trainer, TrainingFailed

        self._emit("started")
        error: RunError | None = None
        summary: dict[str, Any] = {}
        try:
            trainer = Trainer(
                self.config,
                self.run_dir,
                callbacks=[self, ValidationSamples(self._on_samples)],
                control=self.control,
                resume=self.resume,
            )
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
            self._emit("message", Message(error.message, "error"))
            self._emit("errored", error)
        status = summary.get("status", "failed")
        if not self._emit("finished", RunOutcome(str(self.run_dir), status, summary, error)):
            # `finished` is what quits this thread; with it gone, quit it here so it can end.
            QThread.currentThread().quit()


def start_training(
    config: Config, run_dir: str | Path, control: TrainingControl, *, resume: bool = False, connect: Any = None
) -> tuple[QThread, TrainingWorker]:
    """Create the worker and its thread, let `connect(worker)` hook up signals, then start.

    The thread quits when the worker finishes; callers keep both references until the thread's
    own `finished` signal, and `wait()` on it before dropping them. This module holds them too
    until then, so a caller that drops them early cannot destroy a running thread.
    """
    thread = QThread()
    thread.setObjectName("trainingThread")
    worker = TrainingWorker(config, run_dir, control, resume=resume)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: quit() is thread-safe, and the thread must end even while the GUI thread is blocked
    # waiting for it (at exit) and cannot run a queued call.
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    if connect is not None:
        connect(worker)
    _track(thread, worker)
    thread.start()
    return thread, worker


# -- runs still training when the program ends ------------------------------------------------------

_running: dict[QThread, TrainingWorker] = {}
_running_lock = threading.Lock()
_exit_hooked = False


def _track(thread: QThread, worker: TrainingWorker) -> None:
    global _exit_hooked
    with _running_lock:
        _prune()
        _running[thread] = worker
        if not _exit_hooked:
            # Registered after PySide6 was imported, so it runs before PySide6 tears Qt down.
            atexit.register(stop_running_runs)
            _exit_hooked = True


def _prune() -> None:
    """Forget threads that have ended (called with the lock held, on the GUI thread).

    Not from the thread's own `finished`: dropping the last reference there would delete the
    QThread from inside the thread it runs.
    """
    for thread in list(_running):
        try:
            ended = thread.isFinished()
        except RuntimeError:  # its owner deleted it after it ended
            ended = True
        if ended:
            del _running[thread]


def running_runs() -> list[TrainingWorker]:
    """The workers whose threads have not ended yet."""
    with _running_lock:
        _prune()
        return list(_running.values())


def stop_running_runs(timeout_s: float = EXIT_WAIT_S) -> bool:
    """Stop every run at its next step and wait for its thread; True when none is left running.

    Blocks without running the event loop (the worker's thread ends on its own, see
    `start_training`), so it is safe at interpreter exit. A window stops its own run first
    (`MainWindow.shutdown`), which keeps its view up to date; this is the net under it.
    """
    with _running_lock:
        _prune()
        runs = list(_running.items())
    for _, worker in runs:
        worker.control.stop()
    deadline = time.monotonic() + timeout_s
    for thread, _ in runs:
        try:
            thread.wait(int(max(deadline - time.monotonic(), 0.0) * 1000))
        except RuntimeError:  # deleted by its owner once it had ended
            pass
    return not running_runs()
