"""View: the light, dark or system look (and Show Log, added by the window with its dock)."""

from __future__ import annotations

from typing import cast

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMainWindow, QMenu, QMenuBar

from studio.ui.actions.spec import ActionTarget
from studio.ui.theme import THEMES


def build(window: QMainWindow, menus: QMenuBar, actions: dict[str, QAction]) -> tuple[QMenu, dict[str, QAction]]:
    menu = menus.addMenu("&View")
    themes = menu.addMenu("Theme")
    group = QActionGroup(window)
    theme_actions: dict[str, QAction] = {}
    for name in THEMES:
        action = QAction(name.capitalize(), window, checkable=True)
        action.triggered.connect(lambda _checked=False, n=name: cast(ActionTarget, window).set_theme(n))
        group.addAction(action)
        themes.addAction(action)
        theme_actions[name] = actions[f"theme_{name}"] = action
    return menu, theme_actions
