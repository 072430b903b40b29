"""Live-change markers never overlap or hide a curve; the lr axis is logarithmic; the loss has a
smoothing slider; a loss that explodes after a change points at it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QRectF

from studio.engine.records import StepRecord
from studio.ui.change_markers import layout_labels
from studio.ui.curves_view import CurvesView
from studio.ui.history import ChangeMarker, RunHistory

pytestmark = pytest.mark.usefixtures("qapp")


def _steps(n: int, changes: dict[int, dict[str, list[float]]], loss: float = 1.0, jump_at: int = 0) -> list[StepRecord]:
    return [
        StepRecord(
            epoch=1 + i // 100,
            step=i,
            loss=loss * (1e4 if jump_at and i >= jump_at else 1.0),
            accuracy=None,
            lr=0.001,
            batch_size=64,
            time=0.0,
            epoch_progress=(i % 100) / 100,
            changed=changes.get(i),
        )
        for i in range(1, n + 1)
    ]


def _no_overlap(rects: list[QRectF]) -> bool:
    return not any(a.intersects(b) for a, b in itertools.combinations(rects, 2))


@pytest.mark.parametrize("width", [120.0, 400.0, 1200.0])
def test_labels_never_overlap_at_any_width(width: float) -> None:
    rng = np.random.default_rng(0)
    # Clusters of changes close together, the case that printed "bat batch - lr → 10".
    xs = np.concatenate([rng.uniform(0, width, 30), np.full(5, width * 0.5), np.full(3, width - 2)])
    items = [(float(x), 60.0, ChangeMarker(float(x), f"lr → {i}")) for i, x in enumerate(xs)]
    placed = layout_labels(items, width, 300.0, 14.0)
    rects = [p.rect for p in placed]
    assert placed and _no_overlap(rects)
    assert all(r.left() >= 0 and r.right() <= width for r in rects)
    assert max(p.row for p in placed) < 4  # at most four rows: the curves below stay visible


def test_the_markers_on_the_plots_neither_overlap_nor_clip_at_small_and_large_sizes(qtbot, curves_view) -> None:
    view = curves_view(3)
    h = view.history
    changes = {
        50: {"lr": [0.001, 0.01]},
        51: {"batch_size": [64, 256]},
        53: {"lr": [0.01, 10.0]},
        150: {"lr": [10.0, 0.001]},
    }
    h.add_records(_steps(200, changes))
    for size in ((1280, 720), (640, 360), (1900, 1000)):
        view.resize(*size)
        view.show()
        view.redraw()
        qtbot.waitUntil(lambda: view.markers[0].placed != [] or view.width() < 0, timeout=2000)
        for markers in view.markers:
            markers.scene().views()[0].viewport().repaint()
            rects = [p.rect for p in markers.placed]
            assert _no_overlap(rects)
            box = markers.boundingRect()
            assert all(box.contains(r) for r in rects)
        assert len(view.markers[1].placed) == 0  # the accuracy plot shows lines only
        assert {p.marker.key for p in view.markers[2].placed} <= {"lr"}  # the lr plot names its own changes


def test_a_marker_tooltip_gives_the_full_change(curves_view) -> None:
    view = curves_view(2, (900, 600))
    h = view.history
    h.add_records(_steps(100, {40: {"lr": [0.001, 0.01]}}))
    view.redraw()
    markers = view.markers[0]
    (x0, x1), _ = markers._vb.viewRange()
    px = (h.markers[0].x - x0) / (x1 - x0) * markers._vb.width()
    tip = markers.tooltip_at(px)
    assert "learning rate 0.001 → 0.01" in tip and "step 40" in tip
    assert markers.tooltip_at(px + 50) == ""


def test_the_learning_rate_axis_is_logarithmic(qtbot) -> None:
    view = CurvesView(RunHistory())
    qtbot.addWidget(view)
    assert view.lr_plot.getPlotItem().getAxis("left").logMode


def test_the_smoothing_slider_goes_from_raw_to_smooth(curves_view) -> None:
    view = curves_view(1)
    h = view.history
    rng = np.random.default_rng(1)
    recs = _steps(100, {})
    recs = [StepRecord(**{**r.__dict__, "loss": float(1 + rng.normal())}) for r in recs]
    h.add_records(recs)
    view.smoothing.setValue(0)
    view.redraw()
    raw = h.step_loss.view()
    assert np.allclose(view.c_step_smooth.getOriginalDataset()[1], raw)
    view.smoothing.setValue(90)
    view.redraw()
    smooth = view.c_step_smooth.getOriginalDataset()[1]
    assert np.std(np.diff(smooth)) < 0.3 * np.std(np.diff(raw))
    assert "0.90" in view.smoothing_label.text()


def test_a_loss_that_explodes_after_a_live_change_points_at_it(qtbot) -> None:
    h = RunHistory()
    h.epochs_total = 2
    with qtbot.waitSignal(h.diverged) as sig:
        h.add_records(_steps(120, {60: {"lr": [0.001, 10.0]}}, jump_at=62))
    index, message = sig.args
    assert index == 0 and "lr → 10" in message and "(step 60)" in message
    assert h.alarms == {0: message}
    view = CurvesView(h)
    qtbot.addWidget(view)
    view.redraw()
    assert message in view.markers[0].tooltip_at(view.markers[0]._pixel_x()[0])


def test_a_calm_change_raises_no_alarm(qtbot) -> None:
    h = RunHistory()
    with qtbot.assertNotEmitted(h.diverged):
        h.add_records(_steps(120, {60: {"lr": [0.001, 0.002]}}))
    assert h.alarms == {}


def test_regression_runs_have_no_accuracy_plot(qtbot) -> None:
    view = CurvesView(RunHistory())
    qtbot.addWidget(view)
    view.show()
    view.set_task("regression")
    assert not view.acc_card.isVisible() and view.lr_card.isVisible()
    view.set_task("classification")
    assert view.acc_card.isVisible()


def test_the_empty_plot_hint_never_sits_on_a_legend(curves_view) -> None:
    view = curves_view(1, (700, 400))
    h = view.history
    view.redraw()
    assert view._placeholder.isVisible() and not view.loss_card.legend.isVisible()
    h.add_records(_steps(10, {}))
    view.redraw()
    assert not view._placeholder.isVisible() and view.loss_card.legend.isVisible()


def test_an_explosion_after_a_change_reaches_the_log_and_the_status_bar(qtbot) -> None:
    from studio.ui.run_controller import RunController

    h = RunHistory()
    controller = RunController(h)
    notices: list[str] = []
    messages: list[object] = []
    controller.notice.connect(lambda text, _ms: notices.append(text))
    controller.message.connect(messages.append)
    h.add_records(_steps(120, {60: {"lr": [0.001, 10.0]}}, jump_at=62))
    assert len(notices) == 1 and notices[0].startswith("⚠ The loss went from 1 to 1e+04 after lr → 10")
    assert [m.level for m in messages] == ["warning"] and "lr → 10" in messages[0].text
