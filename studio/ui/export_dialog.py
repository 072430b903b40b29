"""The Export dialog: choose where the ONNX file goes, export in the background, read the proof.

`ExportDialog(run_dir)` defaults to `RUN_DIR/model.onnx`. The export (and its onnxruntime check,
and the optional int8 copy) runs on a worker thread through `export_run`, the same call as
`studio export`; the dialog shows the stage it is at, then the report with the parity figures and
a snippet that runs the file. `exported(dict)` carries the report when a file was written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QFontDatabase, QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.run_dir import RunDir
from studio.ui.background_call import BackgroundCall, TaskState

QUANTIZE_CHOICES = (
    ("No int8 copy", None),
    ("int8, dynamic (weights only, no calibration)", "dynamic"),
    ("int8, static (calibrated on training samples)", "static"),
)


def _export_job(run_dir: Path, output: Path, checkpoint: str, quantize: str | None) -> Callable[[TaskState], Any]:
    """The worker's function: plain values out (the report's text and dict), nothing Qt, no tensors.

    An export cannot be interrupted half-way (the file is checked, then moved into place), so it
    reports its stages through the task state and never polls the cancel flag.
    """

    def job(state: TaskState) -> dict[str, Any]:
        from studio.export.run_export import export_run

        report = export_run(run_dir, output, checkpoint=checkpoint, quantize=quantize, progress=state)
        return {"text": report.format(), "report": report.to_dict(), "snippet": report.snippet}

    return job


class ExportDialog(QDialog):
    """Export a run to ONNX without blocking the window; shows the stage, then the proof."""

    exported = Signal(object)  # the report as a dict, after a file was written

    def __init__(self, run_dir: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.run_dir = Path(run_dir)
        self.setWindowTitle(f"Export {self.run_dir.name} to ONNX")
        self.setMinimumSize(640, 480)
        self._call: BackgroundCall | None = None
        self._snippet = ""
        self.report: dict[str, Any] | None = None
        self.error: str | None = None
        self._close_when_done = False

        self.path_edit = QLineEdit(str(RunDir(self.run_dir).onnx))
        self.path_edit.setObjectName("exportPathEdit")
        self.path_edit.setToolTip(
            "Where the .onnx file goes; an existing file is replaced only after the new one passes its checks"
        )
        self.choose_button = QPushButton("Choose…")
        self.choose_button.setObjectName("exportChooseButton")
        self.choose_button.clicked.connect(self.choose_path)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.choose_button)

        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setObjectName("exportCheckpointCombo")
        self.checkpoint_combo.addItem("best (lowest validation loss)", "best")
        self.checkpoint_combo.addItem("last (end of training)", "last")
        self.quantize_combo = QComboBox()
        self.quantize_combo.setObjectName("exportQuantizeCombo")
        for text, value in QUANTIZE_CHOICES:
            self.quantize_combo.addItem(text, value)
        self.quantize_combo.setToolTip(
            "Also write MODEL.int8.onnx for small devices, and measure its size and accuracy against the float32 file"
        )

        form = QFormLayout()
        form.addRow("File", path_row)
        form.addRow("Checkpoint", self.checkpoint_combo)
        form.addRow("Quantization", self.quantize_combo)

        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("exportProgressBar")
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label = QLabel(
            "The file is checked with onnx.checker and against PyTorch with onnxruntime on validation samples."
        )
        self.status_label.setObjectName("exportStatusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setMinimumHeight(self.status_label.fontMetrics().lineSpacing() * 2 + 6)

        self.report_view = QPlainTextEdit()
        self.report_view.setObjectName("exportReportView")
        self.report_view.setReadOnly(True)
        self.report_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.report_view.setPlaceholderText("The export report appears here.")

        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("exportStartButton")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.copy_button = QPushButton("Copy snippet")
        self.copy_button.setObjectName("exportCopyButton")
        self.copy_button.setToolTip("Copy the Python lines that run the file with onnxruntime")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_snippet)
        self.close_button = QPushButton("Close")
        self.close_button.setObjectName("exportCloseButton")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.report_view, 1)
        layout.addLayout(buttons)

    # -- actions ---------------------------------------------------------------------------------

    def output_path(self) -> Path:
        text = self.path_edit.text().strip()
        path = Path(text).expanduser() if text else RunDir(self.run_dir).onnx
        return path if path.suffix.lower() == ".onnx" else path.with_name(path.name + ".onnx")

    @Slot()
    def choose_path(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Export to ONNX", str(self.output_path()), "ONNX models (*.onnx);;All files (*)"
        )
        if chosen:
            self.path_edit.setText(str(Path(chosen)))

    def is_running(self) -> bool:
        return self._call is not None and self._call.is_running()

    @Slot()
    def start_export(self) -> None:
        if self.is_running():
            return
        self.report, self.error = None, None
        self.report_view.clear()
        self.copy_button.setEnabled(False)
        self._set_busy(True)
        self.status_label.setText("Starting the export…")
        job = _export_job(
            self.run_dir, self.output_path(), self.checkpoint_combo.currentData(), self.quantize_combo.currentData()
        )
        self._call = BackgroundCall(job)  # owned by this Python reference, so its thread object is too
        self._call.progressed.connect(self._on_progress)
        self._call.succeeded.connect(self._on_succeeded)
        self._call.failed.connect(self._on_failed)
        self._call.finished.connect(self._on_finished)
        self._call.start()

    @Slot()
    def copy_snippet(self) -> None:
        if self._snippet:
            QGuiApplication.clipboard().setText(self._snippet)
            self.status_label.setText("Snippet copied to the clipboard.")

    # -- worker results (GUI thread) -------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self.progress_bar.setRange(0, 0 if busy else 1)  # 0..0 is Qt's "busy" animation
        self.progress_bar.setValue(0 if busy else 1)
        for w in (
            self.export_button,
            self.choose_button,
            self.path_edit,
            self.checkpoint_combo,
            self.quantize_combo,
            self.close_button,
        ):
            w.setEnabled(not busy)

    @Slot(str)
    def _on_progress(self, stage: str) -> None:
        self.status_label.setText(stage[:1].upper() + stage[1:] + "…")

    @Slot(object)
    def _on_succeeded(self, result: dict[str, Any]) -> None:
        self.report = result
        self._snippet = result["snippet"]
        self.report_view.setPlainText(result["text"])
        report = result["report"]
        parity = report["parity"]
        agreement = (
            f", top-1 agreement {parity['top1_agreement'] * 100:.1f}%" if parity["top1_agreement"] is not None else ""
        )
        self.status_label.setText(
            f"Exported and checked: onnxruntime matches PyTorch on {parity['samples']} "
            f"samples (max abs difference {parity['max_abs_diff']:.2g}{agreement})."
        )
        self.copy_button.setEnabled(True)
        self.exported.emit(report)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.error = message
        self.status_label.setText("The export failed; nothing was written.")
        self.report_view.setPlainText(f"error: {message}")

    @Slot()
    def _on_finished(self) -> None:
        self._set_busy(False)
        if self.report is not None:
            self.progress_bar.setValue(1)
        if self._close_when_done:
            self.close()

    # -- closing while the export runs: it cannot be interrupted, so the dialog stays --------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.is_running():
            self.status_label.setText("The export is still running; the dialog closes once it is done.")
            self._close_when_done = True
            event.ignore()
            return
        super().closeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.is_running():
            event.ignore()
            return
        super().keyPressEvent(event)

    def reject(self) -> None:
        if not self.is_running():
            super().reject()
