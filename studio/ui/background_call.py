"""Run one plain function on a QThread, let it be cancelled, and hear about it on the GUI thread.

Evaluating a run, loading a data set, inspecting the setup, an export or a learning-rate test take
seconds; the GUI thread must never wait for them. `BackgroundCall(fn).start()` calls `fn(state)` on
its own thread with a `TaskState` (as Orange's `concurrent.TaskState`): the work polls
`state.is_interruption_requested()` where it can stop early, reports a stage with `state(text)`,
a fraction with `state.set_progress_value(x)` (throttled) and streams items with
`state.add_partial_result(item)` (batched, never dropped). The signals are past-tense, as in the
training worker, and arrive on the thread that made the call:

    progressed(str)          a stage, from `state(text)` / `state.set_status(text)`
    progress_changed(float)  the latest fraction done (0..1), at most ten a second
    partial_results(list)    items from `add_partial_result`, oldest first, all before the result
    succeeded(object)        the function's (small, plain) result
    failed(str)              a one-line message for the user
    finished()               always, once the thread has stopped

`request_interruption()` asks the work to stop early (its result still comes); `cancel()` also
drops its result and progress, for a call a newer request made stale. A running call keeps itself
alive until its thread ends, so dropping the last reference is safe, and the application waits
for running calls before it quits (destroying a running QThread aborts the process).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from studio.errors import StudioError

THROTTLE_S = 0.1  # progress values and partial results: at most ten deliveries a second


class TaskState:
    """What the work sees of its call: a cancel flag to poll and ways to report, all thread-safe.

    Calling it with a text reports a stage, so work written as `fn(progress)` reads the same.
    """

    def __init__(self, worker: _CallWorker, interval_s: float = THROTTLE_S) -> None:
        self._worker = worker
        self._interval_s = interval_s
        self._interrupt = threading.Event()
        self._lock = threading.Lock()
        self._partial: list[Any] = []
        self._progress: float | None = None
        self._last_emit = 0.0

    def is_interruption_requested(self) -> bool:
        return self._interrupt.is_set()

    def request_interruption(self) -> None:
        self._interrupt.set()

    def set_status(self, text: str) -> None:
        self._worker.progressed.emit(text)

    def __call__(self, text: str) -> None:
        self.set_status(text)

    def set_progress_value(self, fraction: float) -> None:
        with self._lock:
            self._progress = fraction
        self._flush_if_due()

    def add_partial_result(self, item: Any) -> None:
        with self._lock:
            self._partial.append(item)
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        if time.perf_counter() - self._last_emit >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        """Deliver what is held back now (the call does this before its result)."""
        with self._lock:
            items, self._partial = self._partial, []
            progress, self._progress = self._progress, None
            self._last_emit = time.perf_counter()
        if items:
            self._worker.partial_results.emit(items)
        if progress is not None:
            self._worker.progress_changed.emit(progress)


class _CallWorker(QObject):
    progressed = Signal(str)
    progress_changed = Signal(float)
    partial_results = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, fn: Callable[[TaskState], Any]) -> None:
        super().__init__()
        self._fn = fn
        self.state = TaskState(self)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.state)
        except StudioError as exc:  # the user's input: the message says what to fix
            self.state.flush()
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must reach the user, not kill the thread
            traceback.print_exc()
            self.state.flush()
            self.failed.emit(f"unexpected failure: {type(exc).__name__}: {exc}")
        else:
            self.state.flush()
            self.succeeded.emit(result)
        finally:
            self.done.emit()


class BackgroundCall(QObject):
    """One call of `fn(state)` on a worker thread; start it with `start()`."""

    progressed = Signal(str)
    progress_changed = Signal(float)
    partial_results = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()

    _alive: ClassVar[set[BackgroundCall]] = set()
    _quit_hooked: ClassVar[bool] = False

    def __init__(self, fn: Callable[[TaskState], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("backgroundCallThread")
        self._worker = _CallWorker(fn)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        # Cross-thread connections to this object's slots are queued: they run on its (GUI) thread.
        self._worker.progressed.connect(self._on_progressed)
        self._worker.progress_changed.connect(self._on_progress_changed)
        self._worker.partial_results.connect(self._on_partial_results)
        self._worker.succeeded.connect(self._on_succeeded)
        self._worker.failed.connect(self._on_failed)
        # Direct: quit() is thread-safe, and the thread must stop even while the GUI thread waits on it.
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._running = False
        self._abandoned = False

    @property
    def state(self) -> TaskState:
        return self._worker.state

    def start(self) -> BackgroundCall:
        BackgroundCall._alive.add(self)
        app = QCoreApplication.instance()
        if app is not None and not BackgroundCall._quit_hooked:
            app.aboutToQuit.connect(BackgroundCall.wait_all)
            BackgroundCall._quit_hooked = True
        self._running = True
        self._thread.start()
        return self

    def is_running(self) -> bool:
        return self._running

    def request_interruption(self) -> None:
        """Ask the work to stop at its next check; what it returns still arrives."""
        self.state.request_interruption()

    def abandon(self) -> None:
        """Drop this call's result and progress: a newer request made them stale."""
        self._abandoned = True

    def cancel(self) -> None:
        """Stop the work where it checks, and drop whatever it still delivers."""
        self.abandon()
        self.request_interruption()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread ends (for shutdown and tests only, never in a GUI handler)."""
        return self._thread.wait(msecs)

    @classmethod
    def running_calls(cls) -> list[BackgroundCall]:
        return [c for c in cls._alive if c.is_running()]

    @classmethod
    def wait_all(cls, msecs: int = 30000) -> bool:
        """Wait for every running call and hear its end (at close and quit); True when none is left running.

        A call's result and `finished` come through this thread's event queue after its thread
        ended; they are delivered here, in order, so that a closing window that waited has no call
        left running afterwards, and a slot that starts a follow-up call is waited for too.
        """
        app = QCoreApplication.instance()
        if app is None or QThread.currentThread() is not app.thread():  # their events are not ours to deliver
            return all(call.wait(msecs) for call in list(cls._alive))
        deadline = time.monotonic() + msecs / 1000
        while calls := cls.running_calls():
            for call in calls:
                if not call.wait(int(max(deadline - time.monotonic(), 0.0) * 1000)):
                    return False
                QCoreApplication.sendPostedEvents(call, 0)
        return True

    @Slot(str)
    def _on_progressed(self, text: str) -> None:
        if not self._abandoned:
            self.progressed.emit(text)

    @Slot(float)
    def _on_progress_changed(self, fraction: float) -> None:
        if not self._abandoned:
            self.progress_changed.emit(fraction)

    @Slot(object)
    def _on_partial_results(self, items: list[Any]) -> None:
        if not self._abandoned:
            self.partial_results.emit(items)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        if not self._abandoned:
            self.succeeded.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._abandoned:
            self.failed.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        if not self._running:
            return
        self._thread.wait()  # `finished` comes just before the thread really ends; this returns at once
        self._running = False
        self.finished.emit()
        # Released from the next turn of the event loop: dropping the last reference here would
        # delete this object inside its own slot, which crashes Qt.
        QTimer.singleShot(0, BackgroundCall._release_finished)

    @classmethod
    def _release_finished(cls) -> None:
        cls._alive = {call for call in cls._alive if call.is_running()}
