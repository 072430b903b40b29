"""`SetupSidebar`: the setup on the left (data, model, training cards), checked and inspected as it changes.

A quarter of a second after the last change it validates the setup (`setupError` says what is
wrong), emits `config_changed(Config)` for a valid one, and has the `SetupInspector` summarise the
data and count the model's parameters off the GUI thread. It follows the run controller: the
fields lock while a run trains (all but the learning rate and batch size, which stay live).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel, QScrollArea, QVBoxLayout, QWidget

from studio.config import Config, config_from_dict, load_config, save_config
from studio.engine.events import FitStart
from studio.errors import StudioError
from studio.ui.dialogs import show_error
from studio.ui.run_controller import RunController, RunState
from studio.ui.setup_inspector import Inspection, SetupInspector
from studio.ui.setup_panels import DataPanel, ModelPanel, SetupCard, TrainingPanel, config_dict

CHECK_DELAY_MS = 250  # typing a number is several changes: check the setup once it has settled


class SetupSidebar(QWidget):
    """The three setup cards in a scroll area, and the line that says what is wrong with them."""

    config_changed = Signal(object)  # Config: a valid setup, after each settled change
    inspected = Signal(object)  # Inspection: the data summary and the parameter count
    notice = Signal(str, int)  # a status-bar message and how long it shows (ms)

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("setupSidebar")
        self.controller = controller
        self.data_panel = DataPanel()
        self.model_panel = ModelPanel()
        self.training_panel = TrainingPanel()
        self.cards: list[SetupCard] = [self.data_panel, self.model_panel, self.training_panel]
        side = QVBoxLayout(self)
        side.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setObjectName("setupScroll")
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        container = QWidget()
        container.setObjectName("setupContainer")
        lay = QVBoxLayout(container)
        lay.setContentsMargins(12, 10, 10, 12)
        lay.setSpacing(10)
        title = QLabel("Setup")
        title.setObjectName("sidebarTitle")
        title.setToolTip("Choose data, a model and how to train it; hover a field for what it does.")
        lay.addWidget(title)
        lay.addWidget(self._make_presets())
        for card in self.cards:
            lay.addWidget(card)
        self.setup_error = QLabel("")
        self.setup_error.setObjectName("setupError")
        self.setup_error.setWordWrap(True)
        self.setup_error.setVisible(False)
        lay.addWidget(self.setup_error)
        lay.addStretch(1)
        scroll.setWidget(container)
        side.addWidget(scroll)
        self.setMinimumWidth(330)
        self.setMaximumWidth(520)

        self._changed_while_training = False
        self.inspector = SetupInspector(self)
        self.inspector.inspected.connect(self._on_inspected)
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self.validate)
        for card in self.cards:
            card.changed.connect(self._check_timer.start)
            for f in card.fields.values():  # a value not taken as typed: the status bar says so too
                f.explained.connect(lambda text: self.notice.emit(text, 10000))
        self.training_panel.lr_committed.connect(controller.set_lr)
        self.training_panel.batch_size_committed.connect(controller.set_batch_size)
        controller.state_changed.connect(self._on_state)
        controller.run_started.connect(self._on_run_started)

    # -- the setup -------------------------------------------------------------------------------

    def config(self) -> Config:
        """The setup the cards describe; raises `ConfigError` saying what is wrong."""
        return config_from_dict(config_dict(self.cards))

    def processes(self) -> int:
        """The Processes field: how many processes train the next run ([train] nproc)."""
        return self.training_panel.processes()

    def set_config(self, cfg: Config) -> None:
        """Show `cfg` in the cards."""
        for card in self.cards:
            card.set_config(cfg)
        self.validate()

    def validate(self) -> None:
        """Say what is wrong with the setup, or pass it on and inspect it."""
        try:
            cfg = self.config()
        except StudioError as exc:
            self.setup_error.setText(str(exc))
            self.setup_error.setVisible(True)
            return
        self.setup_error.setVisible(False)
        if self.controller.is_training:
            # Only the rate and batch size can change now: the data and the model stay what they were,
            # so there is nothing to re-inspect (that work would compete with training for the CPU).
            self._changed_while_training = True
            return
        self.config_changed.emit(cfg)
        if self.inspector.enabled:
            self.data_panel.set_summary("Reading the data…")
        self.inspector.inspect(cfg)

    def start_inspecting(self, devices: list[tuple[str, str]]) -> None:
        """The engine is loaded: list its devices, and from now on inspect every setup."""
        self.training_panel.set_devices(devices)
        self.inspector.enabled = True
        self.validate()

    def stop_inspecting(self) -> None:
        """A closing window starts no new work (a pending check would load data)."""
        self._check_timer.stop()
        self.inspector.cancel()

    def _on_inspected(self, result: Inspection) -> None:
        self.data_panel.set_summary(result.data_summary, error=result.data_error)
        self.model_panel.set_param_count(result.param_count, result.model_detail, result.flops)
        self.model_panel.set_hint(result.hint)
        self.training_panel.set_train_samples(result.num_train)
        self.inspected.emit(result)

    def _make_presets(self) -> QComboBox:
        """The example configs as presets ("Best for digits", "Quick look", ...): choosing one loads it."""
        from studio.resources import presets

        combo = QComboBox()
        combo.setObjectName("presetCombo")
        combo.setToolTip("Load a ready-made setup from the examples shipped with the studio")
        combo.addItem("Presets…", None)
        for title, path in presets():
            combo.addItem(title, str(path))
        combo.activated.connect(self._on_preset)
        self.preset_combo = combo
        return combo

    def _on_preset(self, index: int) -> None:
        path = self.preset_combo.itemData(index)
        self.preset_combo.setCurrentIndex(0)
        if not path:
            return
        try:
            cfg = load_config(path)
        except StudioError as exc:
            show_error(self, "The preset cannot be loaded", str(exc))
            return
        self.set_config(cfg)
        self.notice.emit(f"Loaded the preset {Path(path).stem}", 4000)

    # -- following the run -----------------------------------------------------------------------

    def _on_state(self, state: RunState) -> None:
        locked = state.is_training or state == RunState.FOLLOWING
        # A followed run takes live changes only where its engine reads control.json.
        live_locked = state == RunState.FOLLOWING and not self.controller.live_control
        self.preset_combo.setEnabled(not locked)
        if not locked and self._changed_while_training:
            self._changed_while_training = False
            self.validate()
        for card in self.cards:
            for key, f in card.fields.items():
                f.set_locked(live_locked if key in TrainingPanel.LIVE else locked)

    def _on_run_started(self, e: FitStart) -> None:
        self.model_panel.set_param_count(e.param_count, e.model_summary)
        self.training_panel.set_train_samples(e.num_train)

    # -- files -----------------------------------------------------------------------------------

    def save_config_as(self) -> None:
        try:
            cfg = self.config()
        except StudioError as exc:
            show_error(self, "The setup has a problem", str(exc))
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the setup", str(Path.home() / "studio.toml"), "TOML config (*.toml)"
        )
        if path:
            save_config(cfg, Path(path))
            self.notice.emit(f"Saved {Path(path).name}", 4000)

    def apply_theme(self) -> None:
        for card in self.cards:
            for block in card.blocks():
                block.refresh()
