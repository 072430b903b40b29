"""The window's actions: one module per menu (as napari's `_qt/_qapp_model/qactions/`), one enabled table.

Each menu module lists its actions as `ActionSpec`s (text, icon, shortcut, tip, and what it does to
the window) and builds its menu; `WindowActions` makes them all, by name, and enables each from
`ENABLED[state]` (and what it needs of the shown run) whenever the run controller's state changes.
An action whose name is in no row of the table (Save Config As…, Quit, the themes) is always on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence

from studio.engine.run_dir import RunDir
from studio.ui.run_controller import RunController, RunState
from studio.ui.theme import themed_icon

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

Shortcut = str | QKeySequence.StandardKey | None


@dataclass(frozen=True)
class ActionSpec:
    """One menu or toolbar action: `trigger(window)` runs when it is chosen."""

    name: str
    text: str
    tip: str
    trigger: Callable[["MainWindow"], Any]
    icon: str | None = None
    shortcut: Shortcut = None


IDLE = frozenset({"train", "resume", "lr_finder", "export", "new_setup", "open_config", "open_run", "recent_runs"})
TRAINING = frozenset({"pause", "stop", "export"})
# What each state allows. A run can be exported as soon as it has a checkpoint, even while it trains.
ENABLED: dict[RunState, frozenset[str]] = {
    RunState.READY: IDLE - {"resume"},
    RunState.TRAINING: TRAINING,
    RunState.PAUSED: TRAINING,
    RunState.STOPPING: frozenset({"export"}),
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


def make_action(window: "MainWindow", spec: ActionSpec) -> QAction:
    action = QAction(spec.text, window)
    action.setObjectName(f"{spec.name}Action")
    if spec.icon:
        action.setIcon(themed_icon(spec.icon))
        action.setData(spec.icon)  # the icon's name, to re-colour it with the theme
    if spec.shortcut is not None:
        action.setShortcut(QKeySequence(spec.shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    key = f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})" if spec.shortcut else ""
    action.setToolTip(f"{spec.tip}{key}")
    action.setStatusTip(spec.tip)
    action.triggered.connect(lambda _checked=False: spec.trigger(window))
    return action


class WindowActions(QObject):
    """Every action of the window by name, with the menu bar built from the menu modules."""

    def __init__(self, window: "MainWindow", controller: RunController) -> None:
        super().__init__(window)
        from studio.ui.actions import file_menu, help_menu, run_menu, view_menu

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
            self.by_name[name].setEnabled(name in ENABLED[state] and NEEDS.get(name, _always)(run))
        paused = state == RunState.PAUSED
        pause = self.by_name["pause"]
        pause.setText("Resume" if paused else "Pause")
        pause.setData("play" if paused else "pause")
        pause.setIcon(themed_icon(pause.data()))

    def apply_theme(self) -> None:
        """Re-colour the icons in the theme's text colour."""
        for action in self.by_name.values():
            if action.data():
                action.setIcon(themed_icon(action.data()))


def _always(_run: RunDir | None) -> bool:
    return True
