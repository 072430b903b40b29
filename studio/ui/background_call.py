"""Run one plain function on a QThread and hear about it on the GUI thread.

`BackgroundCall(fn)` calls `fn(progress)` on its own thread; `progress(text)` may be called from
there to report a stage. The signals are past-tense, as in the training worker: `progressed(str)`,
`succeeded(object)` with the function's (small, plain) result, `failed(str)` with a message for
the user, and always `finished()` once the thread has stopped.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from studio.errors import StudioError


class _CallWorker(QObject):
    progressed = Signal(str)
    succeeded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, fn: Callable[[Callable[[str], None]], Any]) -> None:
        super().__init__()
        self._fn = fn

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.progressed.emit)
        except StudioError as exc:  # the user's input: the message says what to fix
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - the GUI shows every failure instead of dying
            self.failed.emit(f"{type(exc).__name__}: {exc}")
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

    def __init__(self, fn: Callable[[Callable[[str], None]], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._worker = _CallWorker(fn)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        # Signal-to-signal connections across threads are queued: slots run on the GUI thread.
        self._worker.progressed.connect(self.progressed)
        self._worker.succeeded.connect(self.succeeded)
        self._worker.failed.connect(self.failed)
        # Direct: quit() is thread-safe, and the thread must stop even while the GUI thread waits on it.
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._running = False

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def is_running(self) -> bool:
        return self._running

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread ends (for shutdown only; the GUI never waits on it otherwise)."""
        return self._thread.wait(msecs)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._running = False
        self.finished.emit()
