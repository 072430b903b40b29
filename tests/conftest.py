"""Shared fixtures: offscreen Qt, a temporary runs folder, and small configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(runs))
    return runs


@pytest.fixture(autouse=True)
def _user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's config and data folders (the saved runs folder, the default runs) live in tmp_path."""
    home = tmp_path / "user"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    return home


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
