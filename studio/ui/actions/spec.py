"""What an action is (`ActionSpec`), what it acts on (`ActionTarget`), and how it becomes a `QAction`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from studio.ui.theme import themed_icon

Shortcut = str | QKeySequence.StandardKey | None


class ActionTarget(Protocol):
    """The window, as the menus see it: the commands they run."""

    def start_training(self, resume: bool = False) -> bool: ...
    def toggle_pause(self) -> None: ...
    def stop_training(self) -> None: ...
    def export_current_run(self) -> None: ...
    def open_lr_finder(self) -> None: ...
    def new_setup(self) -> None: ...
    def choose_config(self) -> None: ...
    def save_config_as(self) -> None: ...
    def choose_run(self) -> None: ...
    def choose_follow_run(self) -> None: ...
    def fill_recent_menu(self, menu: QMenu) -> None: ...
    def set_theme(self, name: str) -> None: ...
    def close(self) -> bool: ...


@dataclass(frozen=True)
class ActionSpec:
    """One menu or toolbar action: `trigger(window)` runs when it is chosen."""

    name: str
    text: str
    tip: str
    trigger: Callable[[ActionTarget], Any]
    icon: str | None = None
    shortcut: Shortcut = None


def make_action(window: QWidget, spec: ActionSpec) -> QAction:
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
    target = cast(ActionTarget, window)  # the main window: a QWidget that has the commands
    action.triggered.connect(lambda _checked=False: spec.trigger(target))
    return action
