"""`WindowActions`: every action of the window by name, enabled from one `RunState -> enabled` table.

An action whose name is in no row of `ENABLED` (Save Config As…, Quit, the themes, About) is always on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow

from studio.engine.run_dir import RunDir
from studio.ui.actions import file_menu, help_menu, run_menu, view_menu
from studio.ui.run_controller import RunController, RunState
from studio.ui.theme import themed_icon

IDLE = frozenset(
    {"train", "resume", "lr_finder", "export", "new_setup", "open_config", "open_run", "recent_runs", "follow_run"}
)
TRAINING = frozenset({"pause", "stop", "export"})
# A followed run is another process's: the window may show something else at any time. Pause and
# Stop reach it only through control.json (`STEERING`).
FOLLOWING = frozenset({"pause", "stop", "export", "new_setup", "open_config", "open_run", "recent_runs", "follow_run"})
# What each state allows. A run can be exported as soon as it has a checkpoint, even while it trains.
ENABLED: dict[RunState, frozenset[str]] = {
    RunState.READY: IDLE - {"resume"},
    RunState.TRAINING: TRAINING,
    RunState.PAUSED: TRAINING,
    RunState.STOPPING: frozenset({"export"}),
    RunState.FOLLOWING: FOLLOWING,
    RunState.COMPLETED: IDLE,
    RunState.EARLY_STOPPED: IDLE,
    RunState.STOPPED: IDLE,
    RunState.FAILED: IDLE,
}
# ... and what an action needs of the shown run on top of its state.
NEEDS: dict[str, Callable[[RunDir | None], bool]] = {
    "export": lambda run: run is not None and run.has_checkpoint(),
    "resume": lambda run: run is not None and run.has_checkpoint("last"),
}
MANAGED = frozenset().union(*ENABLED.values())
STEERING: dict[str, Callable[[RunController], bool]] = {
    "pause": lambda c: c.live_control,
    "stop": lambda c: c.steerable,
}


class WindowActions(QObject):
    """Every action of the window by name, with the menu bar built from the menu modules."""

    def __init__(self, window: QMainWindow, controller: RunController) -> None:
        super().__init__(window)
        self.controller = controller
        self.by_name: dict[str, QAction] = {}
        menus = window.menuBar()
        self.file_menu = file_menu.build(window, menus, self.by_name)
        self.run_menu = run_menu.build(window, menus, self.by_name)
        self.view_menu, self.theme_actions = view_menu.build(window, menus, self.by_name)
        self.help_menu = help_menu.build(window, menus, self.by_name)
        controller.state_changed.connect(self.refresh)
        controller.run_changed.connect(self.refresh)
        controller.epoch_ended.connect(self.refresh)  # the first checkpoint makes the run exportable

    def __getitem__(self, name: str) -> QAction:
        return self.by_name[name]

    def refresh(self, *_: Any) -> None:
        state, run_dir = self.controller.state, self.controller.run_dir
        run = RunDir(Path(run_dir)) if run_dir is not None else None
        for name in MANAGED:
            steer = STEERING.get(name, lambda _c: True)(self.controller)
            self.by_name[name].setEnabled(name in ENABLED[state] and NEEDS.get(name, _always)(run) and steer)
        paused = state == RunState.PAUSED
        pause = self.by_name["pause"]
        icon = "play" if paused else "pause"
        if pause.data() != icon:  # refresh runs at every epoch's end: only a change repaints the toolbar
            pause.setText("Resume" if paused else "Pause")
            pause.setData(icon)
            pause.setIcon(themed_icon(icon))

    def apply_theme(self) -> None:
        """Re-colour the icons in the theme's text colour."""
        for action in self.by_name.values():
            if action.data():
                action.setIcon(themed_icon(action.data()))


def _always(_run: RunDir | None) -> bool:
    return True
