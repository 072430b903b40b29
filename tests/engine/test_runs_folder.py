"""One runs folder for the command line and the window: argument, $STUDIO_RUNS_DIR, the saved choice, the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.cli import main
from studio.engine.run_dir import default_runs_dir
from studio.engine.runs_folder import resolve_runs_folder, save_runs_folder, saved_runs_folder, settings_file
from studio.engine.runs_index import list_runs


def test_order_is_argument_then_env_then_saved_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _user_folders: Path
) -> None:
    monkeypatch.delenv("STUDIO_RUNS_DIR")
    default = resolve_runs_folder()
    assert default.source == "default" and default.path == _user_folders / "data" / "studio" / "runs"

    chosen = tmp_path / 'my runs "quoted" \\ é'
    save_runs_folder(chosen)
    assert settings_file().is_file() and settings_file().is_relative_to(_user_folders / "config")
    assert resolve_runs_folder() == type(default)(chosen, "setting")
    assert default_runs_dir() == chosen

    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "env"))
    assert resolve_runs_folder().source == "env" and default_runs_dir() == tmp_path / "env"
    assert resolve_runs_folder(tmp_path / "arg").source == "explicit"

    save_runs_folder(None)  # forgotten
    assert saved_runs_folder() is None


@pytest.mark.parametrize("text", [b"runs_folder = 3\n", b"runs_folder = ''\n", b"not toml [", b"\xff\xfe", b"x = 1\n"])
def test_a_bad_settings_file_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch, text: bytes) -> None:
    monkeypatch.delenv("STUDIO_RUNS_DIR")
    settings_file().parent.mkdir(parents=True)
    settings_file().write_bytes(text)
    assert resolve_runs_folder().source == "default"


def test_cli_runs_go_to_the_folder_chosen_in_the_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDIO_RUNS_DIR")
    save_runs_folder(tmp_path / "shared")
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('[data]\nsource = "linear"\n[model]\narch = "linear"\n[train]\nepochs = 1\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not ./runs any more
    assert main(["train", str(cfg), "--quiet"]) == 0
    runs = list_runs(tmp_path / "shared")
    assert len(runs) == 1 and runs[0].status == "completed"
    assert not (tmp_path / "runs").exists()
