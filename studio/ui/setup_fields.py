"""One row of the setup form per config field: `FieldEditor` (label and editor) and `Collapsible` blocks.

A row comes from `studio.config.field_specs(section)`: its editor from the field's type and
choices, its range from the limits, its tooltip from the help text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui.spin_boxes import CorrectionWatch, ScientificSpinBox, WholeNumberSpinBox
from studio.ui.theme import themed_icon

LOCKED_TIP = "Fixed while a run trains: stop the run to change it."

LABELS = {
    "source": "Source",
    "path": "Path",
    "target": "Target column",
    "task": "Task",
    "blank_cells": "Blank cells",
    "val_split": "Validation split",
    "test_split": "Test split",
    "image_size": "Image size",
    "channels": "Channels",
    "cache_dir": "Download cache",
    "memory_budget_mb": "Memory budget",
    "num_workers": "Loader workers",
    "flip": "Horizontal flip",
    "translate": "Random shift",
    "rotate": "Random rotation",
    "color_jitter": "Colour jitter",
    "arch": "Architecture",
    "hidden": "Hidden layers",
    "dropout": "Dropout",
    "init": "Initialisation",
    "weights": "Pretrained weights",
    "widths": "CNN widths",
    "patch_size": "ViT patch size",
    "depth": "ViT depth",
    "dim": "ViT width",
    "heads": "ViT heads",
    "epochs": "Epochs",
    "nproc": "Processes",
    "batch_size": "Batch size",
    "lr": "Learning rate",
    "optimizer": "Optimizer",
    "momentum": "Momentum",
    "nesterov": "Nesterov momentum",
    "weight_decay": "Weight decay",
    "schedule": "LR schedule",
    "warmup_epochs": "Warm-up epochs",
    "step_size": "Step every (epochs)",
    "gamma": "Step decay",
    "clip_grad_norm": "Clip grad norm",
    "accumulate": "Accumulate batches",
    "loss": "Loss",
    "device": "Device",
    "precision": "Precision",
    "patience": "Early-stop patience",
    "min_delta": "Early-stop min delta",
    "target_loss": "Target loss",
    "log_every": "Log every (steps)",
    "log_every_s": "Log every (seconds)",
    "freeze_epochs": "Frozen-backbone epochs",
    "backbone_lr_scale": "Backbone LR factor",
    "seed": "Seed",
}

CHOICE_LABELS = {
    "digits": "Digits (bundled MNIST, 8k)",
    "mnist": "MNIST (download)",
    "fashion-mnist": "Fashion-MNIST (download)",
    "cifar10": "CIFAR-10 (download)",
    "folder": "Image folder…",
    "csv": "CSV file…",
    "linear": "Synthetic line",
    "softmax": "Softmax regression",
    "mlp": "MLP",
    "lenet": "LeNet-5",
    "cnn": "CNN (conv-BN-ReLU)",
    "resnet18": "ResNet-18",
    "mobilenet_v3_small": "MobileNetV3-Small",
    "vit": "Vision Transformer (ViT)",
    "linear_arch": "Linear",
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "none": "Constant",
    "step": "Step decay",
    "cosine": "Cosine",
    "onecycle": "One-cycle",
}

OBJECT_NAMES = {
    "source": "datasetCombo",
    "arch": "modelCombo",
    "lr": "lrSpinBox",
    "batch_size": "batchSizeSpinBox",
    "epochs": "epochsSpinBox",
    "device": "deviceCombo",
    "nproc": "processesSpinBox",
}

# Augmentation strengths a checkbox switches on (0 means off in the config).
AUGMENT_ON = {"translate": 0.1, "rotate": 10.0, "color_jitter": 0.2}
SUFFIXES = {"memory_budget_mb": " MB", "image_size": " px", "patch_size": " px", "rotate": "°", "warmup_epochs": " ep"}
LOG_SCALE = {"lr", "weight_decay", "min_delta", "target_loss"}


def _choice_label(section: str, value: str) -> str:
    if section == "model" and value == "linear":
        return CHOICE_LABELS["linear_arch"]
    return CHOICE_LABELS.get(value, value.replace("_", " ").capitalize())


E = TypeVar("E", bound=QWidget)


def _narrow(box: QComboBox) -> QComboBox:
    """A combo box that can be narrower than its longest item (elided), so the sidebar never clips it."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(8)
    return box


class FieldEditor(QObject):
    """One config field's label and editor, with `value()` / `set_value()` in config types."""

    changed = Signal()
    explained = Signal(str)  # why a typed or loaded value was not taken as it was (also shown under the field)

    def __init__(self, section: str, name: str, tp: Any, default: Any, meta: dict[str, Any]) -> None:
        super().__init__()
        self.section, self.name, self.tp, self.default, self.meta = section, name, tp, default, meta
        self.label = QLabel(LABELS.get(name, name.replace("_", " ").capitalize()))
        self.label.setObjectName("fieldLabel")
        self.help = meta.get("help", "")
        self.source_hint: Callable[[], Any] | None = None  # the path field: which source it browses for
        # Says, under the field, why a value was not taken (or what it will do); cleared by the next edit.
        self.hint = QLabel("")
        self.hint.setObjectName("fieldHint")
        self.hint.setWordWrap(True)
        self.hint.setVisible(False)
        self.widget = self._make_editor()
        if isinstance(self.editor, QAbstractSpinBox):
            what = self.label.text() or name.replace("_", " ")
            exclusive = float(meta["min_exclusive"]) if "min_exclusive" in meta else None
            self._watch = CorrectionWatch(self.editor, what[:1].upper() + what[1:], exclusive)
            self._watch.corrected.connect(self.explain)
        self.changed.connect(lambda: self.show_hint(""))  # a value taken: the old explanation is stale
        self.editor.setToolTip(self.help[:1].upper() + self.help[1:] if self.help else "")
        self.label.setToolTip(self.editor.toolTip())
        if name in OBJECT_NAMES:
            self.editor.setObjectName(OBJECT_NAMES[name])
        self.set_value(default)

    # -- editors ---------------------------------------------------------------------------------

    def editor_as(self, kind: type[E]) -> E:
        """The editor, as the widget its config type makes it (a QComboBox for a choice, ...)."""
        if not isinstance(self.editor, kind):
            raise TypeError(f"{self.name}'s editor is a {type(self.editor).__name__}, not a {kind.__name__}")
        return self.editor

    def _make_editor(self) -> QWidget:
        meta, tp, name = self.meta, self.tp, self.name
        if "choices" in meta:
            box = _narrow(QComboBox())
            for choice in meta["choices"]:
                box.addItem(_choice_label(self.section, choice), choice)
            box.currentIndexChanged.connect(self.changed)
            self.editor: QWidget = box
            return box
        if name == "device":
            box = _narrow(QComboBox())
            box.addItem("Auto (best available)", "auto")
            box.addItem("CPU", "cpu")
            box.currentIndexChanged.connect(self.changed)
            self.editor = box
            return box
        if self.section == "augment" and tp is float:
            return self._make_augment_toggle()
        if tp is bool:
            check = QCheckBox(self.label.text())
            check.toggled.connect(self.changed)
            self.editor = check
            self.label.setText("")
            return check
        if tp is int:
            counter = WholeNumberSpinBox()
            counter.setRange(int(meta.get("min", 0)), int(min(meta.get("max", 1_000_000_000), 2_000_000_000)))
            counter.setKeyboardTracking(False)
            counter.setSuffix(SUFFIXES.get(name, ""))
            if name == "batch_size":
                counter.setRange(1, 65536)
            counter.valueChanged.connect(self.changed)
            self.editor = counter
            return counter
        if tp is float:
            lo = float(meta.get("min", meta.get("min_exclusive", 0.0)))
            hi = float(meta.get("max", meta.get("max_exclusive", 1e6)))
            if name in LOG_SCALE:
                spin: QDoubleSpinBox = ScientificSpinBox(
                    1e-6 if "min_exclusive" in meta else lo, min(hi, 100.0), allow_zero="min_exclusive" not in meta
                )
            else:
                spin = QDoubleSpinBox()
                spin.setDecimals(3)
                if "max_exclusive" in meta:
                    hi = hi - 0.01
                spin.setRange(lo if "min_exclusive" not in meta else lo + 0.001, hi)
                spin.setSingleStep(0.05 if hi <= 1 else 0.5)
                spin.setKeyboardTracking(False)
            spin.setSuffix(SUFFIXES.get(name, ""))
            spin.valueChanged.connect(self.changed)
            self.editor = spin
            return spin
        if tp == list[int]:
            edit = QLineEdit()
            edit.setPlaceholderText("e.g. 256, 128")
            edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"^\s*\d*(\s*,\s*\d*)*\s*$")))
            edit.editingFinished.connect(self.changed)
            self.editor = edit
            return edit
        edit = QLineEdit()
        edit.editingFinished.connect(self.changed)
        self.editor = edit
        if name in ("path", "weights", "cache_dir"):
            return self._with_browse(edit)
        return edit

    def _with_browse(self, edit: QLineEdit) -> QWidget:
        holder = QWidget()
        lay = QHBoxLayout(holder)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(edit, 1)
        button = QToolButton()
        button.setIcon(themed_icon("folder", size=16))
        button.setToolTip("Browse…")
        button.setObjectName(f"{self.name}BrowseButton")
        button.clicked.connect(self.browse)
        self.browse_button = button
        lay.addWidget(button)
        edit.setPlaceholderText(
            {
                "path": "a folder of class subfolders, or a CSV file",
                "weights": 'optional: "imagenet" or a .pth state dict',
                "cache_dir": "default: the user's cache",
            }[self.name]
        )
        return holder

    def _make_augment_toggle(self) -> QWidget:
        holder = QWidget()
        lay = QHBoxLayout(holder)
        lay.setContentsMargins(0, 0, 0, 0)
        self.check = QCheckBox(self.label.text())
        self.label.setText("")
        spin = QDoubleSpinBox()
        lo, hi = float(self.meta.get("min", 0.0)), float(self.meta.get("max", 1.0))
        spin.setRange(max(lo, 0.01), hi)
        spin.setDecimals(2)
        spin.setSingleStep(0.05 if hi <= 1 else 5.0)
        spin.setSuffix(SUFFIXES.get(self.name, ""))
        spin.setKeyboardTracking(False)
        spin.setValue(AUGMENT_ON.get(self.name, hi / 10))
        spin.setMaximumWidth(90)
        self.check.toggled.connect(spin.setEnabled)
        self.check.toggled.connect(self.changed)
        spin.valueChanged.connect(self.changed)
        lay.addWidget(self.check, 1)
        lay.addWidget(spin)
        self.editor = self.check
        self.strength = spin
        return holder

    def browse(self) -> None:
        edit = self.editor_as(QLineEdit)
        start = edit.text() or str(Path.home())
        if self.name == "path":
            source = self.source_hint() if self.source_hint is not None else "csv"
            if source == "csv":
                path, _ = QFileDialog.getOpenFileName(
                    self.widget, "Choose a CSV file", start, "CSV files (*.csv *.tsv *.txt);;All files (*)"
                )
            else:
                path = QFileDialog.getExistingDirectory(self.widget, "Choose an image folder", start)
        elif self.name == "weights":
            path, _ = QFileDialog.getOpenFileName(
                self.widget, "Choose a state dict", start, "PyTorch weights (*.pth *.pt);;All files (*)"
            )
        else:
            path = QFileDialog.getExistingDirectory(self.widget, "Choose a folder", start)
        if path:
            edit.setText(path)
            self.changed.emit()

    # -- values ----------------------------------------------------------------------------------

    def value(self) -> Any:
        e = self.editor
        if hasattr(self, "strength"):
            return float(self.strength.value()) if self.check.isChecked() else 0.0
        if isinstance(e, QComboBox):
            return e.currentData()
        if isinstance(e, QCheckBox):
            return e.isChecked()
        if isinstance(e, (QSpinBox, QDoubleSpinBox)):
            # Typed but not yet confirmed (the user clicked Train without pressing Enter): take it.
            e.interpretText()
        if isinstance(e, QSpinBox):
            return int(e.value())
        if isinstance(e, QDoubleSpinBox):
            return float(f"{e.value():.10g}")
        text = self.editor_as(QLineEdit).text().strip()
        if self.tp == list[int]:
            return [int(p) for p in text.replace(" ", "").split(",") if p]
        return text

    def set_value(self, value: Any) -> None:
        e = self.editor
        self.show_hint("")
        blocker = [e.blockSignals(True)]
        try:
            if hasattr(self, "strength"):
                self.check.setChecked(bool(value))
                self.strength.setEnabled(bool(value))
                if value:
                    self.strength.setValue(float(value))
            elif isinstance(e, QComboBox):
                i = e.findData(value)
                if i < 0 and self.name == "device":
                    e.addItem(str(value), value)
                    i = e.count() - 1
                e.setCurrentIndex(max(i, 0))
            elif isinstance(e, QCheckBox):
                e.setChecked(bool(value))
            elif isinstance(e, (QSpinBox, QDoubleSpinBox)):
                e.setValue(value)
                if isinstance(value, (int, float)) and e.value() != value:
                    # A loaded config beyond the box's range: the box holds the nearest value, and says so.
                    lo, hi = e.minimum(), e.maximum()
                    self.explain(
                        f"{self.label.text() or self.name} {value:g} is beyond {lo:g}–{hi:,g}: using {e.value():g}"
                    )
            elif self.tp == list[int]:
                self.editor_as(QLineEdit).setText(", ".join(str(v) for v in value))
            else:
                self.editor_as(QLineEdit).setText(str(value))
        finally:
            e.blockSignals(blocker[0])

    def set_locked(self, locked: bool) -> None:
        """Disable the field while training, saying why in its tooltip."""
        self.widget.setEnabled(not locked)
        tip = self.help[:1].upper() + self.help[1:] if self.help else ""
        self.editor.setToolTip(f"{LOCKED_TIP}\n{tip}" if locked else tip)
        self.label.setEnabled(not locked)

    def set_visible(self, visible: bool) -> None:
        self.widget.setVisible(visible)
        self.label.setVisible(visible)
        self.hint.setVisible(visible and bool(self.hint.text()))

    def explain(self, message: str) -> None:
        """Say why the value is not what was asked for: under the field, and to whoever listens."""
        self.show_hint(message)
        self.explained.emit(message)

    def show_hint(self, text: str) -> None:
        """A line under the field ("" hides it)."""
        self.hint.setText(text)
        self.hint.setToolTip(text)
        self.hint.setVisible(bool(text) and self.widget.isVisibleTo(self.widget.parentWidget() or self.widget))


class Collapsible(QWidget):
    """A toggle line ("More options") that shows or hides a grid of rows under it."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.toggle = QToolButton()
        self.toggle.setObjectName("advancedToggle")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.toggled.connect(self.set_open)
        self.body = QWidget()
        self.grid = QGridLayout(self.body)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(10)
        self.grid.setVerticalSpacing(6)
        self.grid.setColumnStretch(1, 1)
        self.grid.setColumnMinimumWidth(0, 108)
        lay.addWidget(self.toggle)
        lay.addWidget(self.body)
        self.detail = ""
        self.set_open(False)

    def set_open(self, on: bool) -> None:
        self.body.setVisible(on)
        self.refresh()

    def set_detail(self, detail: str) -> None:
        self.detail = detail
        self.refresh()

    def refresh(self) -> None:
        on = self.toggle.isChecked()
        self.toggle.setText(self.title + (f"  ·  {self.detail}" if self.detail else ""))
        self.toggle.setIcon(themed_icon("chevron-down" if on else "chevron-right", size=14))
