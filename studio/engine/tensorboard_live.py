"""TensorBoard event files written live, beside metrics.jsonl, while a run trains.

`tensorboard --logdir runs` then shows a run as it trains, as TensorBoard users expect. It is a
callback on the loop (registered by the trainer when `[train] tensorboard` is on, the run has a
folder, and the tensorboard package is installed); the tags are those of the export for old runs
(`tensorboard_export.py`), so a live run and an exported one read alike. Writing is best effort:
a failure to write events costs the events, never the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import Config
from studio.engine.callbacks import Callback, TrainerView
from studio.engine.events import EpochEnd, FitEnd, FitStart
from studio.engine.records import StepRecord
from studio.engine.run_dir import RunDir
from studio.engine.tensorboard_export import STEP_TAGS, tensorboard_available

EPOCH_FIGURES = ("loss", "accuracy", "rmse", "mae", "r2")
FLUSH_S = 5  # the longest a written figure waits in memory before TensorBoard can see it


class TensorBoardLogger(Callback):
    """Writes step and epoch figures to TensorBoard event files in `log_dir` as the run goes."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.writer: Any = None  # torch.utils.tensorboard.SummaryWriter while the fit runs

    def on_fit_start(self, trainer: TrainerView, event: FitStart) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard present but broken, or too old for this torch
            return
        # A resumed run drops the events an interrupted process wrote after its last checkpoint,
        # as metrics.jsonl does, so no step shows twice.
        purge = event.step + 1 if event.resumed else None
        try:
            self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge, flush_secs=FLUSH_S)
        except OSError as exc:
            self._give_up(trainer, exc)

    def on_step_end(self, trainer: TrainerView, event: StepRecord) -> None:
        if self.writer is None:
            return
        for key, tag in STEP_TAGS.items():
            value = event.get(key)
            if isinstance(value, (int, float)):
                self._scalar(trainer, tag, float(value), event.step)

    def on_epoch_end(self, trainer: TrainerView, event: EpochEnd) -> None:
        if self.writer is None:
            return
        for record in event.records:
            for key in EPOCH_FIGURES:
                value = record.get(key)
                if isinstance(value, (int, float)):
                    self._scalar(trainer, f"epoch/{record.split}_{key}", float(value), record.step)
        self._flush(trainer)

    def on_fit_end(self, trainer: TrainerView, event: FitEnd) -> None:
        if self.writer is None:
            return
        metrics = event.summary.get("metrics") or {}
        step = int(event.summary.get("step") or trainer.state.step)
        for key in EPOCH_FIGURES:
            value = metrics.get(f"test_{key}")
            if isinstance(value, (int, float)):
                self._scalar(trainer, f"epoch/test_{key}", float(value), step)
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except OSError:
                pass

    def _scalar(self, trainer: TrainerView, tag: str, value: float, step: int) -> None:
        try:
            self.writer.add_scalar(tag, value, step)
        except OSError as exc:
            self._give_up(trainer, exc)

    def _flush(self, trainer: TrainerView) -> None:
        try:
            self.writer.flush()
        except OSError as exc:
            self._give_up(trainer, exc)

    def _give_up(self, trainer: TrainerView, exc: OSError) -> None:
        self.writer = None
        say = getattr(trainer, "message", None)
        if say is not None:
            say(f"TensorBoard events are no longer written ({exc.strerror or exc}); training goes on", "warning")


def live_loggers(config: Config, run_dir: Path | None) -> list[Callback]:
    """The callbacks that log a run live beside metrics.jsonl: TensorBoard when on and installed."""
    if run_dir is None or not config.train.tensorboard or not tensorboard_available():
        return []
    return [TensorBoardLogger(RunDir(run_dir).tensorboard)]
