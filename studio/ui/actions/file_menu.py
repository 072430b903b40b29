"""File: the setup (new, open, save), runs (open, recent) and quitting."""

from __future__ import annotations

from typing import cast

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QMenuBar

from studio.ui.actions.spec import ActionSpec, ActionTarget, make_action

ACTIONS = (
    ActionSpec(
        "new_setup",
        "New Setup",
        "Start over from the default setup",
        lambda w: w.new_setup(),
        shortcut=QKeySequence.StandardKey.New,
    ),
    ActionSpec(
        "open_config",
        "Open Config…",
        "Load a setup from a TOML file",
        lambda w: w.choose_config(),
        shortcut=QKeySequence.StandardKey.Open,
    ),
    ActionSpec(
        "save_config",
        "Save Config As…",
        "Save this setup as a TOML file",
        lambda w: w.save_config_as(),
        shortcut=QKeySequence.StandardKey.Save,
    ),
    ActionSpec(
        "open_run", "Open Run…", "Open a finished or stopped run", lambda w: w.choose_run(), shortcut="Ctrl+Shift+O"
    ),
    ActionSpec(
        "follow_run",
        "Follow Run…",
        "Watch a run another process is writing (the CLI, torchrun, a cluster job on shared storage), live",
        lambda w: w.choose_follow_run(),
    ),
    ActionSpec("quit", "Quit", "Close the studio", lambda w: w.close(), shortcut=QKeySequence.StandardKey.Quit),
)


def build(window: QMainWindow, menus: QMenuBar, actions: dict[str, QAction]) -> QMenu:
    for spec in ACTIONS:
        actions[spec.name] = make_action(window, spec)
    menu = menus.addMenu("&File")
    for name in ("new_setup", "open_config", "save_config"):
        menu.addAction(actions[name])
    menu.addSeparator()
    menu.addAction(actions["open_run"])
    menu.addAction(actions["follow_run"])
    recent = menu.addMenu("Recent Runs")
    recent.setObjectName("recentRunsMenu")
    recent.aboutToShow.connect(lambda: cast(ActionTarget, window).fill_recent_menu(recent))
    actions["recent_runs"] = recent.menuAction()
    menu.addSeparator()
    menu.addAction(actions["quit"])
    return menu
