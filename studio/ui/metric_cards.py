"""`MetricCards`: the row of headline numbers above the curves (epoch, losses, accuracy, best).

They follow a `RunController` (the run's progress four times a second, each epoch's end, a run
opened) and read the smoothed loss and the best epoch from its `RunHistory`.
"""

from __future__ import annotations

import math

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from studio.engine.events import EpochEnd, FitStart
from studio.ui.history import RunHistory
from studio.ui.run_controller import ENDED_STATUSES, OpenedRun, RunController, RunProgress, RunRequest, RunState


def format_number(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:,.1f}"


def format_percent(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.2%}"


def loss_figure(loss_name: str) -> str:
    """What a regression loss reads as in the target's units: MSE's square root is the RMSE, L1 is the MAE."""
    return {"auto": "RMSE", "mse": "RMSE", "l1": "MAE"}.get(loss_name, "loss")


def regression_value(loss: float | None, loss_name: str) -> float | None:
    """A regression loss (in the target's units, squared for MSE) as the figure `loss_figure` names."""
    if loss is None or not math.isfinite(loss):
        return None
    return math.sqrt(max(loss, 0.0)) if loss_figure(loss_name) == "RMSE" else loss


class MetricCard(QFrame):
    """A small card: a caption, a big value and a detail line."""

    def __init__(self, title: str, object_name: str) -> None:
        super().__init__()
        self.setObjectName("metricCard")
        self.setAccessibleName(title)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 10)
        lay.setSpacing(0)
        self.title = QLabel(title.upper())
        self.title.setObjectName("metricTitle")
        self.value = QLabel("–")
        self.value.setObjectName("metricValue")
        self.value.setAccessibleName(object_name)
        self.detail = QLabel(" ")
        self.detail.setObjectName("metricDetail")
        lay.addWidget(self.title)
        lay.addWidget(self.value)
        lay.addWidget(self.detail)

    def set(self, value: str, detail: str = " ") -> None:
        self.value.setText(value)
        self.detail.setText(detail or " ")


class MetricCards(QWidget):
    """Epoch, train loss, val loss, val accuracy and best epoch of the window's run."""

    def __init__(self, history: RunHistory, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(10)
        self.epoch = MetricCard("Epoch", "epochValue")
        self.train_loss = MetricCard("Train loss", "trainLossValue")
        self.val_loss = MetricCard("Val loss", "valLossValue")
        self.val_acc = MetricCard("Val accuracy", "valAccuracyValue")
        self.best = MetricCard("Best", "bestValue")
        for card in (self.epoch, self.train_loss, self.val_loss, self.val_acc, self.best):
            lay.addWidget(card, 1)
        self.task, self.loss_name = "classification", "auto"

        controller.run_starting.connect(self._on_run_starting)
        controller.run_started.connect(self._on_run_started)
        controller.progressed.connect(self._on_progress)
        controller.epoch_ended.connect(self._on_epoch_ended)
        controller.run_opened.connect(self._on_run_opened)
        controller.run_forgotten.connect(self.clear)

    def set_task(self, task: str, loss_name: str | None = None) -> None:
        """Regression shows RMSE (or MAE) in the target's units and R² where classification shows loss and accuracy."""
        changed = task != self.task
        self.task = task
        self.loss_name = loss_name or self.loss_name
        regression = task == "regression"
        fig = loss_figure(self.loss_name) if regression else "loss"
        for card, title in (
            (self.train_loss, f"Train {fig}"),
            (self.val_loss, f"Val {fig}"),
            (self.val_acc, "Val R²" if regression else "Val accuracy"),
        ):
            card.title.setText(title.upper())
            card.setAccessibleName(title)
        if regression:
            self.val_acc.setToolTip("R²: the share of the target's variance the model explains (1 = a perfect fit)")
            self.val_loss.setToolTip(f"{fig} on the validation split, in the target's own units")
        else:
            self.val_acc.setToolTip("")
            self.val_loss.setToolTip("")
        if changed and not self.history.is_empty():  # the figures shown so far were read for the other task
            latest = self.history.latest_epoch_metrics()
            self.val_acc.set("–")
            if latest.get("train_loss") is not None:
                self.train_loss.set(self._loss(latest["train_loss"]), "last epoch")
            self._show_epoch(latest, "last epoch")
            self._show_best()

    def _loss(self, v: float | None) -> str:
        return format_number(regression_value(v, self.loss_name) if self.task == "regression" else v)

    def clear(self) -> None:
        for card in (self.epoch, self.train_loss, self.val_loss, self.val_acc, self.best):
            card.set("–")

    # -- following the run -----------------------------------------------------------------------

    def _on_run_starting(self, request: RunRequest) -> None:
        if not request.resume:
            self.clear()

    def _on_run_started(self, e: FitStart) -> None:
        self.epoch.set(f"{e.start_epoch}/{e.epochs}", "starting")

    def _on_progress(self, p: RunProgress) -> None:
        e = p.step
        self.epoch.set(f"{e.epoch}/{p.epochs}", f"step {e.step:,} · {e.epoch_progress or 0.0:.0%} of epoch")
        smoothed = self.history.smoothed_loss()
        self.train_loss.set(
            self._loss(e.loss if smoothed is None else smoothed), f"lr {e.lr:.3g} · batch {e.batch_size}"
        )

    def _on_epoch_ended(self, e: EpochEnd) -> None:
        self._show_epoch(e.metrics, f"epoch {e.epoch}")
        self._show_best()

    def _show_epoch(self, m: dict[str, float | None], when: str) -> None:
        if self.task == "regression":
            if m.get("val_loss") is not None:
                mae = m.get("val_mae")
                self.val_loss.set(self._loss(m["val_loss"]), when + (f" · MAE {format_number(mae)}" if mae else ""))
            r2 = m.get("val_r2")
            self.val_acc.set("–" if r2 is None else f"{r2:.3f}", "1 = a perfect fit" if r2 is not None else when)
            return
        if m.get("val_loss") is not None:
            self.val_loss.set(format_number(m["val_loss"]), when)
        if m.get("val_accuracy") is not None:
            self.val_acc.set(f"{m['val_accuracy']:.2%}", f"train {format_percent(m.get('train_accuracy'))}")

    def _on_run_opened(self, run: OpenedRun) -> None:
        self.clear()
        state = RunState.of_status(run.status, RunState.READY)
        self.epoch.set(f"{run.epochs_done}/{run.epochs_total}", state.label if run.status in ENDED_STATUSES else "")
        latest = self.history.latest_epoch_metrics()
        if latest.get("train_loss") is not None:
            self.train_loss.set(self._loss(latest["train_loss"]), "last epoch")
        self._show_epoch(latest, f"epoch {run.epochs_done}")
        self._show_best()

    def _show_best(self) -> None:
        best = self.history.best_val()
        if best is not None:
            epoch, loss = best
            if self.task == "regression":
                self.best.set(f"epoch {epoch}", f"val {loss_figure(self.loss_name)} {self._loss(loss)}")
                return
            acc = self.history.val_accuracy_at(epoch)
            self.best.set(
                f"epoch {epoch}", f"val loss {format_number(loss)}" + (f" · acc {acc:.2%}" if acc is not None else "")
            )
