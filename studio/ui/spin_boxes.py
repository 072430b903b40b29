"""Spin boxes for values that span decades: the learning rate (1e-5 .. 10) and weight decay."""

from __future__ import annotations

import math

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QWidget

_MANTISSAS = (1.0, 2.0, 5.0)


def next_nice(value: float, steps: int, floor: float) -> float:
    """Move `steps` along the 1-2-5 ladder (…, 0.001, 0.002, 0.005, 0.01, …) from `value`."""
    if value <= 0:
        return floor if steps > 0 else 0.0
    ladder_pos = math.log10(value)
    exp = math.floor(ladder_pos + 1e-12)
    mant = value / 10**exp
    # Where on the ladder `value` sits; an off-ladder value moves to its neighbour first.
    idx = max(i for i, m in enumerate(_MANTISSAS) if m <= mant + 1e-9)
    on_ladder = abs(_MANTISSAS[idx] - mant) < 1e-9
    pos = exp * 3 + idx
    if not on_ladder and steps < 0:
        pos += 1  # stepping down from 0.0123 lands on 0.01, not 0.005
    pos += steps
    e, i = divmod(pos, 3)
    return float(f"{_MANTISSAS[i] * 10**e:.12g}")


class ScientificSpinBox(QDoubleSpinBox):
    """A spin box showing values compactly (0.001, 1e-05), accepting typed scientific notation,
    and stepping along 1-2-5 so the arrow keys cover 1e-5 to 10 in a few presses."""

    def __init__(self, minimum: float, maximum: float, parent: QWidget | None = None, allow_zero: bool = False) -> None:
        super().__init__(parent)
        self._floor = max(minimum, 1e-6) if not allow_zero else 1e-6
        self.setDecimals(12)
        self.setRange(0.0 if allow_zero else minimum, maximum)
        self.setKeyboardTracking(False)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToPreviousValue)
        self.setAccelerated(False)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        t = text.strip()
        if not t:
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            partial = t.rstrip("eE+-.")
            ok = all(c in "0123456789.eE+-" for c in t)
            state = (
                QValidator.State.Intermediate
                if ok and (not partial or _is_float(partial))
                else QValidator.State.Invalid
            )
            return state, text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        value = next_nice(self.value(), steps, self._floor)
        self.setValue(min(max(value, self.minimum()), self.maximum()))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
