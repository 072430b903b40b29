"""`run_gui(target)`: open the studio window (what `studio` and `studio gui [CONFIG|RUN_DIR]` call)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_T0 = time.perf_counter()


def run_gui(target: str | None = None) -> int:
    """Show the main window on `target` (a config TOML or a run folder) and run the event loop.

    Returns the exit code: 0 after a normal close, 2 when `target` cannot be opened.
    STUDIO_SELF_TEST=train presses Train once the engine is ready and quits when the run ends
    (exit 0 if it completed): how packaging/test_app.py sees a packaged app's window train.
    STUDIO_STARTUP_TIMING=1 prints the time to the first paint and to the loaded engine on stderr
    (=exit also quits then, for benchmarks/gui_startup.py; STUDIO_LAUNCH_T, a `time.time()`
    taken before the process started, adds the time since launch).
    """
    if sys.platform == "win32":
        # On Windows, torch >= 2.9 cannot load c10.dll once Qt's libraries are in the process
        # (pytorch/pytorch#166628): there torch comes first, and the first paint waits for it.
        import torch  # noqa: F401 - loaded before Qt, for the reason above

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from studio.config import load_config
    from studio.errors import StudioError
    from studio.ui.settings import app_settings
    from studio.ui.theme import app_icon, apply_theme

    config = None
    run_dir: Path | None = None
    if target:
        path = Path(target).expanduser()
        if path.is_dir():
            from studio.engine.run_dir import check_run_dir

            try:
                run_dir = check_run_dir(path)
            except StudioError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        else:
            try:
                config = load_config(path)
            except StudioError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2

    if sys.platform.startswith("linux") and not QApplication.instance():
        # Qt would abort the process with a page about plugins; say what is wrong in one line instead.
        from studio.ui.platform_check import (
            has_display,
            no_display_message,
            plugin_load_error,
            run_platform,
            x11_display_error,
        )

        if not has_display():
            print(no_display_message(), file=sys.stderr)
            return 2
        platform = run_platform()
        problem = plugin_load_error(platform)
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        unreachable = x11_display_error(os.environ.get("DISPLAY")) if platform == "xcb" else None
        if unreachable is not None:
            print(no_display_message(why=unreachable), file=sys.stderr)
            return 2
    running = QApplication.instance()
    app = running if isinstance(running, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Studio")
    app.setOrganizationName("studio")
    app.setApplicationDisplayName("Studio")
    app.setDesktopFileName("studio")
    app.setWindowIcon(app_icon())
    apply_theme(app, str(app_settings().value("view/theme", "system")))

    from studio.ui.main_window import MainWindow

    window = MainWindow(config)
    if run_dir is not None:
        window.open_run(run_dir)
    timing = os.environ.get("STUDIO_STARTUP_TIMING")
    if timing:
        launch = float(os.environ.get("STUDIO_LAUNCH_T", "nan"))

        def on_paint() -> None:
            since = f"{time.time() - launch:.3f}s after launch, " if launch == launch else ""
            print(
                f"first paint: {since}{time.perf_counter() - _T0:.3f}s after studio.ui.app was imported "
                f"(window built and painted in {window.first_paint_s:.3f}s; torch not yet imported: "
                f"{'torch' not in sys.modules})",
                file=sys.stderr,
            )

        def on_engine() -> None:
            print(
                f"engine ready (torch imported on the GUI thread: {window.torch_thread_is_gui}, in "
                f"{window.torch_import_s:.3f}s): "
                f"{time.perf_counter() - _T0:.3f}s after studio.ui.app was imported",
                file=sys.stderr,
            )
            if timing == "exit":
                QTimer.singleShot(0, app.quit)

        window.first_painted.connect(on_paint)
        window.engine_loaded.connect(on_engine)
    if os.environ.get("STUDIO_SELF_TEST") == "train":
        _train_once_then_quit(app, window)
    window.show()
    with _quit_on_signals(app):
        return int(app.exec())


@contextlib.contextmanager
def _quit_on_signals(app: Any) -> Iterator[None]:
    """SIGTERM and Ctrl-C (SIGINT) quit the application as `app.quit()` does while it runs.

    A run that trains stops at its next step and saves itself, and the process exits with 0. Python
    runs a signal handler only between bytecodes of the main thread, which sits in Qt's C++ loop:
    the wake-up file descriptor turns the signal into a socket event Qt waits on, so the handler
    runs at once. A second signal ends the process at once (the run keeps its last checkpoint).
    """
    import signal
    import socket
    import threading

    from PySide6.QtCore import QSocketNotifier, QTimer

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def drain() -> None:  # running any Python here lets the interpreter call the handler below
        with contextlib.suppress(OSError):
            reader.recv(256)

    def on_signal(signum: int, _frame: Any) -> None:
        signal.signal(signum, signal.SIG_DFL)
        print(
            f"studio: {signal.Signals(signum).name}: quitting (a training run stops at its next step and is "
            "saved; send it again to quit at once)",
            file=sys.stderr,
        )
        QTimer.singleShot(0, app.quit)

    notifier.activated.connect(drain)
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    old_handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_fd)
        notifier.setEnabled(False)
        reader.close()
        writer.close()


def _train_once_then_quit(app: Any, window: Any) -> None:
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QMessageBox, QToolButton

    class FailOnMessageBox(QObject):
        """A message box means something went wrong, and nobody is there to close it: fail instead."""

        def eventFilter(self, watched: Any, event: Any) -> bool:
            if event.type() == QEvent.Type.Show and isinstance(watched, QMessageBox):
                print(
                    f"self-test: the window said '{watched.windowTitle()}': "
                    f"{watched.informativeText() or watched.text()}",
                    file=sys.stderr,
                )
                app.exit(1)  # also ends the message box's own event loop
            return False

    def press_train() -> None:
        button = window.findChild(QToolButton, "trainButton")
        if button is None or not button.isEnabled():
            print("self-test: the Train button is not there or not enabled", file=sys.stderr)
            app.exit(1)
            return
        button.click()

    def on_finished(outcome: Any) -> None:
        print(f"self-test: run {outcome.status} in {outcome.run_dir}", file=sys.stderr)
        app.exit(0 if outcome.status == "completed" and outcome.error is None else 1)

    window.self_test_filter = FailOnMessageBox(window)
    app.installEventFilter(window.self_test_filter)
    window.engine_loaded.connect(press_train)
    window.run_finished.connect(on_finished)
