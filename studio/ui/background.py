"""Run one function off the GUI thread and get its result back on the GUI thread, as a signal.

Evaluating a run, loading a data set or a learning-rate test take seconds; the GUI thread must
never wait for them. `BackgroundCall(fn).start()` runs `fn` in a `QThread`; `finished(result)` or
`errored(message)` arrive on the GUI thread (a queued connection, since the call object lives
there). Calls keep themselves alive until their thread ends, so dropping the reference is safe.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, ClassVar

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from studio.errors import StudioError


class _Runner(QObject):
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._fn = fn

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn()
        except StudioError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must reach the user, not kill the thread
            traceback.print_exc()
            self.failed.emit(f"unexpected failure: {type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(result)


class BackgroundCall(QObject):
    """One function call in a worker thread; signals come back on the thread that made the call."""

    finished = Signal(object)  # the function's return value
    errored = Signal(str)  # a one-line message for the user

    _alive: ClassVar[set["BackgroundCall"]] = set()
    _quit_hooked: ClassVar[bool] = False

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._thread = QThread()
        self._runner = _Runner(fn)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.succeeded.connect(self._on_succeeded)
        self._runner.failed.connect(self._on_failed)
        self._thread.finished.connect(self._on_thread_finished)
        self._done = False

    def start(self) -> "BackgroundCall":
        BackgroundCall._alive.add(self)
        app = QCoreApplication.instance()
        if app is not None and not BackgroundCall._quit_hooked:
            # Destroying a running QThread aborts the process: let running calls end before exit.
            app.aboutToQuit.connect(BackgroundCall.wait_all)
            BackgroundCall._quit_hooked = True
        self._thread.start()
        return self

    @classmethod
    def wait_all(cls, ms: int = 30000) -> None:
        for call in list(cls._alive):
            call.wait(ms)

    def is_running(self) -> bool:
        return not self._done

    def wait(self, ms: int = 30000) -> bool:
        """Block until the thread ends (for shutdown and tests only, never in a GUI handler)."""
        return self._thread.wait(ms)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self._thread.quit()
        self.finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._thread.quit()
        self.errored.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._thread.wait()  # `finished` comes just before the thread really ends; this returns at once
        self._done = True
        BackgroundCall._alive.discard(self)
