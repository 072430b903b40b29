"""The Predict tab: drop images (or type feature values) and see what the trained model says.

`PredictPanel.set_run(run_dir)` picks the run's exported `model.onnx` when it is up to date, else
its checkpoint, and says which. Images are read with `load_image_for_model`, the same function
`studio predict` uses, so the GUI and the command line agree. Loading the model and predicting both
run on a worker thread, one job at a time; the newest request waits while one runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.export.predict import IMAGE_SUFFIXES, ModelInfo, Predictor
from studio.ui.background_call import BackgroundCall, TaskState
from studio.ui.predict_widgets import DropArea, ProbabilityBars, conversion_note, drop_refusal

PAGE_EMPTY, PAGE_IMAGES, PAGE_FEATURES = 0, 1, 2


def _open_job(run_dir: Path) -> Callable[[TaskState], Any]:
    def job(_state: TaskState) -> Any:
        from studio.export.predict import open_predictor

        return open_predictor(run_dir)

    return job


def _images_job(predictor: Predictor, files: list[Path], top: int) -> Callable[[TaskState], Any]:
    def job(state: TaskState) -> list[dict[str, Any]]:
        from studio.export.predict import predict_files

        results: list[dict[str, Any]] = []
        for path in files:  # one at a time, so one unreadable file does not hide the others' results
            if state.is_interruption_requested():  # another run was chosen: these results are stale
                break
            try:
                results += list(predict_files(predictor, [path], top=top))
            except Exception as exc:  # noqa: BLE001 - shown next to the file
                results.append({"file": str(path), "error": str(exc)})
        return results

    return job


def _features_job(predictor: Predictor, values: list[float], top: int) -> Callable[[TaskState], Any]:
    def job(_state: TaskState) -> dict[str, Any]:
        from studio.export.predict import predict_features

        return predict_features(predictor, values, top=top)

    return job


class PredictPanel(QWidget):
    """Predict with a run's model: images with a top-k chart, or typed feature values."""

    predictor_loaded = Signal(object)  # the ModelInfo, once a run's model is ready
    load_failed = Signal(str)  # why a run's model cannot predict (shown in the panel)
    predicted = Signal(object)  # a list of per-image results, or one feature result

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictPanel")
        self.setAcceptDrops(True)
        self.run_dir: Path | None = None
        self.predictor: Predictor | None = None
        self.info: ModelInfo | None = None
        self.results: dict[str, dict[str, Any]] = {}
        self._call: BackgroundCall | None = None
        self._retired: BackgroundCall | None = None
        self._queued: Callable[[], BackgroundCall | None] | None = None
        self._generation = 0  # results of an older run's job are dropped

        self.source_label = QLabel("No run selected: train or open a run to predict with it.")
        self.source_label.setObjectName("predictSourceLabel")
        self.source_label.setWordWrap(True)
        self.top_spin = QSpinBox()
        self.top_spin.setObjectName("predictTopSpinBox")
        self.top_spin.setRange(1, 10)
        self.top_spin.setValue(5)
        self.top_spin.setPrefix("top ")
        self.top_spin.setToolTip("How many classes the chart shows")
        self.top_spin.valueChanged.connect(self._rerun)
        header = QHBoxLayout()
        header.addWidget(self.source_label, 1)
        header.addWidget(self.top_spin)

        self.stack = QStackedWidget()
        empty = QLabel("Nothing to predict with yet.")
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(empty)
        self.stack.addWidget(self._build_images_page())
        self.stack.addWidget(self._build_features_page())

        self.bar_plot = ProbabilityBars()
        self.result_label = QLabel("")
        self.result_label.setObjectName("predictResultLabel")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.result_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.result_label.setFont(font)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.stack, 3)  # the list of images gets more room than the five bars need
        layout.addWidget(self.result_label)
        layout.addWidget(self.bar_plot, 2)
        self._show_page(PAGE_EMPTY)

    def _build_images_page(self) -> QWidget:
        page = QWidget()
        self.drop_area = DropArea()
        self.drop_area.dropped.connect(self.add_images)
        self.choose_button = QPushButton("Choose images…")
        self.choose_button.setObjectName("predictChooseButton")
        self.choose_button.clicked.connect(self.choose_images)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("predictClearButton")
        self.clear_button.clicked.connect(self.clear_images)
        buttons = QHBoxLayout()
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        self.file_list = QListWidget()
        self.file_list.setObjectName("predictFileList")
        self.file_list.setIconSize(QSize(40, 40))
        self.file_list.currentItemChanged.connect(self._show_current)
        self.preview = QLabel()
        self.preview.setObjectName("predictImagePreview")
        self.preview.setFixedSize(128, 128)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row = QHBoxLayout()
        row.addWidget(self.file_list, 1)
        row.addWidget(self.preview)
        layout = QVBoxLayout(page)
        layout.addWidget(self.drop_area)
        layout.addLayout(buttons)
        layout.addLayout(row, 1)
        return page

    def _build_features_page(self) -> QWidget:
        page = QWidget()
        self.feature_form = QFormLayout()
        self.feature_edits: list[QLineEdit] = []
        self.predict_button = QPushButton("Predict")
        self.predict_button.setObjectName("predictFeaturesButton")
        self.predict_button.clicked.connect(self.predict_features)
        self.feature_error = QLabel("")
        self.feature_error.setObjectName("predictFeatureError")
        self.feature_error.setStyleSheet("color: palette(highlight);")
        layout = QVBoxLayout(page)
        layout.addLayout(self.feature_form)
        layout.addWidget(self.feature_error)
        layout.addWidget(self.predict_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        return page

    # -- choosing the run ---------------------------------------------------------------------

    def set_run(self, run_dir: str | Path | None) -> None:
        """Predict with this run from now on (its up-to-date model.onnx, else its checkpoint)."""
        self._generation += 1
        if self._call is not None:
            self._call.cancel()  # the previous run's job stops where it can; its result is stale
        self.run_dir = Path(run_dir) if run_dir else None
        self.predictor, self.info = None, None
        self._show_page(PAGE_EMPTY)
        self.result_label.clear()
        self.bar_plot.clear_bars()
        if self.run_dir is None:
            self.source_label.setText("No run selected: train or open a run to predict with it.")
            return
        self.source_label.setText(f"Loading the model of {self.run_dir.name}…")
        self._submit(_open_job(self.run_dir), self._on_loaded, self._on_load_failed)

    @Slot(object)
    def _on_loaded(self, predictor: Predictor) -> None:
        self.predictor, self.info = predictor, predictor.info
        info = predictor.info
        origin = Path(info.origin)
        if origin.suffix == ".onnx":
            what = f"the exported model {origin.name}"
        else:
            what = f"the checkpoint {origin.name} (export the run to predict with ONNX)"
        task = f"{len(info.labels)} classes" if info.task == "classification" else "regression"
        if info.kind == "image":
            inputs = "images " + "x".join(map(str, info.input_shape))
        else:
            n = info.input_shape[0]
            inputs = f"{n} feature{'s' if n != 1 else ''}"
        self.source_label.setText(f"Predicting with {what}: {task}, {inputs}.")
        self.top_spin.setMaximum(max(1, len(info.labels)))
        if info.kind == "image":
            self._show_page(PAGE_IMAGES)
            if self.file_list.count():
                self._predict_images()
        else:
            self._fill_feature_form(info)
            self._show_page(PAGE_FEATURES)
        self.predictor_loaded.emit(info)

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.source_label.setText(f"Cannot predict with this run: {message}")
        self.load_failed.emit(message)

    def _show_page(self, page: int) -> None:
        self.stack.setCurrentIndex(page)
        self.bar_plot.setVisible(page == PAGE_IMAGES or (self.info is not None and self.info.task == "classification"))
        self.top_spin.setVisible(self.info is not None and self.info.task == "classification")

    # -- images -------------------------------------------------------------------------------

    @Slot()
    def choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Choose images",
            str(self.run_dir or Path.home()),
            f"Images ({' '.join('*' + s for s in IMAGE_SUFFIXES)});;All files (*)",
        )
        if files:
            self.add_images([Path(f) for f in files])

    @Slot(list)
    def add_images(self, paths: list[Path]) -> None:
        known = {self.file_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.file_list.count())}
        new = [Path(p) for p in paths if str(p) not in known]
        for p in new:
            item = QListWidgetItem(p.name)
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            item.setToolTip(str(p))
            pixmap = QPixmap(str(p))
            if not pixmap.isNull():
                item.setIcon(
                    QIcon(
                        pixmap.scaled(
                            40, 40, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                        )
                    )
                )
            self.file_list.addItem(item)
        if new:
            self.file_list.setCurrentRow(self.file_list.count() - len(new))
            self._predict_images()

    @Slot()
    def clear_images(self) -> None:
        self.file_list.clear()
        self.results.clear()
        self.preview.clear()
        self.result_label.clear()
        self.bar_plot.clear_bars()

    def _listed_files(self) -> list[Path]:
        return [Path(self.file_list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.file_list.count())]

    def _predict_images(self) -> None:
        """Predict every listed image without a result yet (decided when the job starts)."""
        predictor = self.predictor
        if predictor is None:
            return

        def build() -> Callable[[TaskState], Any] | None:
            missing = [p for p in self._listed_files() if str(p) not in self.results]
            return _images_job(predictor, missing, self.top_spin.value()) if missing else None

        self.result_label.setText("Predicting…")
        self._submit_later(build, self._on_images_predicted, self._on_predict_failed)

    @Slot(object)
    def _on_images_predicted(self, results: list[dict[str, Any]]) -> None:
        for r in results:
            self.results[r["file"]] = r
        for i in range(self.file_list.count()):
            item = self.file_list.item(i)
            shown = self.results.get(item.data(Qt.ItemDataRole.UserRole))
            if shown is not None:
                item.setText(
                    f"{Path(shown['file']).name}: "
                    + (f"{shown['label']} ({shown['probability'] * 100:.1f}%)" if "label" in shown else "cannot read")
                )
        self._show_current()
        self.predicted.emit(results)

    def _show_current(self, *_args: Any) -> None:
        item = self.file_list.currentItem()
        if item is None:
            return
        path = item.data(Qt.ItemDataRole.UserRole)
        image = QImage(path)
        if not image.isNull():
            self.preview.setPixmap(
                QPixmap.fromImage(image).scaled(
                    128, 128, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
                )
            )
        r = self.results.get(path)
        if r is None:
            return
        if "error" in r:
            self.result_label.setText(r["error"])
            self.bar_plot.clear_bars()
            return
        note = conversion_note(image, self.info.input_shape) if self.info is not None else ""
        text = f"{Path(path).name}: {r['label']} ({r['probability'] * 100:.1f}%)"
        self.result_label.setText(text + (f"\n{note}" if note else ""))
        item.setToolTip(f"{path}\n{note}" if note else path)
        self.bar_plot.show_top(r["top"])

    @Slot()
    def _rerun(self) -> None:
        if self.predictor is None:
            return
        if self.info is not None and self.info.kind == "image" and self.file_list.count():
            self.results.clear()
            self._predict_images()
        elif self.info is not None and self.info.kind == "tabular" and self.info.task == "classification":
            self.predict_features()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        # Every file dropped on this tab is this tab's: one it cannot use gets a Predict message,
        # not the window's data-source one.
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = DropArea.image_paths(event)
        event.acceptProposedAction()
        if paths and self.info is not None and self.info.kind == "image":
            self.add_images(paths)
            return
        urls = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        self.result_label.setText(drop_refusal(urls, None if self.info is None else self.info.kind))

    # -- feature values -------------------------------------------------------------------------

    def _fill_feature_form(self, info: ModelInfo) -> None:
        while self.feature_form.rowCount():
            self.feature_form.removeRow(0)
        self.feature_edits = []
        names = info.feature_names or tuple(f"feature {i + 1}" for i in range(info.input_shape[0]))
        for i, name in enumerate(names):
            edit = QLineEdit()
            edit.setObjectName(f"predictFeatureEdit_{i}")
            edit.setPlaceholderText("blank = the training mean")
            edit.returnPressed.connect(self.predict_features)
            self.feature_form.addRow(name, edit)
            self.feature_edits.append(edit)
        self.feature_error.clear()

    def feature_values(self) -> list[float] | None:
        """The typed values (blank = NaN, which the model fills with the training mean); None if one is not a number."""
        values: list[float] = []
        for edit, label in zip(self.feature_edits, self._feature_names(), strict=True):
            text = edit.text().strip()
            if not text:
                values.append(math.nan)
                continue
            try:
                values.append(float(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text))
            except ValueError:
                self.feature_error.setText(f"'{text}' in {label} is not a number")
                edit.setFocus()
                return None
        self.feature_error.clear()
        return values

    def _feature_names(self) -> list[str]:
        assert self.info is not None
        return list(self.info.feature_names or [f"feature {i + 1}" for i in range(self.info.input_shape[0])])

    @Slot()
    def predict_features(self) -> None:
        if self.predictor is None or self.info is None or self.info.kind != "tabular":
            return
        values = self.feature_values()
        if values is None:
            return
        self._submit(
            _features_job(self.predictor, values, self.top_spin.value()),
            self._on_features_predicted,
            self._on_predict_failed,
        )

    @Slot(object)
    def _on_features_predicted(self, result: dict[str, Any]) -> None:
        if "prediction" in result:
            value = result["prediction"]
            self.result_label.setText("prediction: " + ("not a number" if value is None else f"{value:.6g}"))
        else:
            self.result_label.setText(f"{result['label']} ({result['probability'] * 100:.1f}%)")
            self.bar_plot.show_top(result["top"])
        self.predicted.emit(result)

    @Slot(str)
    def _on_predict_failed(self, message: str) -> None:
        self.result_label.setText(f"Cannot predict: {message}")

    # -- one background job at a time -------------------------------------------------------------

    def _submit(
        self, job: Callable[[TaskState], Any], on_success: Callable[[Any], None], on_failure: Callable[[str], None]
    ) -> None:
        """Run `job` now, or after the running one."""
        self._submit_later(lambda: job, on_success, on_failure)

    def _submit_later(
        self,
        build: Callable[[], Callable[[TaskState], Any] | None],
        on_success: Callable[[Any], None],
        on_failure: Callable[[str], None],
    ) -> None:
        """Run the job `build()` makes when its turn comes (now, or after the running one); None: nothing to do."""
        generation = self._generation

        def succeeded(result: Any) -> None:
            if generation == self._generation:
                on_success(result)

        def failed(message: str) -> None:
            if generation == self._generation:
                on_failure(message)

        def make() -> BackgroundCall | None:
            real = build()
            if real is None:
                return None
            # No Qt parent: the panel's Python references own it, so its thread object lives exactly as long.
            call = BackgroundCall(real)
            call.succeeded.connect(succeeded)
            call.failed.connect(failed)
            call.finished.connect(self._on_job_finished)
            return call

        if self._call is not None and self._call.is_running():
            self._queued = make  # only the newest request matters; image jobs pick up every file left
            return
        self._call = make()
        if self._call is not None:
            self._call.start()

    @Slot()
    def _on_job_finished(self) -> None:
        finished, self._call = self._call, None
        # Freed one job later: deleting it now, inside its own `finished` emission, would crash Qt.
        self._retired = finished
        if self._queued is not None:
            make, self._queued = self._queued, None
            self._call = make()
            if self._call is not None:
                self._call.start()

    def is_busy(self) -> bool:
        return self._call is not None and self._call.is_running()

    def shutdown(self, msecs: int = 10000) -> None:
        """Wait for a running job before the window closes (a thread must not outlive its owner)."""
        self._queued = None
        if self._call is not None:
            self._call.cancel()
            self._call.wait(msecs)
