"""One record shape: a run drawn live and the same run reopened from its folder give the same series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from studio.config import load_config
from studio.engine.callbacks import Callback
from studio.engine.run_dir import read_metrics
from studio.engine.trainer import Trainer
from studio.ui.history import RunHistory, StepSignals

pytestmark = pytest.mark.usefixtures("qapp")


class Live(Callback):
    """What the window's controller does with the worker's signals, without the threads."""

    def __init__(self, history: RunHistory) -> None:
        self.history = history

    def on_step_end(self, trainer: Any, record: Any) -> None:
        self.history.add_records([record])

    def on_epoch_end(self, trainer: Any, event: Any) -> None:
        self.history.add_records(event.records)


def test_live_records_and_a_reopened_run_give_the_same_series(tmp_path: Path) -> None:
    cfg = load_config(
        "examples/digits.toml", ["model.hidden=[16]", "train.epochs=2", "train.batch_size=512", "train.log_every=2"]
    )
    live = RunHistory()
    Trainer(cfg, tmp_path / "run", callbacks=[Live(live)]).fit()
    reopened = RunHistory()
    reopened.load_records(read_metrics(tmp_path / "run"), 2)
    assert len(live.step_x) > 10 and len(live.epoch_x["val"]) == 2
    for name in ("step_x", "step_loss", "step_smooth", "step_lr", "step_acc"):
        np.testing.assert_array_equal(getattr(live, name).view(), getattr(reopened, name).view(), err_msg=name)
    for name in StepSignals.NAMES:
        np.testing.assert_array_equal(live.signals.view(name), reopened.signals.view(name), err_msg=name)
    for name in ("epoch_x", "epoch_loss", "epoch_acc"):
        for split in ("train", "val"):
            np.testing.assert_array_equal(getattr(live, name)[split].view(), getattr(reopened, name)[split].view())
    assert live.best_val() == reopened.best_val() and live.last_step == reopened.last_step
