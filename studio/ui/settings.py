"""Where the window keeps what persists between sessions (QSettings, INI format, per user).

Tests redirect it with `QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)`.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings

MAX_RECENT = 10


def app_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "studio", "studio")


def recent_runs(settings: QSettings) -> list[str]:
    value = settings.value("runs/recent", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent_run(settings: QSettings, path: str) -> list[str]:
    runs = [path] + [r for r in recent_runs(settings) if r != path]
    runs = runs[:MAX_RECENT]
    settings.setValue("runs/recent", runs)
    return runs
