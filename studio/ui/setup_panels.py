"""The setup sidebar's cards (`DataPanel`, `ModelPanel`, `TrainingPanel`), built from the typed config.

Every row comes from `studio.config.field_specs(section)`: its editor from the field's type and
choices, its range from the limits, its tooltip from the help text. So the form and the config
never drift apart; a field added to the config appears here (under "More options") by itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFrame, QGridLayout,
                               QHBoxLayout, QLabel, QLineEdit, QSpinBox, QToolButton, QVBoxLayout,
                               QWidget)

from studio.config import Config, field_specs
from studio.ui.spin_boxes import ScientificSpinBox
from studio.ui.theme import themed_icon

LOCKED_TIP = "Fixed while a run trains: stop the run to change it."

LABELS = {
    "source": "Source", "path": "Path", "target": "Target column", "task": "Task", "blank_cells": "Blank cells",
    "val_split": "Validation split", "test_split": "Test split", "image_size": "Image size",
    "channels": "Channels", "cache_dir": "Download cache", "memory_budget_mb": "Memory budget",
    "num_workers": "Loader workers", "flip": "Horizontal flip", "translate": "Random shift",
    "rotate": "Random rotation", "color_jitter": "Colour jitter", "arch": "Architecture",
    "hidden": "Hidden layers", "dropout": "Dropout", "init": "Initialisation", "weights": "Pretrained weights",
    "epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate", "optimizer": "Optimizer",
    "momentum": "Momentum", "nesterov": "Nesterov momentum", "weight_decay": "Weight decay",
    "schedule": "LR schedule", "warmup_epochs": "Warm-up epochs", "step_size": "Step every (epochs)",
    "gamma": "Step decay", "clip_grad_norm": "Clip grad norm", "accumulate": "Accumulate batches",
    "loss": "Loss", "device": "Device", "precision": "Precision", "patience": "Early-stop patience",
    "min_delta": "Early-stop min delta", "target_loss": "Target loss", "log_every": "Log every (steps)",
    "seed": "Seed",
}

CHOICE_LABELS = {
    "digits": "Digits (bundled MNIST, 8k)", "mnist": "MNIST (download)", "fashion-mnist": "Fashion-MNIST (download)",
    "cifar10": "CIFAR-10 (download)", "folder": "Image folder…", "csv": "CSV file…", "linear": "Synthetic line",
    "softmax": "Softmax regression", "mlp": "MLP", "lenet": "LeNet-5", "resnet18": "ResNet-18",
    "linear_arch": "Linear", "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "none": "Constant",
    "step": "Step decay", "cosine": "Cosine", "onecycle": "One-cycle",
}

OBJECT_NAMES = {"source": "datasetCombo", "arch": "modelCombo", "lr": "lrSpinBox",
                "batch_size": "batchSizeSpinBox", "epochs": "epochsSpinBox", "device": "deviceCombo"}

# Augmentation strengths a checkbox switches on (0 means off in the config).
AUGMENT_ON = {"translate": 0.1, "rotate": 10.0, "color_jitter": 0.2}
SUFFIXES = {"memory_budget_mb": " MB", "image_size": " px", "rotate": "°", "warmup_epochs": " ep"}
LOG_SCALE = {"lr", "weight_decay", "min_delta", "target_loss"}


def _choice_label(section: str, value: str) -> str:
    if section == "model" and value == "linear":
        return CHOICE_LABELS["linear_arch"]
    return CHOICE_LABELS.get(value, value.replace("_", " ").capitalize())


class FieldEditor(QObject):
    """One config field's label and editor, with `value()` / `set_value()` in config types."""

    changed = Signal()

    def __init__(self, section: str, name: str, tp: Any, default: Any, meta: dict[str, Any]) -> None:
        super().__init__()
        self.section, self.name, self.tp, self.default, self.meta = section, name, tp, default, meta
        self.label = QLabel(LABELS.get(name, name.replace("_", " ").capitalize()))
        self.label.setObjectName("fieldLabel")
        self.help = meta.get("help", "")
        self.widget = self._make_editor()
        self.editor.setToolTip(self.help[:1].upper() + self.help[1:] if self.help else "")
        self.label.setToolTip(self.editor.toolTip())
        if name in OBJECT_NAMES:
            self.editor.setObjectName(OBJECT_NAMES[name])
        self.set_value(default)

    # -- editors ---------------------------------------------------------------------------------

    def _make_editor(self) -> QWidget:
        meta, tp, name = self.meta, self.tp, self.name
        if "choices" in meta:
            box = QComboBox()
            for choice in meta["choices"]:
                box.addItem(_choice_label(self.section, choice), choice)
            box.currentIndexChanged.connect(self.changed)
            self.editor: QWidget = box
            return box
        if name == "device":
            box = QComboBox()
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
            spin = QSpinBox()
            spin.setRange(int(meta.get("min", 0)), int(min(meta.get("max", 1_000_000_000), 2_000_000_000)))
            spin.setKeyboardTracking(False)
            spin.setSuffix(SUFFIXES.get(name, ""))
            if name == "batch_size":
                spin.setRange(1, 65536)
            spin.valueChanged.connect(self.changed)
            self.editor = spin
            return spin
        if tp is float:
            lo = float(meta.get("min", meta.get("min_exclusive", 0.0)))
            hi = float(meta.get("max", meta.get("max_exclusive", 1e6)))
            if name in LOG_SCALE:
                spin: QDoubleSpinBox = ScientificSpinBox(1e-6 if "min_exclusive" in meta else lo, min(hi, 100.0),
                                                         allow_zero="min_exclusive" not in meta)
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
        edit.setPlaceholderText({"path": "a folder of class subfolders, or a CSV file",
                                 "weights": "optional .pth state dict",
                                 "cache_dir": "default: the user's cache"}[self.name])
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
        edit: QLineEdit = self.editor  # type: ignore[assignment]
        start = edit.text() or str(Path.home())
        if self.name == "path":
            source = getattr(self, "source_hint", lambda: "csv")()
            if source == "csv":
                path, _ = QFileDialog.getOpenFileName(self.widget, "Choose a CSV file", start,
                                                      "CSV files (*.csv *.tsv *.txt);;All files (*)")
            else:
                path = QFileDialog.getExistingDirectory(self.widget, "Choose an image folder", start)
        elif self.name == "weights":
            path, _ = QFileDialog.getOpenFileName(self.widget, "Choose a state dict", start,
                                                  "PyTorch weights (*.pth *.pt);;All files (*)")
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
        text = e.text().strip()  # type: ignore[attr-defined]
        if self.tp == list[int]:
            return [int(p) for p in text.replace(" ", "").split(",") if p]
        return text

    def set_value(self, value: Any) -> None:
        e = self.editor
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
            elif self.tp == list[int]:
                e.setText(", ".join(str(v) for v in value))  # type: ignore[attr-defined]
            else:
                e.setText(str(value))  # type: ignore[attr-defined]
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


class SetupCard(QFrame):
    """A titled card with main rows, a summary line, and a collapsible "More options" block."""

    changed = Signal()

    def __init__(self, title: str, subtitle: str = "") -> None:
        super().__init__()
        self.setObjectName("setupCard")
        self.fields: dict[str, FieldEditor] = {}
        self._rules: dict[str, Callable[[], bool]] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 10)
        lay.setSpacing(6)
        self.body_layout = lay
        head = QHBoxLayout()
        self.title = QLabel(title)
        self.title.setObjectName("cardTitle")
        head.addWidget(self.title)
        head.addStretch(1)
        self.badge = QLabel(subtitle)
        self.badge.setObjectName("cardSummary")
        head.addWidget(self.badge)
        lay.addLayout(head)
        self.summary = QLabel("")
        self.summary.setObjectName("cardSummary")
        self.summary.setWordWrap(True)
        self.summary.setVisible(False)
        self.main = QGridLayout()
        self.main.setHorizontalSpacing(10)
        self.main.setVerticalSpacing(5)
        self.main.setColumnStretch(1, 1)
        self.main.setColumnMinimumWidth(0, 108)
        lay.addLayout(self.main)
        lay.addWidget(self.summary)
        self.more_block = Collapsible("More options")
        self.more_toggle = self.more_block.toggle
        lay.addWidget(self.more_block)

    def blocks(self) -> list[Collapsible]:
        return [w for w in self.findChildren(Collapsible)]

    def add_field(self, f: FieldEditor, advanced: bool = False, block: Collapsible | None = None) -> None:
        grid = block.grid if block is not None else self.more_block.grid if advanced else self.main
        row = grid.rowCount()
        if f.label.text():
            grid.addWidget(f.label, row, 0)
            grid.addWidget(f.widget, row, 1)
        else:
            grid.addWidget(f.widget, row, 0, 1, 2)
        self.fields[f"{f.section}.{f.name}"] = f
        f.changed.connect(self.changed)

    def add_widget_row(self, label: str, widget: QWidget) -> None:
        row = self.main.rowCount()
        lab = QLabel(label)
        lab.setObjectName("fieldLabel")
        self.main.addWidget(lab, row, 0)
        self.main.addWidget(widget, row, 1)

    def visible_when(self, key: str, rule: Callable[[], bool]) -> None:
        self._rules[key] = rule

    def refresh_visibility(self) -> None:
        for key, rule in self._rules.items():
            self.fields[key].set_visible(rule())

    def set_summary(self, text: str, error: bool = False) -> None:
        self.summary.setText(text)
        self.summary.setVisible(bool(text))
        self.summary.setProperty("error", "true" if error else "false")
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)

    def values(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for f in self.fields.values():
            out.setdefault(f.section, {})[f.name] = f.value()
        return out

    def set_config(self, cfg: Config) -> None:
        for f in self.fields.values():
            value = getattr(cfg, f.name) if f.section == "" else getattr(getattr(cfg, f.section), f.name)
            f.set_value(value)
        self.refresh_visibility()


def _fields(section: str) -> dict[str, FieldEditor]:
    return {name: FieldEditor(section, name, tp, default, meta) for name, tp, default, meta in field_specs(section)}


class DataPanel(SetupCard):
    """Where the samples come from: source, path, splits, augmentation, and a summary line."""

    def __init__(self) -> None:
        super().__init__("Data")
        data, aug = _fields("data"), _fields("augment")
        self.source_combo: QComboBox = data["source"].editor  # type: ignore[assignment]
        data["path"].source_hint = lambda: self.fields["data.source"].value()  # type: ignore[attr-defined]
        for name in ("source", "path", "target", "val_split", "test_split"):
            self.add_field(data.pop(name))
        self.aug_block = Collapsible("Augmentation")
        self.body_layout.insertWidget(self.body_layout.indexOf(self.summary), self.aug_block)
        for f in aug.values():
            self.add_field(f, block=self.aug_block)
        for f in data.values():
            self.add_field(f, advanced=True)
        self.summary.setVisible(True)
        self.changed.connect(self._describe_augment)
        self._describe_augment()
        self.visible_when("data.path", lambda: self.source() in ("folder", "csv"))
        for key in ("data.target", "data.task", "data.blank_cells"):
            self.visible_when(key, lambda: self.source() == "csv")
        self.visible_when("data.cache_dir", lambda: self.source() in ("mnist", "fashion-mnist", "cifar10"))
        self.changed.connect(self.refresh_visibility)
        self.refresh_visibility()

    def source(self) -> str:
        return self.fields["data.source"].value()

    def _describe_augment(self) -> None:
        names = {"augment.flip": "flip", "augment.translate": "shift", "augment.rotate": "rotate",
                 "augment.color_jitter": "jitter"}
        on = [short for key, short in names.items() if self.fields[key].value()]
        self.aug_block.set_detail(", ".join(on) if on else "off")
        self.aug_block.setVisible(self.source() not in ("csv", "linear"))

    def set_config(self, cfg: Config) -> None:
        super().set_config(cfg)
        self._describe_augment()

    def choose_path(self, path: Path) -> None:
        """A dropped or picked path: a CSV file selects the csv source, a folder the folder source."""
        self.fields["data.source"].set_value("csv" if path.is_file() else "folder")
        self.fields["data.path"].set_value(str(path))
        self.refresh_visibility()
        self.changed.emit()


class ModelPanel(SetupCard):
    """Which network: the architecture, its hidden sizes, and the live parameter count."""

    def __init__(self) -> None:
        super().__init__("Model")
        model = _fields("model")
        self.arch_combo: QComboBox = model["arch"].editor  # type: ignore[assignment]
        self.params_label = QLabel("–")
        self.params_label.setObjectName("paramCountLabel")
        for name in ("arch", "hidden", "dropout"):
            self.add_field(model.pop(name))
        self.add_widget_row("Parameters", self.params_label)
        for f in model.values():
            self.add_field(f, advanced=True)
        self.visible_when("model.hidden", lambda: self.fields["model.arch"].value() == "mlp")
        self.visible_when("model.weights", lambda: self.fields["model.arch"].value() == "resnet18")
        self.changed.connect(self.refresh_visibility)
        self.refresh_visibility()

    def set_param_count(self, n: int | None, detail: str = "") -> None:
        self.params_label.setText("–" if n is None else f"{n:,}")
        self.params_label.setToolTip(detail)


class TrainingPanel(SetupCard):
    """How to optimise. The learning rate and batch size stay editable while training and emit
    `lr_committed` / `batch_size_committed` when the user presses Enter or steps them."""

    lr_committed = Signal(float)
    batch_size_committed = Signal(int)

    LIVE = ("train.lr", "train.batch_size")

    def __init__(self) -> None:
        super().__init__("Training")
        train = _fields("train")
        top = _fields_top()
        for name in ("optimizer", "lr", "batch_size", "epochs", "schedule", "weight_decay", "patience", "device"):
            self.add_field(train.pop(name))
        for f in train.values():
            self.add_field(f, advanced=True)
        self.add_field(top["seed"], advanced=True)
        self.lr_spin: ScientificSpinBox = self.fields["train.lr"].editor  # type: ignore[assignment]
        self.batch_spin: QSpinBox = self.fields["train.batch_size"].editor  # type: ignore[assignment]
        self.epochs_spin: QSpinBox = self.fields["train.epochs"].editor  # type: ignore[assignment]
        self.device_combo: QComboBox = self.fields["train.device"].editor  # type: ignore[assignment]
        self.lr_spin.valueChanged.connect(lambda v: self.lr_committed.emit(float(f"{v:.10g}")))
        self.batch_spin.valueChanged.connect(lambda v: self.batch_size_committed.emit(int(v)))
        opt = lambda: self.fields["train.optimizer"].value()  # noqa: E731
        self.visible_when("train.momentum", lambda: opt() == "sgd")
        self.visible_when("train.nesterov", lambda: opt() == "sgd")
        self.visible_when("train.step_size", lambda: self.fields["train.schedule"].value() == "step")
        self.visible_when("train.gamma", lambda: self.fields["train.schedule"].value() == "step")
        self.changed.connect(self.refresh_visibility)
        self.refresh_visibility()
        for spin in (self.lr_spin, self.batch_spin):
            spin.setMinimumWidth(110)

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        """List each CUDA GPU by name, then MPS, then the CPU, after 'Auto'."""
        current = self.device_combo.currentData()
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        self.device_combo.addItem("Auto (best available)", "auto")
        for value, label in devices:
            self.device_combo.addItem(label if value != "cpu" else "CPU", value)
        i = self.device_combo.findData(current)
        if i < 0 and current is not None and str(current).startswith("cuda"):
            self.device_combo.addItem(f"{current} (not available here)", current)
            i = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(max(i, 0))
        self.device_combo.blockSignals(False)


def _fields_top() -> dict[str, FieldEditor]:
    return {"seed": FieldEditor("", "seed", int, 0, {"help": "seed for splits, initialisation and data order",
                                                     "min": 0, "max": 2_000_000_000})}


def config_dict(cards: list[SetupCard]) -> dict[str, Any]:
    """The raw config dict the cards describe (validate it with `config_from_dict`)."""
    raw: dict[str, Any] = {}
    for card in cards:
        for section, values in card.values().items():
            if section == "":
                raw.update(values)
            else:
                raw.setdefault(section, {}).update(values)
    return raw
