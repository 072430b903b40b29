"""Spin boxes for values that span decades: the learning rate (1e-5 .. 10) and weight decay."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QSpinBox, QWidget

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


class WholeNumberSpinBox(QSpinBox):
    """A QSpinBox that lets a number beyond its range be typed in full, so that Enter can say why it
    is not taken (Qt's own box drops the keystroke: 1000000 silently became 10000)."""

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        result = super().validate(text, pos)
        state = result[0] if isinstance(result, tuple) else result
        if state == QValidator.State.Invalid:
            digits = text.strip().removeprefix(self.prefix()).removesuffix(self.suffix()).strip().replace(",", "")
            if digits.lstrip("+-").isdigit():
                return QValidator.State.Intermediate, text, pos
        return result


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class CorrectionWatch(QObject):
    """Says why a spin box did not take what was typed (out of range, not a number).

    A spin box quietly puts back its previous value, or clamps to its range, when the text typed
    is not acceptable. This reads the text as Enter or leaving the field commits it, and once the
    box has settled compares it with the value kept: `corrected(message)` says what happened.
    """

    corrected = Signal(str)

    def __init__(self, spin: QAbstractSpinBox, name: str, exclusive_min: float | None = None) -> None:
        super().__init__(spin)
        self.spin, self.name, self.exclusive_min = spin, name, exclusive_min
        self._typed: str | None = None
        spin.installEventFilter(self)
        spin.lineEdit().installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        commits = kind == QEvent.Type.FocusOut or (
            kind == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)  # type: ignore[attr-defined]
        )
        if commits and self._typed is None:
            self._typed = self.spin.lineEdit().text()
            QTimer.singleShot(0, self._check)
        return False

    def _check(self) -> None:
        typed, self._typed = self._typed, None
        if typed is None:
            return
        message = correction_message(self.spin, self.name, typed, self.exclusive_min)
        if message:
            self.corrected.emit(message)


def correction_message(spin: QAbstractSpinBox, name: str, typed: str, exclusive_min: float | None = None) -> str:
    """Why `spin` holds another value than `typed` ("" when it took it)."""
    text = typed.strip()
    for affix in (spin.prefix(), spin.suffix()) if isinstance(spin, (QSpinBox, QDoubleSpinBox)) else ():
        if affix:
            text = text.replace(affix.strip(), "")
    text = text.replace(",", "").replace("_", "").strip()
    if not text:
        return ""
    value = spin.value()  # type: ignore[attr-defined]
    kept = f"{value:g}" if isinstance(value, float) else f"{value:,}"
    try:
        wanted = float(text)
    except ValueError:
        return f"{name}: '{typed.strip()}' is not a number; kept {kept}"
    if math.isclose(wanted, value, rel_tol=1e-9, abs_tol=1e-12):
        return ""
    lo, hi = spin.minimum(), spin.maximum()  # type: ignore[attr-defined]
    if exclusive_min is not None and wanted <= exclusive_min:
        why = f"it must be more than {exclusive_min:g}"
    elif wanted < lo:
        why = f"the least is {lo:g}"
    elif wanted > hi:
        why = f"the most is {hi:,g}"
    elif isinstance(spin, QSpinBox) and wanted != int(wanted):
        why = "it must be a whole number"
    else:
        return ""
    nearest = spin.correctionMode() == QAbstractSpinBox.CorrectionMode.CorrectToNearestValue
    return f"{name} {text} not taken: {why}; {'set to' if nearest else 'kept'} {kept}"
