"""`TrainingStatusBar`: device, epoch x/y with a progress bar, samples/s, ETA and CUDA memory.

It follows a `RunController`: the run's progress four times a second, its start, end and opening.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from studio.engine.events import FitStart
from studio.engine.progress import headline
from studio.ui.run_controller import OpenedRun, RunController, RunProgress, RunState
from studio.ui.worker import RunOutcome


def format_duration(s: float | None) -> str:
    if s is None or s != s or s == float("inf") or s < 0:
        return "–"
    s = round(s)
    if s >= 3600:
        return f"{s // 3600}h {s // 60 % 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


class TrainingStatusBar(QStatusBar):
    """Permanent fields on the right; transient messages (`showMessage`) on the left."""

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.device = QLabel("Device: –")
        self.device.setObjectName("deviceLabel")
        self.epoch = QLabel("Epoch –")
        self.epoch.setObjectName("epochLabel")
        self.progress = QProgressBar()
        self.progress.setObjectName("epochProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedWidth(180)
        # Fixed widths: changing numbers must not re-layout the window several times a second.
        self.epoch.setMinimumWidth(110)
        self.speed = QLabel("")
        self.speed.setObjectName("speedLabel")
        self.speed.setMinimumWidth(150)
        self.eta = QLabel("")
        self.eta.setObjectName("etaLabel")
        self.eta.setMinimumWidth(100)
        self.memory = QLabel("")
        self.memory.setObjectName("gpuMemoryLabel")
        self.memory.setVisible(False)
        for w in (self.device, self.epoch, self.progress, self.speed, self.eta, self.memory):
            self.addPermanentWidget(w)
        controller.run_starting.connect(self.reset)
        controller.run_started.connect(self._on_run_started)
        controller.progressed.connect(self._on_progress)
        controller.finished.connect(self._on_finished)
        controller.run_ended.connect(lambda _outcome: self.set_speed(None, None))
        controller.run_opened.connect(self._on_run_opened)
        controller.run_forgotten.connect(self.reset)
        controller.notice.connect(self.showMessage)
        controller.state_changed.connect(self._on_state)
        self._device_name = "–"  # this machine's device for a run trained here

    # -- following the run -----------------------------------------------------------------------

    def _on_state(self, state: RunState) -> None:
        # A followed run trains wherever its process is (a cluster node): not on this machine's device.
        followed = state == RunState.FOLLOWING
        self.device.setText("Device: the followed run's" if followed else f"Device: {self._device_name}")

    def _on_run_started(self, e: FitStart) -> None:
        self.set_device(e.device_name)

    def _on_progress(self, p: RunProgress) -> None:
        e = p.step
        self.set_progress(e.epoch, p.epochs, p.fraction)
        self.set_speed(e.samples_per_s, p.eta_s)
        self.set_memory(e.cuda_memory_allocated, e.cuda_memory_reserved)

    def _on_finished(self, outcome: RunOutcome) -> None:
        if outcome.error is None:
            s = outcome.summary
            figure = headline(s)  # the log's end line words the same number, naming its checkpoint
            extra = f", {figure}" if figure else ""
            what = RunState.of_status(outcome.status, RunState.FAILED).label
            self.showMessage(f"{what}: {s.get('epochs_completed', 0)} epoch(s){extra}", 10000)

    def _on_run_opened(self, run: OpenedRun) -> None:
        self.reset()
        self.set_progress(run.epochs_done, run.epochs_total, run.epochs_done / max(run.epochs_total, 1))

    # -- the fields ------------------------------------------------------------------------------

    def set_device(self, name: str) -> None:
        self._device_name = name
        self.device.setText(f"Device: {name}")

    def set_progress(self, epoch: int, epochs: int, fraction: float) -> None:
        """`fraction` is the position in the whole run (0..1)."""
        self.epoch.setText(f"Epoch {epoch}/{epochs}")
        self.progress.setValue(int(max(0.0, min(fraction, 1.0)) * 1000))

    def set_speed(self, samples_per_s: float | None, eta_s: float | None) -> None:
        self.speed.setText(f"{samples_per_s:,.0f} samples/s" if samples_per_s else "")
        self.eta.setText(f"ETA {format_duration(eta_s)}" if eta_s is not None else "")

    def set_memory(self, allocated: int | None, reserved: int | None) -> None:
        if allocated is None:
            self.memory.setVisible(False)
            return
        self.memory.setVisible(True)
        self.memory.setText(f"GPU {allocated / 2**20:,.0f} MB (reserved {(reserved or 0) / 2**20:,.0f} MB)")

    def reset(self, *_: object) -> None:
        self.epoch.setText("Epoch –")
        self.progress.setValue(0)
        self.speed.setText("")
        self.eta.setText("")
        self.memory.setVisible(False)
