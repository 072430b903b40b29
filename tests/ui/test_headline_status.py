"""The status bar's end message gives the run's one headline number and names its checkpoint."""

from __future__ import annotations

from typing import Any

from studio.ui.worker import RunOutcome


def test_the_status_bar_names_the_checkpoint_of_the_test_figure(make_window: Any) -> None:
    w = make_window()
    summary = {
        "epochs_completed": 3,
        "metrics": {"test_accuracy": 0.948, "test_loss": 0.2},
        "checkpoint": "best",
        "best": {"epoch": 2, "val_loss": 0.19},
    }
    w.status._on_finished(RunOutcome("runs/x", "completed", summary))
    assert "test accuracy 0.9480 (best checkpoint, epoch 2)" in w.status.currentMessage()
    regression = {"epochs_completed": 1, "metrics": {"test_rmse": 1.5, "test_r2": 0.9}, "checkpoint": "last"}
    w.status._on_finished(RunOutcome("runs/y", "completed", regression))
    assert "test RMSE 1.5, R² 0.9000 (last weights)" in w.status.currentMessage()
