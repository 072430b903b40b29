"""Open the studio offscreen, press Train, and at the first step leave the program in the way asked.

    python tests/ui/quit_while_training.py HOW CONFIG.toml

HOW is one of:
  quit    `app.quit()` from the program (Qt 6 closes the windows first)
  exit    `app.exit(0)`: the event loop returns without closing any window
  close   the window's close button, with "Stop and close?" answered Yes
  end     the script simply ends: no event loop ever ran, nothing is closed
  signal  nothing here: the test sends SIGTERM or SIGINT to this process, which runs the real
          `studio gui` code (`run_gui`), once it has printed "first step"

Every way but `end` runs through `studio.ui.app.run_gui`, the `studio` command's own code. The first
logged step holds the training thread until the quit has asked the run to stop, so the quit always
lands while the run trains, however loaded the machine is; the run then stops at its next step.
Runs go under $STUDIO_RUNS_DIR. Prints "first step" (flushed) when the run has reached it.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QToolButton

import studio.ui.main_window as main_window
from studio.config import load_config

HOW = sys.argv[1]
CONFIG = Path(sys.argv[2])
HOLD_S = 120.0  # a hang guard only: the quit releases the hold at once


class Driver(QObject):
    """Lives on the GUI thread: the worker's first step reaches `act` through a queued signal."""

    first_step = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.window: Any = None
        self.acted = False
        self.first_step.connect(self.act, Qt.ConnectionType.QueuedConnection)

    def window_ready(self, window: Any) -> None:
        self.window = window
        window.findChild(QToolButton, "trainButton").click()
        held = threading.Event()
        control = window.control

        def on_steps(_batch: Any) -> None:  # on the training thread (direct connection)
            if held.is_set():
                return
            held.set()
            print("first step", flush=True)
            self.first_step.emit()
            for _ in range(int(HOLD_S * 100)):  # hold the run inside its first step until the quit stops it
                if control.stop_requested:
                    return
                threading.Event().wait(0.01)

        window._worker.step_ended.connect(on_steps, Qt.ConnectionType.DirectConnection)

    @Slot()
    def act(self) -> None:
        app = QApplication.instance()
        if HOW == "quit":
            app.quit()
        elif HOW == "exit":
            app.exit(0)
        elif HOW == "close":
            QTimer.singleShot(0, answer_yes)
            self.window.close()
        self.acted = True


def answer_yes() -> None:
    """Click Yes in the "Training is running" question, as the user would."""
    box = QApplication.activeModalWidget()
    if isinstance(box, QMessageBox) and box.button(QMessageBox.StandardButton.Yes) is not None:
        box.button(QMessageBox.StandardButton.Yes).click()
    else:
        QTimer.singleShot(10, answer_yes)


driver = Driver()
_load_engine = main_window.MainWindow.load_engine


def load_engine_then_train(self: Any) -> None:
    first = not self._engine_ready
    _load_engine(self)
    if first:
        QTimer.singleShot(0, lambda: driver.window_ready(self))


main_window.MainWindow.load_engine = load_engine_then_train  # type: ignore[method-assign]

if HOW == "end":
    app = QApplication(sys.argv[:1])
    window = main_window.MainWindow(load_config(CONFIG))
    window.show()
    while not driver.acted:
        app.processEvents()
    sys.exit(0)  # with the run training: the interpreter's exit must stop and save it

from studio.ui.app import run_gui  # noqa: E402 - the `end` way above never loads run_gui

sys.exit(run_gui(str(CONFIG)))
