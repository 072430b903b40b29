"""Following a run that another process writes: its records as metrics.jsonl grows, its end from summary.json.

`RunFollowWorker` runs on its own `QThread` and looks at the run folder a few times a second (a stat
per file; it reads only what grew, complete lines only: `engine/metrics_tail.py`), so the GUI thread
never touches files that may sit on slow shared storage. It has the `TrainingWorker`'s signals, so
the `RunController` shows a followed run exactly as one it trains itself (records into the
`RunHistory`, epoch ends to the cards, the log, a `RunOutcome` at the end).

Two uses:

- **File › Follow Run…** (`launch=None`): a run the CLI, torchrun or a cluster job writes. It ends
  when summary.json says the run ended (a summary older than the last record is a previous end of
  a run that was resumed since), or when the window lets it go (`detach()`).
- **A run of N processes launched from the window** (`launch` given): the worker starts
  `studio train CONFIG --run-dir R --nproc N` (which runs torchrun) through `ChildProcesses`
  (child_processes.py) and supervises it. Stop writes `stop` to control.json where the engine reads one (else it sends the
  processes Ctrl-C, which `studio train` answers by saving and stopping), and terminates, then
  kills, the processes that have not ended in time. However they end (done, a crash, a killed
  rank, a bad exit code), the worker reads the last records and summary.json and finishes with a
  `RunOutcome` saying what happened; a run that died without a summary gets a "failed" one.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from studio.engine.control import TrainingControl
from studio.engine.events import EpochEnd, Message
from studio.engine.metrics_tail import MetricsTail
from studio.engine.progress import epoch_line
from studio.engine.records import EpochRecord, Record, StepRecord
from studio.engine.run_dir import RunDir
from studio.errors import StudioError
from studio.ui.child_processes import ChildProcesses, Launch
from studio.ui.worker import RunError, RunOutcome

POLL_S = 0.25  # how often the folder is looked at: four times a second is live to a person
QUIET_S = 60.0  # a followed run that writes nothing for this long may have died: say so once

ControlWriter = Callable[..., None]


def control_writer(run_dir: Path | None) -> ControlWriter | None:
    """`write_control(path, **values)`, where the window may write the run folder's control.json.

    None for a folder this user cannot write (a read-only mount of a cluster's storage): the run is
    then shown read-only. `run_dir=None`: a folder the window makes itself.
    """
    if run_dir is not None and not os.access(run_dir, os.W_OK):
        return None
    # Imported here, on the GUI thread once a run is followed: it imports torch, which must not
    # delay the window's first paint.
    from studio.engine.control_file import write_control

    return write_control


class RunFollowWorker(QObject):
    """Follows (and, with a `Launch`, supervises) one run folder; see the module doc."""

    started = Signal()
    fit_started = Signal(object)  # never: a followed run's FitStart stays in its own process
    loaded = Signal(object)  # list[Record]: the whole of metrics.jsonl (first read, and after a rewrite)
    step_ended = Signal(object)  # list[StepRecord]
    epoch_ended = Signal(object)  # EpochEnd, built from the epoch records read
    samples_predicted = Signal(object)  # never: images stay in the training process
    message = Signal(object)  # Message: epoch lines, what the processes print, what happened
    notice = Signal(str, int)  # a status-bar message (a folder that vanished, a run gone quiet)
    errored = Signal(object)  # RunError
    finished = Signal(object)  # RunOutcome, always the last signal

    def __init__(
        self,
        run_dir: Path,
        epochs_total: int,
        control: TrainingControl,
        launch: Launch | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.files = RunDir(self.run_dir)
        self.epochs_total = epochs_total
        self.control = control
        self.launch = launch
        self.poll_s = poll_s
        self.writer = control_writer(self.run_dir if launch is None else None)
        self._detached = threading.Event()
        self._tail = MetricsTail(self.files.metrics)
        self.child_processes = ChildProcesses(launch, self.run_dir, self.message.emit) if launch else None
        self._t0 = time.time()
        self._last_change = time.monotonic()
        self._quiet_said = False
        self._lost = False
        self._paused_sent = False
        self._stop_written = False
        self._epoch_metrics: dict[int, dict[str, float | None]] = {}

    @property
    def steerable(self) -> bool:
        """Whether live changes reach the run (control.json, or the processes the worker started)."""
        return self.writer is not None or self.launch is not None

    def detach(self) -> None:
        """Stop following (thread-safe); a launched run is not affected by this, only by Stop."""
        self._detached.set()

    # -- the loop (on the worker's thread) ---------------------------------------------------------

    @Slot()
    def run(self) -> None:
        self.started.emit()
        outcome: RunOutcome | None = None
        try:
            if self.child_processes is not None:
                self.child_processes.start()
            self._poll_files(first=True)
            while outcome is None:
                if self._detached.wait(self.poll_s):
                    if self.child_processes is None:
                        outcome = RunOutcome(str(self.run_dir), "following")  # let go: nobody listens
                        break
                    time.sleep(self.poll_s)  # a launched run is supervised to its end
                self._steer()
                self._poll_files()
                outcome = self._ended()
        except Exception as exc:  # noqa: BLE001 - the thread must end with `finished` whatever happens
            error = RunError("bug", f"{type(exc).__name__}: {exc}")
            self.errored.emit(error)
            outcome = RunOutcome(str(self.run_dir), "failed", {}, error)
        finally:
            if self.child_processes is not None:
                self.child_processes.close()
        self.finished.emit(outcome)
        QThread.currentThread().quit()

    def _poll_files(self, first: bool = False) -> None:
        if not self.run_dir.is_dir():
            if not self._lost:
                self._lost = True
                self.notice.emit(f"The run folder {self.run_dir} is gone; waiting for it to come back", 0)
            return
        if self._lost:
            self._lost = False
            self.notice.emit("The run folder is back", 4000)
        records, restarted = self._tail.read()
        if first or restarted:
            self.loaded.emit(records)
        elif records:
            self._emit_records(records)
        if records:
            self._last_change, self._quiet_said = time.monotonic(), False
        elif not self._quiet_said and self.launch is None and time.monotonic() - self._last_change > QUIET_S:
            self._quiet_said = True
            self.notice.emit(f"No new records for {QUIET_S:.0f} s: the run may have ended without a summary", 0)
        if self.child_processes is not None:
            self.child_processes.read_output()

    def _emit_records(self, records: list[Record]) -> None:
        steps = [r for r in records if isinstance(r, StepRecord)]
        if steps:
            self.step_ended.emit(steps)
        by_epoch: dict[int, list[EpochRecord]] = {}
        for r in records:
            if isinstance(r, EpochRecord) and r.split in ("train", "val"):
                by_epoch.setdefault(r.epoch, []).append(r)
        for epoch, group in sorted(by_epoch.items()):
            for r in group:
                self._epoch_metrics.setdefault(epoch, {}).update(
                    {f"{r.split}_loss": r.loss, f"{r.split}_accuracy": r.accuracy}
                )
            metrics = self._epoch_metrics[epoch]
            last = group[-1]
            event = EpochEnd(
                epoch, self.epochs_total, last.step, last.time or 0.0, dict(metrics), None, False, records=tuple(group)
            )
            if any(r.split == "val" for r in group) and metrics.get("train_loss") is not None:
                self.message.emit(Message(epoch_line(event)))  # the line `studio train` prints
            self.epoch_ended.emit(event)

    def _summary(self) -> dict[str, Any] | None:
        """summary.json if it says how the run ended and is not older than the last record."""
        summary = self.files.read_summary()
        if not summary or summary.get("status") not in ("completed", "early_stopped", "stopped", "failed"):
            return None
        try:
            summary_t = self.files.summary.stat().st_mtime
            metrics_t = self.files.metrics.stat().st_mtime if self.files.metrics.exists() else 0.0
        except OSError:
            return None
        if summary_t + 1.0 < metrics_t or (self.launch is not None and summary_t + 1.0 < self._t0):
            return None  # an earlier end of a run that was resumed since (or of an earlier launch)
        return summary

    def _ended(self) -> RunOutcome | None:
        if self.child_processes is None:
            summary = self._summary()
            if summary is None or self._tail.pending:
                return None
            return RunOutcome(str(self.run_dir), str(summary["status"]), summary)
        rc = self.child_processes.poll()
        if rc is None:
            return None
        self._poll_files()  # the last records and lines the processes wrote
        return self.child_processes.outcome(rc, self._summary())

    def _steer(self) -> None:
        """Pass the window's Stop, Pause and live changes on to the run (control.json; Stop: the processes too)."""
        if self.writer is not None:
            changes = self.control.take_changes()
            if self.control.paused != self._paused_sent:
                changes["pause"] = self._paused_sent = self.control.paused
            if self.control.stop_requested and not self._stop_written:
                changes["stop"] = True
            if changes:
                self._write_control(changes)
        if self.child_processes is not None and self.control.stop_requested:
            self.child_processes.stop(asked_through_file=self._stop_written)

    def _write_control(self, values: dict[str, Any]) -> None:
        assert self.writer is not None
        try:
            self.writer(self.files.control, **values)
        except (OSError, StudioError) as exc:
            self.notice.emit(f"Could not steer the run (control.json): {exc}", 8000)
            return
        self._stop_written = self._stop_written or bool(values.get("stop"))


def start_following(
    run_dir: Path,
    epochs_total: int,
    control: TrainingControl,
    *,
    launch: Launch | None = None,
    connect: Callable[[QThread, RunFollowWorker], None] | None = None,
) -> tuple[QThread, RunFollowWorker]:
    """Create the worker and its thread, let `connect(worker)` hook up signals, then start (as `start_training`)."""
    thread = QThread()
    thread.setObjectName("followThread")
    worker = RunFollowWorker(run_dir, epochs_total, control, launch)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    if connect is not None:
        connect(thread, worker)
    _track(thread, worker)
    thread.start()
    return thread, worker


# -- followed runs when the program ends ------------------------------------------------------------

_running: dict[QThread, RunFollowWorker] = {}
_running_lock = threading.Lock()


def _track(thread: QThread, worker: RunFollowWorker) -> None:
    with _running_lock:
        if not _running:
            atexit.register(stop_following)  # registered after PySide6's import, so it runs before Qt goes
        for t in [t for t in _running if _ended(t)]:
            del _running[t]
        _running[thread] = worker


def _ended(thread: QThread) -> bool:
    try:
        return thread.isFinished()
    except RuntimeError:  # deleted by its owner once it had ended
        return True


def stop_following(timeout_s: float = 60.0) -> bool:
    """Let every followed run go and stop every launched one, then wait for their threads (the net at exit).

    A QThread destroyed while it runs takes the process down; a window stops its own first.
    """
    with _running_lock:
        runs = [(t, w) for t, w in _running.items() if not _ended(t)]
        _running.clear()
    for _, worker in runs:
        worker.detach()
        if worker.launch is not None:
            worker.control.stop()
    deadline = time.monotonic() + timeout_s
    for thread, _ in runs:
        try:
            thread.wait(int(max(deadline - time.monotonic(), 0.0) * 1000))
        except RuntimeError:
            pass
    return all(_ended(t) for t, _ in runs)


class FollowRelay(QObject):
    """Hands a follow worker's signals to the controller on the GUI thread, until the controller lets it go.

    A followed run is let go when the window shows another run; signals its worker had already
    queued must not reach the run shown next, so they come through this object, which drops them
    once `active` is cleared, and cleans up the thread when it ends.
    """

    def __init__(self, controller: Any, thread: QThread, worker: RunFollowWorker) -> None:
        super().__init__(controller)
        self.controller, self.worker_thread, self.worker = controller, thread, worker
        self.active = True
        worker.loaded.connect(self._loaded)
        worker.step_ended.connect(self._steps)
        worker.epoch_ended.connect(self._epoch)
        worker.message.connect(self._message)
        worker.notice.connect(self._notice)
        worker.finished.connect(self._finished)
        thread.finished.connect(self._thread_finished)

    def _loaded(self, records: list[Record]) -> None:
        if self.active:
            self.controller._on_loaded(records)

    def _steps(self, records: list[StepRecord]) -> None:
        if self.active:
            self.controller._on_steps(records)

    def _epoch(self, event: EpochEnd) -> None:
        if self.active:
            self.controller._on_epoch_ended(event)

    def _message(self, message: Message) -> None:
        if self.active:
            self.controller.message.emit(message)

    def _notice(self, text: str, ms: int) -> None:
        if self.active:
            self.controller.notice.emit(text, ms)

    def _finished(self, outcome: RunOutcome) -> None:
        if self.active:
            self.controller._on_finished(outcome)

    def _thread_finished(self) -> None:
        if self.active:
            self.controller._on_thread_finished()
            return
        self.worker_thread.wait()
        self.worker_thread.deleteLater()
        self.worker.deleteLater()
        self.deleteLater()

    def let_go(self) -> None:
        """Stop following: the worker ends at its next look, and nothing more reaches the controller."""
        self.active = False
        self.worker.detach()
