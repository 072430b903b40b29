"""`RunToolBar`: the run controls on top (Train, Pause, Stop, Continue, Export, LR Finder), the run's name and state."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolBar, QToolButton, QWidget

from studio.ui.actions.run_menu import BUTTONS
from studio.ui.actions.window_actions import WindowActions
from studio.ui.run_controller import RunController, RunState
from studio.ui.theme import ON_ACCENT, current_theme, themed_icon


class RunToolBar(QToolBar):
    """A button per run action (enabled by the actions' table), then the run's name and a state chip."""

    def __init__(self, actions: WindowActions, controller: RunController) -> None:
        super().__init__("Run")
        self.setObjectName("runToolBar")
        self.setMovable(False)
        self.setFloatable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
        self._actions = actions
        self.buttons: dict[str, QToolButton] = {}
        for object_name, action in BUTTONS:
            if action in ("export", "lr_finder"):
                self.addSeparator()
            button = QToolButton()
            button.setObjectName(object_name)
            button.setDefaultAction(actions[action])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            self.addWidget(button)
            self.buttons[object_name] = button
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)
        self.run_name_label = QLabel("")
        self.run_name_label.setObjectName("runNameLabel")
        self.addWidget(self.run_name_label)
        self.state_label = QLabel(RunState.READY.label)
        self.state_label.setObjectName("runStateLabel")
        self.addWidget(self.state_label)
        controller.state_changed.connect(self.show_state)
        controller.run_changed.connect(self.show_run)

    def show_state(self, state: RunState) -> None:
        self.state_label.setText(state.label)
        self.state_label.setProperty("state", state.value)  # the style sheet colours the chip by state
        self.state_label.style().unpolish(self.state_label)
        self.state_label.style().polish(self.state_label)
        self.apply_theme()

    def show_run(self, run_dir: Path | None) -> None:
        self.run_name_label.setText(run_dir.name if run_dir else "")
        self.run_name_label.setToolTip(str(run_dir) if run_dir else "")

    def apply_theme(self) -> None:
        """Train is the primary action (white on the accent); Stop is red while it can be pressed."""
        train = self.buttons["trainButton"]
        train.style().unpolish(train)
        train.style().polish(train)
        self._actions["train"].setIcon(themed_icon("play", ON_ACCENT))
        stop = self._actions["stop"]
        stop.setIcon(themed_icon("stop", current_theme().danger if stop.isEnabled() else current_theme().disabled))
