"""Run one plain function on a QThread and hear about it on the GUI thread.

Evaluating a run, loading a data set, an export or a learning-rate test take seconds; the GUI
thread must never wait for them. `BackgroundCall(fn).start()` calls `fn(progress)` on its own
thread; `progress(text)` may be called from there to report a stage. The signals are past-tense,
as in the training worker, and arrive on the thread that made the call:

    progressed(str)      a stage, from `progress(text)`
    succeeded(object)    the function's (small, plain) result
    failed(str)          a one-line message for the user
    finished()           always, once the thread has stopped

A running call keeps itself alive until its thread ends, so dropping the last reference is safe,
and the application waits for running calls before it quits (destroying a running QThread aborts
the process). `abandon()` drops a stale call's result: a newer request replaced it.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable, ClassVar

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from studio.errors import StudioError

Progress = Callable[[str], None]


class _CallWorker(QObject):
    progressed = Signal(str)
    succeeded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, fn: Callable[[Progress], Any]) -> None:
        super().__init__()
        self._fn = fn

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.progressed.emit)
        except StudioError as exc:  # the user's input: the message says what to fix
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must reach the user, not kill the thread
            traceback.print_exc()
            self.failed.emit(f"unexpected failure: {type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(result)
        finally:
            self.done.emit()


class BackgroundCall(QObject):
    """One call of `fn(progress)` on a worker thread; start it with `start()`."""

    progressed = Signal(str)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()

    _alive: ClassVar[set["BackgroundCall"]] = set()
    _quit_hooked: ClassVar[bool] = False

    def __init__(self, fn: Callable[[Progress], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("backgroundCallThread")
        self._worker = _CallWorker(fn)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        # Cross-thread connections to this object's slots are queued: they run on its (GUI) thread.
        self._worker.progressed.connect(self._on_progressed)
        self._worker.succeeded.connect(self._on_succeeded)
        self._worker.failed.connect(self._on_failed)
        # Direct: quit() is thread-safe, and the thread must stop even while the GUI thread waits on it.
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._running = False
        self._abandoned = False

    def start(self) -> "BackgroundCall":
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

    def abandon(self) -> None:
        """Drop this call's result and progress: a newer request made them stale."""
        self._abandoned = True

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread ends (for shutdown and tests only, never in a GUI handler)."""
        return self._thread.wait(msecs)

    @classmethod
    def running_calls(cls) -> list["BackgroundCall"]:
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
