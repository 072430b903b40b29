"""`RunDialogs`: the window's two tool dialogs, one of each at a time: Export and the LR finder.

Both are window-modal (`open()`), delete themselves on close and run their work in a
`BackgroundCall`. Asking for one that is already open raises it. An export of the shown run makes
the Predict tab use the file; the LR finder's "Use this rate" sets the learning rate. At close,
the LR finder stops at its next step; an export cannot be interrupted, so the window waits for it
out of sight.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QWidget

from studio.engine.events import Message
from studio.engine.run_dir import RunDir
from studio.errors import StudioError
from studio.ui.dialogs import show_error
from studio.ui.run_controller import RunController
from studio.ui.setup_sidebar import SetupSidebar


class RunDialogs(QObject):
    """Opens and keeps track of the export dialog and the LR finder dialog of `window`.

    `load_engine` imports torch on the GUI thread if the window has not yet (the LR finder needs it).
    """

    exported = Signal(object)  # Path: the shown run, whose model was just exported
    notice = Signal(str, int)  # a status-bar message and how long it shows (ms)
    message = Signal(object)  # Message, for the log

    def __init__(
        self, window: QWidget, controller: RunController, sidebar: SetupSidebar, load_engine: Callable[[], None]
    ) -> None:
        super().__init__(window)
        self.window, self.controller, self.sidebar, self._load_engine = window, controller, sidebar, load_engine
        self.export_dialog: Any = None
        self.lr_finder_dialog: Any = None

    def open_export(self) -> None:
        """Export the shown run (once it has a checkpoint, even while it trains)."""
        run_dir = self.controller.run_dir
        if run_dir is None or not RunDir(run_dir).has_checkpoint():
            return
        if self.export_dialog is not None and self.export_dialog.isVisible():
            self.export_dialog.raise_()
            self.export_dialog.activateWindow()
            return
        from studio.ui.export_dialog import ExportDialog

        dialog = ExportDialog(run_dir, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.resize(max(dialog.width(), 860), max(dialog.height(), 640))  # the report's lines fit
        dialog.exported.connect(lambda report, run=run_dir: self._on_exported(run, report))
        dialog.finished.connect(self._on_export_gone)  # not `destroyed`: that also fires as the window goes
        self.export_dialog = dialog
        dialog.open()

    def open_lr_finder(self) -> None:
        """A learning-rate range test on the setup as it is (never while a run trains)."""
        if self.controller.is_training:
            return
        if self.lr_finder_dialog is not None and self.lr_finder_dialog.isVisible():
            self.lr_finder_dialog.raise_()
            return
        try:
            config = self.sidebar.config()
        except StudioError as exc:
            show_error(self.window, "The setup has a problem", str(exc))
            return
        self._load_engine()
        from studio.ui.lr_finder_dialog import LRFinderDialog

        dialog = LRFinderDialog(config, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.rate_chosen.connect(self.use_learning_rate)
        dialog.finished.connect(self._on_lr_finder_gone)
        self.lr_finder_dialog = dialog
        dialog.open()

    def close_all(self) -> None:
        """The LR finder stops at its next step; an export cannot be interrupted, so it is left to end."""
        if self.lr_finder_dialog is not None:
            self.lr_finder_dialog.stop()
            self.lr_finder_dialog.done(0)

    def use_learning_rate(self, lr: float) -> None:
        self.sidebar.training_panel.lr_spin.setValue(lr)
        self.notice.emit(f"Learning rate set to {lr:.3g} (from the LR finder)", 6000)
        self.message.emit(Message(f"learning rate {lr:.3g} from the LR finder"))

    def _on_exported(self, run_dir: Path, report: dict[str, Any]) -> None:
        if run_dir == self.controller.run_dir:
            self.exported.emit(run_dir)
        self.message.emit(Message(f"exported {report.get('path', 'the model')}"))
        self.notice.emit("Exported: the Predict tab now uses the ONNX model", 8000)

    def _on_export_gone(self, _result: int = 0) -> None:
        self.export_dialog = None

    def _on_lr_finder_gone(self, _result: int = 0) -> None:
        self.lr_finder_dialog = None
