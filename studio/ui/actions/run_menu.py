"""Run: train, pause, stop, continue, and the tools on a run (export, the LR finder); the toolbar shows them."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu, QMenuBar

from studio.ui.actions.spec import ActionSpec, make_action

ACTIONS = (
    ActionSpec(
        "train", "Train", "Start a new run with this setup", lambda w: w.start_training(), "play", "Ctrl+Return"
    ),
    ActionSpec("pause", "Pause", "Pause or resume the running training", lambda w: w.toggle_pause(), "pause", "Ctrl+P"),
    ActionSpec(
        "stop", "Stop", "Stop the run; it is saved and can be resumed", lambda w: w.stop_training(), "stop", "Ctrl+."
    ),
    ActionSpec(
        "resume",
        "Continue Run",
        "Resume the current run from its last checkpoint (raise Epochs to train a finished run further)",
        lambda w: w.start_training(resume=True),
        "resume",
        "Ctrl+R",
    ),
    ActionSpec(
        "export",
        "Export",
        "Export the current run's model to ONNX",
        lambda w: w.export_current_run(),
        "export",
        "Ctrl+E",
    ),
    ActionSpec(
        "lr_finder",
        "LR Finder",
        "Find a good learning rate for this setup with a short range test",
        lambda w: w.open_lr_finder(),
        "lr-finder",
        "Ctrl+Shift+L",
    ),
)
# The toolbar's buttons, by objectName (CONTRACT.md names the first four).
BUTTONS = (
    ("trainButton", "train"),
    ("pauseButton", "pause"),
    ("stopButton", "stop"),
    ("resumeButton", "resume"),
    ("exportButton", "export"),
    ("lrFinderButton", "lr_finder"),
)


def build(window: QMainWindow, menus: QMenuBar, actions: dict[str, QAction]) -> QMenu:
    for spec in ACTIONS:
        actions[spec.name] = make_action(window, spec)
    menu = menus.addMenu("&Run")
    for name in ("train", "pause", "stop", "resume"):
        menu.addAction(actions[name])
    menu.addSeparator()
    menu.addAction(actions["export"])
    menu.addAction(actions["lr_finder"])
    return menu
