"""Every value the window does not take as typed says why, under the field and in the status bar."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from studio.ui.setup_panels import TrainingPanel

pytestmark = pytest.mark.usefixtures("qapp")


def _type(qtbot: Any, spin: Any, text: str) -> None:
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin, Qt.Key.Key_Return)


def _panel(qtbot: Any) -> TrainingPanel:
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_a_learning_rate_of_zero_is_refused_with_a_reason(qtbot: Any) -> None:
    panel = _panel(qtbot)
    field = panel.fields["train.lr"]
    with qtbot.waitSignal(field.explained) as sig:
        _type(qtbot, panel.lr_spin, "0")
    assert panel.lr_spin.value() == pytest.approx(0.001)
    assert "more than 0" in sig.args[0] and "kept 0.001" in sig.args[0]
    assert field.hint.isVisible() and field.hint.text() == sig.args[0]
    _type(qtbot, panel.lr_spin, "0.01")  # a value taken clears the explanation
    assert panel.lr_spin.value() == pytest.approx(0.01) and not field.hint.isVisible()


def test_a_huge_batch_size_says_it_was_not_taken(qtbot: Any) -> None:
    panel = _panel(qtbot)
    field = panel.fields["train.batch_size"]
    with qtbot.waitSignal(field.explained) as sig:
        _type(qtbot, panel.batch_spin, "1000000")
    assert "1000000 not taken" in sig.args[0] and f"{panel.batch_spin.maximum():,}" in sig.args[0]
    assert f"{panel.batch_spin.value():,}" in sig.args[0]
    assert field.hint.isVisible()


def test_a_batch_larger_than_the_data_warns_as_the_cli_does(qtbot: Any) -> None:
    panel = _panel(qtbot)
    panel.set_train_samples(6400)
    field = panel.fields["train.batch_size"]
    with qtbot.waitSignal(field.explained) as sig:
        panel.batch_spin.setValue(60000)
    assert "larger than the 6,400 training samples" in sig.args[0]
    panel.batch_spin.setValue(64)
    assert not field.hint.isVisible()


def test_a_loaded_value_beyond_the_range_says_so(qtbot: Any) -> None:
    panel = _panel(qtbot)
    field = panel.fields["train.batch_size"]
    with qtbot.waitSignal(field.explained) as sig:
        field.set_value(1_000_000)
    assert "1e+06" in sig.args[0] or "1000000" in sig.args[0]
    assert field.hint.isVisible()
