"""`RunController`: the run the window shows, from Train to its end, as a `RunState` and typed signals.

It owns what a run needs on the GUI side: the `TrainingControl`, the training thread and its
worker, the state, and closing after a stop. Views never hear from the worker: the worker's
signals are queued to this object's slots on the GUI thread, which put every record into the
window's `RunHistory` first (its `changed` redraws the curves), then say what happened (the
cards and the status bar hear `progressed`, four times a second). docs/architecture.md, "The
window", draws the whole path.

    READY ──start──▶ TRAINING ◀──toggle_pause──▶ PAUSED
                        └──── stop ────┬───────────┘
                                       ▼
                                    STOPPING ──the thread ends──▶ COMPLETED | EARLY_STOPPED | STOPPED | FAILED
    READY ──follow──▶ FOLLOWING ──summary.json──▶ (the run's end), or let go when another run is shown

A run of N > 1 processes (`RunRequest.nproc`) trains in child processes that a `RunFollowWorker`
supervises (run_follower.py); it goes through the same states as one trained in the window.

A run that ends by itself goes from TRAINING to its end; opening a run shows the state it ended
in (READY when it has no summary); `forget` goes back to READY. The actions follow
`actions.window_actions.ENABLED`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QThread, QTimer, Signal
from PySide6.QtWidgets import QApplication

from studio.config import Config, load_config
from studio.engine.control import TrainingControl
from studio.engine.estimates import remaining_seconds
from studio.engine.events import EpochEnd, FitStart, Message
from studio.engine.records import Record, StepRecord
from studio.engine.run_dir import RunDir, new_run_dir, read_metrics, read_summary
from studio.errors import StudioError
from studio.ui.garbage import freeze_run_objects, release_run_objects
from studio.ui.history import RunHistory
from studio.ui.qt_helpers import application
from studio.ui.run_follower import FollowRelay, Launch, RunFollowWorker, start_following
from studio.ui.run_state import (
    ENDED_STATUSES,
    STATE_LABELS,
    CannotStart,
    OpenedRun,
    RunProgress,
    RunRequest,
    RunState,
)
from studio.ui.worker import RunOutcome, TrainingWorker, start_training

# The run's values live in run_state.py; the views import them from here, beside the controller.
__all__ = [
    "ENDED_STATUSES",
    "STATE_LABELS",
    "CannotStart",
    "OpenedRun",
    "RunController",
    "RunProgress",
    "RunRequest",
    "RunState",
]

PROGRESS_MS = 250  # cards and status bar: four updates a second; the curves already show every point
GIL_SWITCH_S = 0.001  # the GIL switch interval while a run trains (see `start`)


class _QuitWatcher(QObject):
    """Sees the application's Quit event before Qt closes the windows for it.

    `app.quit()` (a script, SIGTERM, the session ending) closes every window first; a close that
    comes from it must stop the run and go, not ask a question nobody may be there to answer.
    Installed on the application only while a run trains: an application event filter sees
    every event, and it is needed only then.
    """

    def __init__(self, on_quit: Callable[[], None]) -> None:
        super().__init__()
        self._on_quit = on_quit

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Quit:
            self._on_quit()
        return False


class RunController(QObject):
    """Starts, steers and ends the window's run; everything a view needs comes from its signals."""

    state_changed = Signal(object)  # RunState
    run_changed = Signal(object)  # Path | None: the run the window shows now
    run_starting = Signal(object)  # RunRequest, before the thread starts
    run_started = Signal(object)  # FitStart, once the engine has set the run up
    epoch_ended = Signal(object)  # EpochEnd, after its records are in the history
    samples_predicted = Signal(object)  # PredictionSamples: plain numpy and tuples
    progressed = Signal(object)  # RunProgress
    message = Signal(object)  # Message, for the log
    notice = Signal(str, int)  # a short status-bar message and how long it shows (ms)
    finished = Signal(object)  # RunOutcome: the worker's last word (its thread may still be ending)
    run_ended = Signal(object)  # RunOutcome, once the thread has ended and the state is the run's end
    run_opened = Signal(object)  # OpenedRun
    run_forgotten = Signal()  # back to an empty window (File › New Setup)
    close_ready = Signal(bool)  # a close waited for the run to stop; True when the application quits too

    def __init__(self, history: RunHistory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.state = RunState.READY
        self.run_dir: Path | None = None
        self.status: str | None = None  # how the shown run ended (summary.json), None while unknown
        self.epochs_total = 0
        self.last_outcome: RunOutcome | None = None
        self.control: TrainingControl | None = None
        self.worker_thread: QThread | None = None
        self.worker: TrainingWorker | RunFollowWorker | None = None
        self.relay: FollowRelay | None = None  # while a RunFollowWorker is the run's
        self._let_go: list[FollowRelay] = []  # followed runs no longer shown, until their threads end
        self.close_after_stop = False  # the window closes (and maybe quits) once the run has saved itself
        self._run_objects_frozen = False  # from a run's first steps until its thread ends (garbage.py)
        self.quit_requested = False  # the application is quitting: stop the run, ask nothing, then go
        self._quit_watcher = _QuitWatcher(self._on_quit_requested)
        self._fit_t0 = 0.0
        self._fit_frac0 = 0.0
        self._latest_step: StepRecord | None = None
        self._switch_interval = sys.getswitchinterval()
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(PROGRESS_MS)
        self._progress_timer.timeout.connect(self._emit_progress)
        history.diverged.connect(self._on_diverged)

    @property
    def is_training(self) -> bool:
        """A run of the window's own trains (a followed run is another process's: the window may let it go)."""
        return self.worker_thread is not None and self.state != RunState.FOLLOWING

    @property
    def steerable(self) -> bool:
        """Whether Stop, Pause and live changes reach the run: the window's own, or a followed one through control.json."""
        if self.state == RunState.FOLLOWING:
            return isinstance(self.worker, RunFollowWorker) and self.worker.steerable
        return self.is_training

    @property
    def live_control(self) -> bool:
        """Whether Pause and live rate and batch-size changes reach the run (child processes: through control.json)."""
        worker = self.worker
        return self.steerable and (not isinstance(worker, RunFollowWorker) or worker.writer is not None)

    # -- starting ----------------------------------------------------------------------------------

    def plan(self, config: Callable[[], Config], resume: bool, runs_dir: Path, nproc: int = 1) -> RunRequest:
        """What Train (or Continue Run) would start, in `nproc` processes; `CannotStart` says why it cannot."""
        try:
            cfg = config()
        except StudioError as exc:
            raise CannotStart("Cannot start training", str(exc)) from None
        if not resume:
            return RunRequest(new_run_dir(runs_dir, cfg.data.source, cfg.model.arch), cfg, False, max(nproc, 1))
        run_dir = self.run_dir
        if run_dir is not None and not run_dir.exists():
            raise CannotStart(
                "The run's folder is gone",
                f"'{run_dir}' no longer exists (deleted or moved), so there is nothing to continue. "
                "Open the run where it is now (File › Open Run), or press Train for a new run.",
            )
        if run_dir is None or not RunDir(run_dir).has_checkpoint("last"):
            raise CannotStart("Nothing to resume", "Open a stopped run first (File › Open Run).")
        try:
            saved = load_config(RunDir(run_dir).config)
            cfg = saved.replace_value("train.epochs", max(cfg.train.epochs, saved.train.epochs))
        except StudioError as exc:
            raise CannotStart("Cannot resume this run", str(exc)) from None
        summary = read_summary(run_dir) or {}
        done = int(summary.get("epochs_completed") or 0)
        if done >= cfg.train.epochs and summary.get("status") != "stopped":
            raise CannotStart(
                "Nothing left to train",
                f"All {cfg.train.epochs} epochs of this run are done. Raise Epochs to train further.",
                info=True,
            )
        return RunRequest(run_dir, cfg, True, max(nproc, 1))

    def start(self, request: RunRequest) -> None:
        """Start `request` on the worker thread."""
        if self.is_training:
            return
        self.let_go()
        if not request.resume:
            self.history.clear()
        self.run_dir, self.status, self.last_outcome = request.run_dir, None, None
        self.epochs_total = self.history.epochs_total = request.config.train.epochs
        self.quit_requested = False
        self.control = TrainingControl()
        self.run_starting.emit(request)
        self._say(f"{'resuming' if request.resume else 'starting'} run {request.run_dir.name}")
        from studio.engine.cuda_errors import needs_fresh_process  # torch is loaded by now (Train waits for it)

        if request.nproc > 1 or needs_fresh_process(request.config.train.device):  # after a CUDA error: a child
            launch = Launch(request.config, request.nproc, request.resume)
            self._start_follower(request.run_dir, start_following, launch=launch)
        else:
            self.worker_thread, self.worker = start_training(
                request.config, request.run_dir, self.control, resume=request.resume, connect=self._connect_worker
            )
            self.worker_thread.finished.connect(self._on_thread_finished)
        # Each Python call the GUI thread makes (a timer tick, a plot item's paint) first takes the
        # GIL from the training thread, which Python hands over only every switch interval (5 ms by
        # default): ten such calls in one repaint were 50 ms of stutter. 1 ms keeps the window
        # responsive; the training thread is interrupted only when the GUI thread has work.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, GIL_SWITCH_S))
        application().installEventFilter(self._quit_watcher)
        self._fit_t0 = time.perf_counter()
        self._fit_frac0 = 0.0
        self._latest_step = None
        self._progress_timer.start()
        self._set_state(RunState.TRAINING)
        self.run_changed.emit(self.run_dir)

    def follow(self, run_dir: Path, epochs_total: int) -> None:
        """Show a run that another process writes, live, until it ends or another run is shown."""
        if self.is_training:
            return
        self.let_go()
        self.history.clear()
        self.run_dir, self.status, self.last_outcome = run_dir, None, None
        self.epochs_total = self.history.epochs_total = epochs_total
        self.control = TrainingControl()
        self._start_follower(run_dir, start_following)
        self._progress_timer.start()
        self._set_state(RunState.FOLLOWING)
        self.run_changed.emit(run_dir)
        how = "" if self.steerable else " (read-only: its folder is not writable from here)"
        self._say(f"following run {run_dir.name}{how}")

    def _start_follower(self, run_dir: Path, start: Callable[..., Any], launch: Launch | None = None) -> None:
        def connect(thread: QThread, worker: RunFollowWorker) -> None:
            self.relay = FollowRelay(self, thread, worker)

        assert self.control is not None
        self.worker_thread, self.worker = start(
            run_dir, self.epochs_total, self.control, launch=launch, connect=connect
        )
        self._fit_t0, self._fit_frac0, self._latest_step = time.perf_counter(), 0.0, None

    def let_go(self) -> None:
        """Stop following the followed run (it goes on in its own process)."""
        if self.state != RunState.FOLLOWING or self.relay is None:
            return
        self.relay.let_go()
        self._let_go.append(self.relay)
        self.relay, self.worker_thread, self.worker, self.control = None, None, None, None
        self._progress_timer.stop()

    def _connect_worker(self, worker: TrainingWorker) -> None:
        # Bound methods of this object only: PySide queues those to the GUI thread. A lambda here
        # would run in the worker's thread.
        worker.fit_started.connect(self._on_fit_started)
        worker.step_ended.connect(self._on_steps)
        worker.epoch_ended.connect(self._on_epoch_ended)
        worker.samples_predicted.connect(self.samples_predicted)
        worker.message.connect(self.message)
        worker.finished.connect(self._on_finished)

    # -- steering ----------------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        if self.control is None or not self.live_control or self.state == RunState.STOPPING:
            return
        if self.state == RunState.FOLLOWING:  # the run's own records show when it pauses
            (self.control.resume if self.control.paused else self.control.pause)()
            self.notice.emit(f"Asked the run to {'pause' if self.control.paused else 'resume'} (control.json)", 5000)
            return
        if self.control.paused:
            self.control.resume()
            self._set_state(RunState.TRAINING)
            self._say("resumed")
        else:
            self.control.pause()
            self._set_state(RunState.PAUSED)
            self._say("paused: training waits at the next batch")

    def stop(self) -> None:
        if self.control is None or not self.steerable:
            return
        self.control.stop()
        if self.state == RunState.FOLLOWING:
            self.notice.emit("Asked the run to stop at its next step (control.json)", 0)
            return
        self._set_state(RunState.STOPPING)
        self.notice.emit("Stopping at the next batch…", 0)

    def close_when_stopped(self) -> None:
        """Stop the run; `close_ready` follows once it has saved itself."""
        self.close_after_stop = True
        self.stop()

    def set_lr(self, lr: float) -> None:
        if self.control is not None and self.live_control and self.state != RunState.STOPPING:
            self.control.set_lr(lr)
            self.notice.emit(f"Learning rate → {lr:g} from the next step", 5000)

    def set_batch_size(self, n: int) -> None:
        if self.control is not None and self.live_control and self.state != RunState.STOPPING:
            self.control.set_batch_size(n)
            self.notice.emit(f"Batch size → {n} from the next batch", 5000)

    # -- the worker's signals (GUI thread) -----------------------------------------------------------

    def _on_fit_started(self, e: FitStart) -> None:
        self.epochs_total = self.history.epochs_total = e.epochs
        self._fit_t0 = time.perf_counter()
        self._fit_frac0 = (e.start_epoch - 1) / max(e.epochs, 1)
        if e.resumed:  # the curves so far, from the file the run continues
            self.history.load_records(read_metrics(Path(e.run_dir)), e.epochs)
        self.run_started.emit(e)

    def _on_loaded(self, records: list[Record]) -> None:
        """A followed run's whole metrics.jsonl: when following starts, and again after a resume rewrote it."""
        self.history.load_records(records, self.epochs_total)
        steps = [r for r in records if isinstance(r, StepRecord)]
        if steps:
            self._latest_step = steps[-1]
            self._fit_frac0 = (steps[-1].epoch_float) / max(self.epochs_total, 1)

    def _on_steps(self, records: list[StepRecord]) -> None:
        if records:
            if not self._run_objects_frozen:
                self._run_objects_frozen = True
                freeze_run_objects()  # the run's set-up stays out of the collector's scans while it trains
            self.history.add_records(records)
            self._latest_step = records[-1]

    def _on_epoch_ended(self, e: EpochEnd) -> None:
        self.history.add_records(e.records)
        self.epoch_ended.emit(e)

    def _emit_progress(self) -> None:
        e, self._latest_step = self._latest_step, None
        if e is None:
            return
        epochs = max(self.epochs_total, 1)
        fraction = (e.epoch - 1 + (e.epoch_progress or 0.0)) / epochs
        eta = remaining_seconds(time.perf_counter() - self._fit_t0, fraction - self._fit_frac0, 1.0 - self._fit_frac0)
        self.progressed.emit(RunProgress(e, epochs, fraction, eta))

    def _on_finished(self, outcome: RunOutcome) -> None:
        self._emit_progress()
        self._progress_timer.stop()
        self.last_outcome = outcome
        self.status = outcome.status
        self.finished.emit(outcome)

    def _on_thread_finished(self) -> None:
        thread, worker = self.worker_thread, self.worker
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        if worker is not None:
            worker.deleteLater()
        if self.relay is not None:
            self.relay.deleteLater()
        self.worker_thread, self.worker, self.control, self.relay = None, None, None, None
        sys.setswitchinterval(self._switch_interval)
        self._progress_timer.stop()
        application().removeEventFilter(self._quit_watcher)
        if self._run_objects_frozen:
            self._run_objects_frozen = False
            release_run_objects()
        if self.run_dir is not None and not self.run_dir.exists():
            self.run_dir = None  # the setup failed before the run folder was made
            self.run_changed.emit(None)
        status = self.status or "failed"
        self._set_state(RunState.of_status(status, RunState.FAILED))
        outcome = self.last_outcome or RunOutcome(str(self.run_dir or ""), status)
        if self.close_after_stop:
            if outcome.error is not None:  # no dialog on the way out: the log and stderr keep the reason
                print(f"error: {outcome.error.message}", file=sys.stderr)
            self.close_ready.emit(self.quit_requested)
            return
        self.run_ended.emit(outcome)

    def _on_quit_requested(self) -> None:
        self.quit_requested = True

    def prepare_quit(self) -> None:
        """The application is about to quit: a run still training ends without dialogs."""
        if self.is_training:
            self.close_after_stop = True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Stop any run and wait for its thread while events flow; True when none is left running."""
        self.let_go()
        if self.control is not None:
            self.control.stop()
        deadline = time.perf_counter() + timeout_s
        while (self.worker_thread is not None or self._following()) and time.perf_counter() < deadline:
            QApplication.processEvents()
            time.sleep(0.005)
        return self.worker_thread is None

    def _following(self) -> bool:
        """Whether a run let go of still has its thread (it ends at its next look at the folder)."""
        self._let_go = [r for r in self._let_go if _alive(r)]
        return bool(self._let_go)

    # -- showing runs ------------------------------------------------------------------------------

    def show_run(self, run_dir: Path, epochs_total: int, records: Sequence[Record], summary: dict[str, Any]) -> None:
        """Show a run read from its folder: its curves, its end state."""
        self.let_go()
        self.history.load_records(records, epochs_total)
        self.run_dir, self.epochs_total, self.last_outcome = run_dir, epochs_total, None
        self.status = summary.get("status") or ("stopped" if records else None)
        done = int(summary.get("epochs_completed") or 0)
        self.run_opened.emit(OpenedRun(run_dir, self.status, done, epochs_total, len(records)))
        self.run_changed.emit(run_dir)
        self._set_state(RunState.of_status(self.status, RunState.READY))
        what = STATE_LABELS[RunState(self.status)] if self.status in ENDED_STATUSES else "no summary"
        self._say(f"opened run {run_dir.name} ({what}, {done} epoch(s), {len(records)} records)")

    def forget(self) -> None:
        """Show no run: an empty window for a new setup."""
        if self.is_training:
            return
        self.let_go()
        self.run_dir, self.status, self.last_outcome = None, None, None
        self.history.clear()
        self.run_forgotten.emit()
        self.run_changed.emit(None)
        self._set_state(RunState.READY)

    def _set_state(self, state: RunState) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _on_diverged(self, _marker: int, why: str) -> None:
        """The loss exploded after a live change: say so in the log and the status bar (the plot marks it red)."""
        text = why[:1].upper() + why[1:]
        self.message.emit(Message(text, "warning"))
        self.notice.emit(f"⚠ {text}", 20000)

    def _say(self, text: str) -> None:
        self.message.emit(Message(text))


def _alive(relay: FollowRelay) -> bool:
    try:
        return not relay.worker_thread.isFinished()
    except RuntimeError:  # deleted once it had ended
        return False
