"""Where the window keeps what persists between sessions (QSettings, INI format, per user).

Tests redirect it with `QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)`.
"""

from __future__ import annotations

import tomllib

from PySide6.QtCore import QByteArray, QSettings, QSize
from PySide6.QtWidgets import QApplication, QMainWindow, QSplitter

from studio.config import Config, config_from_dict, config_to_toml
from studio.errors import StudioError

MAX_RECENT = 10


def app_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "studio", "studio")


def recent_runs(settings: QSettings) -> list[str]:
    value = settings.value("runs/recent", [])
    if isinstance(value, str):  # QSettings gives back a one-item list as the item
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def add_recent_run(settings: QSettings, path: str) -> list[str]:
    runs = [path] + [r for r in recent_runs(settings) if r != path]
    runs = runs[:MAX_RECENT]
    settings.setValue("runs/recent", runs)
    return runs


def last_setup(settings: QSettings) -> Config:
    """The setup the window showed last time, else the default one."""
    text = settings.value("setup/last", "")
    if text:
        try:
            return config_from_dict(tomllib.loads(str(text)))
        except (StudioError, tomllib.TOMLDecodeError):
            pass  # a stale or hand-edited setup falls back to the defaults
    return Config()


def remember_setup(settings: QSettings, cfg: Config) -> None:
    settings.setValue("setup/last", config_to_toml(cfg))


def default_window_size() -> QSize:
    """Most of the screen, up to 1440x900."""
    screen = QApplication.primaryScreen()
    if screen is None:
        return QSize(1440, 900)
    avail = screen.availableGeometry()
    return QSize(min(1440, int(avail.width() * 0.92)), min(900, int(avail.height() * 0.92)))


def restore_window(settings: QSettings, window: QMainWindow, splitter: QSplitter) -> str:
    """Put the window, its docks and its splitter back as they were; returns the theme's name."""
    for key, restore in (
        ("window/geometry", window.restoreGeometry),
        ("window/state", window.restoreState),
        ("window/splitter", splitter.restoreState),
    ):
        value = settings.value(key)
        if isinstance(value, QByteArray):
            restore(value)
    return str(settings.value("view/theme", "system"))


def save_window(settings: QSettings, window: QMainWindow, splitter: QSplitter, cfg: Config | None) -> None:
    """Keep the window's geometry, docks and splitter, and `cfg` (None: an unfinished setup, not kept)."""
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState())
    settings.setValue("window/splitter", splitter.saveState())
    if cfg is not None:
        remember_setup(settings, cfg)
    settings.sync()
