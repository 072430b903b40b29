"""Small windows (1280×720, 895 px wide): nothing is clipped."""

from __future__ import annotations

import math
from typing import Any

import pytest
from PySide6.QtWidgets import QComboBox, QScrollArea, QWidget

from studio.ui.chart_style import log_axis_range
from studio.ui.history import RunHistory
from studio.ui.run_controller import RunController
from studio.ui.setup_sidebar import SetupSidebar

pytestmark = pytest.mark.usefixtures("qapp")


def test_the_sidebar_fields_fit_its_narrowest_width(qtbot: Any) -> None:
    bar = SetupSidebar(RunController(RunHistory()))
    qtbot.addWidget(bar)
    bar.resize(bar.minimumWidth(), 700)  # what an 895 px window leaves it
    bar.show()
    scroll = bar.findChild(QScrollArea, "setupScroll")
    qtbot.waitUntil(lambda: scroll.viewport().width() > 0)
    viewport = scroll.viewport()
    for field in (f for card in bar.cards for f in card.fields.values()):
        w: QWidget = field.widget
        if not w.isVisible():
            continue
        right = w.mapTo(viewport, w.rect().topRight()).x()
        assert right <= viewport.width(), f"{field.name} ends at {right} of {viewport.width()} px"
    source = bar.data_panel.fields["data.source"].editor
    assert isinstance(source, QComboBox) and source.minimumSizeHint().width() < 200


@pytest.mark.parametrize(("lo", "hi"), [(1e-3, 1e-3), (1e-3, 2e-3), (1e-8, 1e-2), (0.001, 10.0)])
def test_learning_rate_axes_span_whole_decades(lo: float, hi: float) -> None:
    a, b = log_axis_range(lo, hi)
    assert b - a >= 2.0  # decade ticks only, never a crowd of minor ones
    assert a <= max(lo, hi * 1e-4) and hi <= 10**b
    assert a >= math.log10(hi) - 4.5  # a tail towards 0 does not flatten the rest


def test_predict_bars_keep_their_height_and_follow_the_dark_theme(qtbot: Any, qapp: Any) -> None:
    from PySide6.QtGui import QColor

    from studio.ui.predict_widgets import ProbabilityBars
    from studio.ui.theme import DARK, LIGHT, apply_theme

    apply_theme(qapp, "light")
    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    assert bars.minimumHeight() >= 26 * 5  # five bars never squash into stacked labels
    bars.show_top([["4", 0.93], ["8", 0.036], ["6", 0.006]])
    assert [t.textItem.toPlainText() for t in bars._texts] == ["93.0%", "3.6%", "0.6%"]
    assert bars._texts[1].color == QColor(LIGHT.text)
    try:
        apply_theme(qapp, "dark")
        bars.apply_theme()
        assert bars._texts[1].color == QColor(DARK.text) and bars.labels == ["4", "8", "6"]
    finally:
        apply_theme(qapp, "light")
