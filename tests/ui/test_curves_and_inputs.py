"""Curves data (RunHistory), the plots at 100k points, and the learning-rate spin box."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator

from studio.engine.events import StepEnd
from studio.engine.records import EpochRecord, StepRecord
from studio.ui.curves_view import CurvesView
from studio.ui.history import GrowingBuffer, RunHistory
from studio.ui.spin_boxes import ScientificSpinBox, next_nice

pytestmark = pytest.mark.usefixtures("qapp")


def test_growing_buffer_keeps_every_value() -> None:
    buf = GrowingBuffer(4)
    for i in range(1000):
        buf.append(float(i))
    buf.append(None)
    assert len(buf) == 1001 and buf.view()[999] == 999 and np.isnan(buf.view()[-1])


def test_history_from_events_and_markers() -> None:
    h = RunHistory()
    steps = [
        StepEnd(
            epoch=1,
            step=i,
            loss=2.0 / i,
            accuracy=0.5,
            lr=0.1,
            batch_size=8,
            time=0.0,
            epoch_progress=i / 10,
            samples_per_s=1.0,
            changed={"lr": [0.1, 0.0123]} if i == 5 else None,
        )
        for i in range(1, 11)
    ]
    h.add_records(steps)
    h.add_records([EpochRecord("train", 1, 10, 0.5, 0.8), EpochRecord("val", 1, 10, 0.6, 0.75)])  # EpochEnd.records
    assert h.step_x.view()[-1] == pytest.approx(1.0)
    smooth = h.step_smooth.view()
    assert smooth[0] == pytest.approx(2.0)  # debiased: the first point is the first loss
    assert np.all(np.diff(smooth) < 0)
    assert [m.label for m in h.markers] == ["lr → 0.0123"] and h.markers[0].x == pytest.approx(0.5)
    assert h.best_val() == (1, pytest.approx(0.6))


def test_history_from_metrics_records_places_steps_within_epochs() -> None:
    # Records of an older file: no `epoch_progress`, so a step's place comes from its epoch's steps.
    records: list[Any] = [
        StepRecord(epoch=1, step=s, loss=1.0, accuracy=None, lr=0.1, batch_size=64, time=0.0) for s in (5, 10)
    ]
    records += [EpochRecord("train", 1, 10, 0.9, 0.5), EpochRecord("val", 1, 10, 1.1, 0.4)]
    records += [
        StepRecord(
            epoch=2, step=15, loss=0.8, accuracy=None, lr=0.1, batch_size=32, time=0.0, changed={"batch_size": [64, 32]}
        )
    ]
    h = RunHistory()
    h.load_records(records, epochs_total=4)
    assert list(h.step_x.view()) == pytest.approx([0.5, 1.0, 1.5])  # epoch 2 unfinished: its length is guessed
    assert [m.label for m in h.markers] == ["batch → 32"]
    assert list(h.epoch_loss["val"].view()) == [1.1]


def test_steps_already_loaded_from_the_file_are_not_added_twice() -> None:
    # A resumed run reloads metrics.jsonl while the trainer appends: step 20 is in both.
    records = [StepRecord(epoch=1, step=s, loss=1.0, accuracy=None, lr=0.1, batch_size=8, time=0.0) for s in (10, 20)]
    h = RunHistory()
    h.load_records(records, epochs_total=2)
    events = [
        StepEnd(
            epoch=1,
            step=s,
            loss=0.5,
            accuracy=None,
            lr=0.1,
            batch_size=8,
            time=0.0,
            epoch_progress=s / 40,
            samples_per_s=1.0,
        )
        for s in (20, 30)
    ]
    h.add_records(events)
    assert len(h.step_x) == 3 and h.last_step == 30


def test_curves_draw_100k_points_downsampled(qtbot: Any) -> None:
    # How fast is `benchmarks/gui_timer_lag.py`'s to say; this holds that every point is kept and
    # that the plot draws far fewer of them than it holds.
    h = RunHistory()
    view = CurvesView(h)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    n = 100_000
    h.epochs_total = 100
    rng = np.random.default_rng(0)
    for i in range(0, n, 1000):  # as the worker delivers them, in batches
        h.add_records(
            StepEnd(
                epoch=1 + j // 1000,
                step=j + 1,
                loss=float(1 / (1 + j * 1e-3) + rng.random() * 0.1),
                accuracy=None,
                lr=0.01,
                batch_size=64,
                time=0.0,
                epoch_progress=(j % 1000 + 1) / 1000,
                samples_per_s=1.0,
            )
            for j in range(i, i + 1000)
        )
    view.redraw()
    view.grab()  # paint once, with downsampling and clip-to-view doing their work
    shown, _ = view.c_step_smooth.getData()
    assert shown is not None and 0 < len(shown) < n // 10
    h.add_records(
        [
            StepEnd(
                epoch=100,
                step=n + 1,
                loss=0.5,
                accuracy=None,
                lr=0.01,
                batch_size=64,
                time=0.0,
                epoch_progress=1.0,
                samples_per_s=1.0,
            )
        ]
    )
    view.redraw()
    view.grab()
    assert view.point_count() == n + 1


def test_learning_rate_ladder_and_typing(qtbot: Any) -> None:
    assert next_nice(0.001, 1, 1e-6) == 0.002
    assert next_nice(0.005, 1, 1e-6) == 0.01
    assert next_nice(0.001, -1, 1e-6) == 0.0005
    assert next_nice(0.0123, -1, 1e-6) == 0.01
    assert next_nice(0.0123, 1, 1e-6) == 0.02
    spin = ScientificSpinBox(1e-6, 100.0)
    qtbot.addWidget(spin)
    spin.setValue(1e-5)
    assert spin.text() == "1e-05"
    for _ in range(18):  # 1e-5 to 10 in 18 presses of the up arrow
        spin.stepBy(1)
    assert spin.value() == pytest.approx(10.0)
    for text, state in (
        ("0.0", QValidator.State.Intermediate),
        ("3e-", QValidator.State.Intermediate),
        ("3e-4", QValidator.State.Acceptable),
        ("abc", QValidator.State.Invalid),
        ("1000", QValidator.State.Intermediate),
    ):
        assert spin.validate(text, len(text))[0] == state, text
    spin.selectAll()
    qtbot.keyClicks(spin, "2.5e-4")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert spin.value() == pytest.approx(2.5e-4)
