"""Help: about the studio."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu, QMenuBar, QWidget

from studio.ui.actions.spec import ActionSpec, ActionTarget, make_action
from studio.ui.dialogs import show_info


def show_about(window: ActionTarget) -> None:
    from studio import __version__

    show_info(
        window if isinstance(window, QWidget) else None,
        "About Studio",
        f"Studio {__version__}\n\nTrain neural networks by pointing and clicking, "
        "or headless with `studio train`. PyTorch, Qt (PySide6) and pyqtgraph.",
    )


ACTIONS = (ActionSpec("about", "About Studio", "About this version of the studio", show_about),)


def build(window: QMainWindow, menus: QMenuBar, actions: dict[str, QAction]) -> QMenu:
    menu = menus.addMenu("&Help")
    for spec in ACTIONS:
        actions[spec.name] = make_action(window, spec)
        menu.addAction(actions[spec.name])
    return menu
