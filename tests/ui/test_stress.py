"""Train in the worker for 20+ seconds with the event loop running: no crash, no stall, no frozen UI."""

from __future__ import annotations

import time
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSpinBox, QToolButton

from studio.config import Config
from studio.engine.run_dir import read_summary
from studio.ui.responsiveness import TimerLagProbe
from tests.ui.metrics_reading import step_records

pytestmark = [pytest.mark.usefixtures("qapp"), pytest.mark.slow]

STRESS_S = 20.5


@pytest.mark.slow
def test_long_run_keeps_the_gui_responsive(qtbot: Any, make_window: Any, capfd: Any) -> None:
    # log_every=1: a step event for every optimizer step, the heaviest load the bridge can get.
    cfg = Config().replace_value("train.epochs", 10000).replace_value("train.log_every", 1)
    w = make_window(cfg)
    updates: list[float] = []
    w.history.changed.connect(lambda: updates.append(time.perf_counter()))
    probe = TimerLagProbe(10)
    qtbot.mouseClick(w.findChild(QToolButton, "trainButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.curves.point_count() > 0, timeout=15000)
    probe.start()
    t0 = time.perf_counter()
    lr_spin, bs_spin = w.findChild(object, "lrSpinBox"), w.findChild(QSpinBox, "batchSizeSpinBox")
    changes = 0
    paused_between: tuple[float, float] | None = None
    while time.perf_counter() - t0 < STRESS_S:
        qtbot.wait(500)
        changes += 1
        if changes % 2:  # live changes all along, as a user fiddling with the knobs
            lr_spin.setValue(0.001 if changes % 4 == 1 else 0.002)
        else:
            bs_spin.setValue(64 if changes % 4 == 0 else 48)
        if changes == 10:
            w.toggle_pause()
            p0 = time.perf_counter()
            qtbot.wait(700)
            w.toggle_pause()
            paused_between = (p0, time.perf_counter())
    probe.stop()
    ran_s = time.perf_counter() - t0
    qtbot.mouseClick(w.findChild(QToolButton, "stopButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.is_training, timeout=5000)

    assert ran_s >= 20
    summary = read_summary(w.current_run_dir)
    assert summary["status"] == "stopped"
    steps = step_records(w.current_run_dir)
    assert len(steps) > 200
    # Nothing lost, nothing duplicated on the way (the plot timer draws the last points soon after).
    qtbot.waitUntil(lambda: w.curves.point_count() == len(steps), timeout=3000)
    assert len({r["batch_size"] for r in steps}) >= 2 and len({r["lr"] for r in steps}) >= 2
    # No stall: the curves got new points at least every 1.5 s (the deliberate pause excepted).
    gaps = [(b - a, a) for a, b in zip(updates, updates[1:]) if a >= t0]
    assert paused_between is not None
    real_gaps = [g for g, at in gaps if not (paused_between[0] - 0.6 <= at <= paused_between[1])]
    assert max(real_gaps) < 1.5, f"longest gap between curve updates {max(real_gaps):.2f}s"
    # The throttle held: at most ~20 step emissions a second reached the GUI thread.
    assert len(updates) <= 20 * (ran_s + 5) + summary["epochs_completed"] * 2 + 50
    assert "QThread: Destroyed" not in capfd.readouterr().err
    with capfd.disabled():
        print(f"\nstress: {ran_s:.1f}s, {len(steps)} steps, {len(updates)} curve updates; {probe.summary()}")
    # Under this worst case (an event per step, a change every half second) the UI never freezes;
    # the < 50 ms figure for ordinary training is checked below.
    assert probe.percentile(99) < 250.0 and max(probe.lags_ms) < 1000.0, probe.summary()


@pytest.mark.slow
def test_gui_timer_is_less_than_50ms_late_at_p99_while_training(qtbot: Any, make_window: Any, capfd: Any) -> None:
    """The issue's figure: a 10 ms timer on the GUI thread, p99 lateness < 50 ms while training.

    Measured over 5-second windows, best of three: a shared CI machine can be busy for a few
    seconds, but a window that blocks its GUI thread fails all three.
    """
    w = make_window(Config().replace_value("train.epochs", 10000))  # the default setup, trained long
    qtbot.mouseClick(w.findChild(QToolButton, "trainButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.curves.point_count() > 0, timeout=15000)
    results = []
    for _ in range(3):
        probe = TimerLagProbe(10)
        step0 = w.history.last_step
        probe.start()
        qtbot.wait(5000)
        probe.stop()
        assert w.history.last_step > step0 + 50 and len(probe.lags_ms) > 200  # it was training all along
        results.append(probe)
        if probe.percentile(99) < 50.0:
            break
    qtbot.mouseClick(w.findChild(QToolButton, "stopButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.is_training, timeout=5000)
    with capfd.disabled():
        for probe in results:
            print(f"\ntimer lag while training the default setup: {probe.summary()}")
    best = min(results, key=lambda p: p.percentile(99))
    assert best.percentile(99) < 50.0, best.summary()
