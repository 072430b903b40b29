"""What keeps the window smooth while a run trains: steady axes, one plot redrawn per timer tick,
the validation grid rebuilt at most once a second, and a collector that leaves the run's set-up alone.

The speed itself is measured by `benchmarks/gui_timer_lag.py`; these tests hold the behaviour.
"""

from __future__ import annotations

import gc
import math
import weakref
from typing import Any

import numpy as np
import pytest

from studio.engine.events import StepEnd
from studio.engine.prediction_samples import PredictionSamples
from studio.engine.records import EpochRecord
from studio.ui.curves_view import PLOT_NAMES
from studio.ui.garbage import freeze_run_objects, release_run_objects
from studio.ui.history import RunHistory
from studio.ui.live_insight import LiveInsightView
from studio.ui.sticky_range import RunningBounds, StickyRange

pytestmark = pytest.mark.usefixtures("qapp")


def test_running_bounds_reads_only_what_was_appended() -> None:
    b = RunningBounds()
    b.update(np.array([3.0, np.nan, 1.5]))
    assert (b.lo, b.hi, b.positive_lo, b.seen) == (1.5, 3.0, 1.5, 3)
    b.update(np.array([3.0, np.nan, 1.5, -2.0, np.inf, 0.25]))
    assert (b.lo, b.hi, b.positive_lo, b.seen) == (-2.0, 3.0, 0.25, 6)
    b.update(np.array([7.0]))  # shorter than what was seen: a new run refilled the array
    assert (b.lo, b.hi, b.positive_lo) == (7.0, 7.0, 7.0)


def test_sticky_range_moves_only_when_the_data_needs_it() -> None:
    s = StickyRange(pad=0.1, fill=0.5)
    assert s.fit(0.0, 10.0) == pytest.approx((-1.0, 11.0))
    assert s.fit(1.0, 9.0) is None  # inside and filling most of it: the axis stays
    assert s.fit(0.0, 12.0) == pytest.approx((-1.2, 13.2))  # the data left it
    assert s.fit(0.0, 5.0) == pytest.approx((-0.5, 5.5))  # it shrank to less than half the range
    assert s.fit(math.nan, 1.0) is None and s.fit(2.0, 1.0) is None
    lo, hi = s.fit(5.0, 5.0) or (0.0, 0.0)  # a flat line still gets a band around it
    assert lo < 5.0 < hi


def _steps(h: RunHistory, first: int, n: int, loss: float, epoch: int = 1) -> None:
    h.add_records(
        StepEnd(
            epoch=epoch,
            step=s,
            loss=loss,
            accuracy=None,
            lr=0.01,
            batch_size=64,
            time=0.0,
            epoch_progress=(s - first + 1) / n,
            samples_per_s=1.0,
        )
        for s in range(first, first + n)
    )


def _points(curve: Any) -> int:
    x, _ = curve.getOriginalDataset()
    return 0 if x is None else len(x)


def test_curves_timer_redraws_one_plot_a_tick(curves_view: Any) -> None:
    view = curves_view(10)
    h = view.history
    view._timer.stop()  # the test drives the ticks
    _steps(h, 1, 50, 1.0)
    h.add_records([EpochRecord("train", 1, 50, 0.9, 0.6), EpochRecord("val", 1, 50, 1.0, 0.55)])
    drawn = []
    for _ in PLOT_NAMES:
        view._on_tick()
        drawn.append((_points(view.c_step_smooth), _points(view.c_acc_val), _points(view.c_lr)))
    # Each tick filled exactly one more plot: accuracy, then the learning rate, then the loss.
    assert drawn == [(0, 1, 0), (0, 1, 50), (50, 1, 50)]


def test_loss_axis_stays_put_while_the_loss_stays_inside_it(curves_view: Any) -> None:
    view = curves_view(10)
    h = view.history
    view._timer.stop()
    _steps(h, 1, 50, 2.0)
    _steps(h, 51, 50, 1.0)
    view.redraw()
    first = view.loss_plot.getPlotItem().getViewBox().viewRange()[1]
    assert first[0] < 1.0 and first[1] > 2.0
    _steps(h, 101, 50, 1.2)  # new points, still inside the axis
    view.redraw()
    assert view.loss_plot.getPlotItem().getViewBox().viewRange()[1] == first
    _steps(h, 151, 50, 3.5)  # a spike above the axis: it grows to show it
    view.redraw()
    grown = view.loss_plot.getPlotItem().getViewBox().viewRange()[1]
    assert grown[1] > 3.5 and grown[0] < 1.0
    view.log_scale.setChecked(True)  # the log axis spans the same data, in log10 units
    lo, hi = view.loss_plot.getPlotItem().getViewBox().viewRange()[1]
    assert lo < math.log10(1.0) and hi > math.log10(3.5)


def _samples(epoch: int) -> PredictionSamples:
    return PredictionSamples(
        epoch=epoch,
        images=np.zeros((4, 1, 28, 28), dtype=np.uint8),
        true=(0, 1, 2, 3),
        pred=(0, 1, 2, 9),
        confidence=(0.9, 0.8, 0.7, 0.6),
        labels=tuple(str(i) for i in range(10)),
    )


def test_validation_grid_shows_the_latest_epoch_at_most_once_a_second(qtbot: Any) -> None:
    view = LiveInsightView()
    qtbot.addWidget(view)
    view.set_predictions(_samples(1))
    assert view.samples_title.text().startswith("Validation predictions after epoch 1")
    view.set_predictions(_samples(2))
    view.set_predictions(_samples(3))  # epochs shorter than a second: only the latest is drawn
    assert view.samples_title.text().startswith("Validation predictions after epoch 1")
    qtbot.waitUntil(lambda: view.samples_title.text().startswith("Validation predictions after epoch 3"))
    assert view.samples.count() == 4 and view.samples.wrong_count() == 1


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_frozen_with_a_run_is_freed_when_the_run_ends() -> None:
    was_enabled = gc.isenabled()
    gc.disable()  # as the window runs it: collections only when asked
    try:
        garbage = _Cycle()
        alive = weakref.ref(garbage)
        del garbage  # a cycle: only the collector frees it
        freeze_run_objects()  # the run's first steps: what exists now stays out of the scans
        gc.collect()
        assert alive() is not None  # a collection while the run trains does not scan it
        release_run_objects()  # the run ended
        assert alive() is None
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
