"""Help: about the studio."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMenuBar

from studio.ui.actions import ActionSpec, make_action
from studio.ui.dialogs import show_info

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


def show_about(window: "MainWindow") -> None:
    from studio import __version__

    show_info(window, "About Studio", f"Studio {__version__}\n\nTrain neural networks by pointing and clicking, "
              "or headless with `studio train`. PyTorch, Qt (PySide6) and pyqtgraph.")


ACTIONS = (ActionSpec("about", "About Studio", "About this version of the studio", show_about),)


def build(window: "MainWindow", menus: QMenuBar, actions: dict[str, QAction]) -> QMenu:
    menu = menus.addMenu("&Help")
    for spec in ACTIONS:
        actions[spec.name] = make_action(window, spec)
        menu.addAction(actions[spec.name])
    return menu
