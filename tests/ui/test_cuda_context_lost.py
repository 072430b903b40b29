"""After a CUDA error breaks the process's CUDA context, the window's next GPU runs train in a child
process (`studio train` / `studio resume`, followed through the run directory), so they work
without restarting the application. On the CPU the lost context is a stand-in flag; tests/cuda
breaks a real one."""

from __future__ import annotations

from typing import Any

import pytest

from studio.config import Config
from studio.engine import cuda_errors
from studio.engine.run_dir import RunDir
from studio.ui import run_follower
from studio.ui.run_controller import RunState


def test_after_a_lost_context_runs_and_continued_runs_train_in_a_child_process(
    make_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cuda_errors, "needs_fresh_process", lambda device: True)  # as after a device-side assert
    w = make_window(Config().replace_value("train.epochs", 1))
    assert w.start_training()
    assert isinstance(w.controller.worker, run_follower.RunFollowWorker)  # supervised, not the training thread
    qtbot.waitUntil(lambda: w.controller.state == RunState.COMPLETED, timeout=120000)
    run = w.current_run_dir
    summary = RunDir(run).read_summary()
    assert summary is not None and summary["status"] == "completed" and summary["epochs_completed"] == 1

    w.set_config(w.config().replace_value("train.epochs", 2))
    assert w.start_training(resume=True)
    assert isinstance(w.controller.worker, run_follower.RunFollowWorker)
    qtbot.waitUntil(lambda: w.controller.state == RunState.COMPLETED, timeout=120000)
    summary = RunDir(run).read_summary()
    assert summary is not None and summary["epochs_completed"] == 2  # `studio resume` continued the same run
