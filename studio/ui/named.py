"""`named(QLabel(), "evalStatus")`: a widget with its object name, typed as the widget it was given.

PySide6 takes Qt properties as constructor keywords (`QLabel(objectName="evalStatus")`), but its
type stubs list only each class's own properties, so a type checker rejects `objectName=`.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QObject

W = TypeVar("W", bound=QObject)


def named(widget: W, name: str) -> W:
    """Set the object name the tests, the style sheet and the contract find the widget by."""
    widget.setObjectName(name)
    return widget
