"""Where runs go when nobody says: one answer for `studio train` and the window.

    resolve_runs_folder(explicit)    the first of:
      explicit                       MainWindow(runs_dir=...), or the folder chosen in the window's Runs tab
      $STUDIO_RUNS_DIR               a shell's or a script's choice
      the saved choice               the Runs tab's Change… button writes it to the user's settings file
      the user's data folder         ~/.local/share/studio/runs on Linux (XDG), the platform's elsewhere

The saved choice lives in a small TOML file in the user's configuration folder (`settings_file()`),
not in the window's Qt settings, so the command line (which never imports Qt) reads the same
answer. The file is the user's to edit and is read as untrusted: a value that is not a folder
path is ignored, never an error.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from studio.files import atomic_write_text

ENV_VAR = "STUDIO_RUNS_DIR"
SETTINGS_NAME = "settings.toml"
RUNS_FOLDER_KEY = "runs_folder"

SOURCES = {
    "explicit": "chosen for this window",
    "env": "from $STUDIO_RUNS_DIR",
    "setting": "chosen in the Runs tab",
    "default": "the default",
}


@dataclass(frozen=True)
class RunsFolder:
    """A runs folder and where the answer came from (`explicit`, `env`, `setting` or `default`)."""

    path: Path
    source: str

    @property
    def why(self) -> str:
        return SOURCES[self.source]


def _platform_base(windows_var: str, xdg_var: str, xdg_default: str) -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get(windows_var) or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    return Path(os.environ.get(xdg_var) or Path.home() / xdg_default)


def default_data_runs_dir() -> Path:
    """The user's data folder for runs (XDG on Linux, the platform's elsewhere)."""
    return _platform_base("LOCALAPPDATA", "XDG_DATA_HOME", ".local/share") / "studio" / "runs"


def settings_file() -> Path:
    """The settings the command line and the window share (today: the saved runs folder)."""
    return _platform_base("APPDATA", "XDG_CONFIG_HOME", ".config") / "studio" / SETTINGS_NAME


def saved_runs_folder() -> Path | None:
    """The runs folder chosen in the window and saved, or None (no file, unreadable, or no usable value)."""
    try:
        data = tomllib.loads(settings_file().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    value = data.get(RUNS_FOLDER_KEY)
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        return None
    return Path(value).expanduser()


def save_runs_folder(path: str | Path | None) -> Path:
    """Save `path` as the runs folder for the CLI and the window (None forgets it); returns the file written.

    Raises `WriteError` when the settings folder cannot be written.
    """
    target = settings_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "# Written by the studio (Runs tab › Change…); $STUDIO_RUNS_DIR overrides it.\n"
    if path is not None:
        # A JSON string is a valid TOML basic string: quotes, backslashes and control characters escaped.
        text += f"{RUNS_FOLDER_KEY} = {json.dumps(str(Path(path).expanduser().absolute()), ensure_ascii=False)}\n"
    atomic_write_text(target, text)
    return target


def resolve_runs_folder(explicit: str | Path | None = None) -> RunsFolder:
    """The runs folder to use, and why (see the module doc for the order)."""
    if explicit:
        return RunsFolder(Path(explicit).expanduser(), "explicit")
    env = os.environ.get(ENV_VAR)
    if env:
        return RunsFolder(Path(env).expanduser(), "env")
    saved = saved_runs_folder()
    if saved is not None:
        return RunsFolder(saved, "setting")
    return RunsFolder(default_data_runs_dir(), "default")


def default_runs_dir() -> Path:
    """Where a new run goes when no folder is named: `resolve_runs_folder().path`."""
    return resolve_runs_folder().path
