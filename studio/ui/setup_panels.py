"""The setup sidebar's cards (`DataPanel`, `ModelPanel`, `TrainingPanel`), built from the typed config.

Every row is a `FieldEditor` (setup_fields.py) made from `studio.config.field_specs(section)`, so
the form and the config never drift apart; a field added to the config appears here (under "More
options") by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from studio.config import PRETRAINED_ARCHS, Config, field_specs
from studio.ui.setup_fields import Collapsible, FieldEditor
from studio.ui.spin_boxes import ScientificSpinBox


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
        grid.addWidget(f.hint, row + 1, 0, 1, 2)
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
        self.source_combo = data["source"].editor_as(QComboBox)
        data["path"].source_hint = lambda: self.fields["data.source"].value()
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
        names = {
            "augment.flip": "flip",
            "augment.translate": "shift",
            "augment.rotate": "rotate",
            "augment.color_jitter": "jitter",
        }
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
        self.arch_combo = model["arch"].editor_as(QComboBox)
        self.params_label = QLabel("–")
        self.params_label.setObjectName("paramCountLabel")
        for name in ("arch", "hidden", "dropout"):
            self.add_field(model.pop(name))
        self.add_widget_row("Parameters", self.params_label)
        for f in model.values():
            self.add_field(f, advanced=True)
        self.visible_when("model.hidden", lambda: self.fields["model.arch"].value() == "mlp")
        arch = lambda: self.fields["model.arch"].value()  # noqa: E731
        self.visible_when("model.weights", lambda: arch() in PRETRAINED_ARCHS)
        self.visible_when("model.widths", lambda: arch() == "cnn")
        for key in ("patch_size", "depth", "dim", "heads"):
            self.visible_when(f"model.{key}", lambda: arch() == "vit")
        self.hint_label = QLabel("")
        self.hint_label.setObjectName("modelHint")
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint_label.setVisible(False)
        self.main.addWidget(self.hint_label, self.main.rowCount(), 0, 1, 2)
        self.changed.connect(self.refresh_visibility)
        self.refresh_visibility()

    def set_param_count(self, n: int | None, detail: str = "", flops: int | None = None) -> None:
        """The parameter count, and the cost of one image (FLOPs of a forward pass) beside it."""
        from studio.models.cost import describe_flops

        text = "–" if n is None else f"{n:,}"
        if n is not None and flops:
            text += f" · {describe_flops(flops)}"
        self.params_label.setText(text)
        self.params_label.setToolTip(detail)

    def set_hint(self, text: str) -> None:
        """A line under the model: e.g. propose pretrained weights for an image folder."""
        self.hint_label.setText(text)
        self.hint_label.setVisible(bool(text))


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
        processes = train.pop("nproc")  # [train] nproc, as `studio train --nproc N` sets it
        processes.help = PROCESSES_HELP
        processes.editor.setToolTip(PROCESSES_HELP)
        self.add_field(processes)
        self.processes_spin = processes.editor_as(QSpinBox)
        for f in train.values():
            self.add_field(f, advanced=True)
        self.add_field(top["seed"], advanced=True)
        self.lr_spin = self.fields["train.lr"].editor_as(ScientificSpinBox)
        self.batch_spin = self.fields["train.batch_size"].editor_as(QSpinBox)
        self.epochs_spin = self.fields["train.epochs"].editor_as(QSpinBox)
        self.device_combo = self.fields["train.device"].editor_as(QComboBox)
        self.lr_spin.valueChanged.connect(lambda v: self.lr_committed.emit(float(f"{v:.10g}")))
        self.batch_spin.valueChanged.connect(lambda v: self.batch_size_committed.emit(int(v)))

        def opt() -> object:
            return self.fields["train.optimizer"].value()

        self.visible_when("train.momentum", lambda: opt() == "sgd")
        self.visible_when("train.nesterov", lambda: opt() == "sgd")
        self.visible_when("train.step_size", lambda: self.fields["train.schedule"].value() == "step")
        self.visible_when("train.gamma", lambda: self.fields["train.schedule"].value() == "step")
        self.changed.connect(self.refresh_visibility)
        self.refresh_visibility()
        for spin in (self.lr_spin, self.batch_spin):
            spin.setMinimumWidth(110)
        self.train_samples: int | None = None
        self.batch_spin.valueChanged.connect(self._check_batch_size)

    def set_train_samples(self, n: int | None) -> None:
        """How many training samples the data has: a larger batch size is then said to be one batch."""
        self.train_samples = n
        self._check_batch_size()

    def _check_batch_size(self) -> None:
        n, batch = self.train_samples, self.batch_spin.value()
        field = self.fields["train.batch_size"]
        if n is not None and batch > n:
            field.explain(f"Batch size {batch:,} is larger than the {n:,} training samples: each epoch is one batch")
        elif field.hint.text().startswith("Batch size") and "training samples" in field.hint.text():
            field.show_hint("")

    def processes(self) -> int:
        return int(self.processes_spin.value())

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


PROCESSES_HELP = (
    "Processes that train this run together under DDP (torchrun). 1 trains inside the window; more start "
    "`studio train --nproc N` as child processes that the window follows and can stop. One per GPU on CUDA; "
    "on the CPU they share the cores. The batch size stays the whole batch, split across the processes."
)


def _fields_top() -> dict[str, FieldEditor]:
    return {
        "seed": FieldEditor(
            "",
            "seed",
            int,
            0,
            {"help": "seed for splits, initialisation and data order", "min": 0, "max": 2_000_000_000},
        )
    }


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
