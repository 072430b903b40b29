"""Two typed spellings of what PySide6's type stubs cannot say.

- `named(QLabel(), "evalStatus")`: a widget with its object name, typed as the widget it was
  given. PySide6 takes Qt properties as constructor keywords (`QLabel(objectName="evalStatus")`),
  but its stubs list only each class's own properties, so a type checker rejects `objectName=`.
- `application()`: the running application, never None (`QCoreApplication.instance()` is typed
  as possibly None).
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QCoreApplication, QObject

W = TypeVar("W", bound=QObject)


def named(widget: W, name: str) -> W:
    """Set the object name the tests, the style sheet and the contract find the widget by."""
    widget.setObjectName(name)
    return widget


def application() -> QCoreApplication:
    """The running application; the studio makes one before any window."""
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("no QApplication is running")
    return app
