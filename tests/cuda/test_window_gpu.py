"""The window training on the GPU (offscreen), with a live batch-size change and the CUDA memory plot."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="the window needs Qt and its system libraries", exc_type=ImportError)
pytest.importorskip("pytestqt")

from studio.config import Config
from studio.engine.run_dir import read_summary
from tests.ui.conftest import _garbage_on_the_gui_thread, _settings_in_tmp, dialogs, make_window  # noqa: F401
from tests.ui.metrics_reading import step_records
from tests.ui.test_main_window import click, type_into

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("qapp")]


# The window fixtures are tests/ui's (imported above); the parameter names the fixture.
def test_the_window_trains_on_the_gpu_and_takes_a_live_batch_size(qtbot: Any, make_window: Any) -> None:  # noqa: F811
    from PySide6.QtWidgets import QSpinBox

    config = Config().replace_value("train.device", "cuda").replace_value("train.epochs", 30)
    w = make_window(config.replace_value("model.arch", "lenet"))
    click(qtbot, w, "trainButton")
    qtbot.waitUntil(lambda: w.curves.point_count() >= 2, timeout=30000)
    run = w.current_run_dir
    type_into(qtbot, w.findChild(QSpinBox, "batchSizeSpinBox"), "256")
    qtbot.waitUntil(lambda: any(r["batch_size"] == 256 for r in step_records(run)), timeout=30000)
    changed = [r for r in step_records(run) if (r.get("changed") or {}).get("batch_size")]
    assert changed and changed[0]["changed"]["batch_size"] == [64, 256]
    assert all(r.get("cuda_memory_allocated", 0) > 0 for r in step_records(run))
    qtbot.waitUntil(lambda: w.history.cuda_seen, timeout=10000)  # the CUDA memory plot has data
    click(qtbot, w, "stopButton")
    qtbot.waitUntil(lambda: not w.is_training, timeout=60000)
    assert read_summary(run)["status"] == "stopped"
