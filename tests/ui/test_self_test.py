"""STUDIO_SELF_TEST=train: the window presses Train itself and quits with the run's outcome.

packaging/test_app.py relies on it to see a packaged app's window train from outside its process;
this checks the same switch from the source tree, so a failure there points at the package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_self_test(config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        STUDIO_SELF_TEST="train",
        QT_QPA_PLATFORM="offscreen",
        STUDIO_RUNS_DIR=str(tmp_path / "runs"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        [sys.executable, "-m", "studio", "gui", str(config)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_self_test_trains_a_run_in_the_window_and_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "one-epoch.toml"
    config.write_text('[data]\nsource = "digits"\n[model]\narch = "mlp"\n[train]\nepochs = 1\n', encoding="utf-8")
    proc = run_self_test(config, tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert f"self-test: run completed in {run_dir}" in proc.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_self_test_exits_1_instead_of_waiting_on_an_error_box(tmp_path: Path) -> None:
    # A folder source whose folder holds no images: the window says so in a message box, which nobody
    # would close; the self-test must end with 1 instead of hanging.
    (tmp_path / "empty").mkdir()
    config = tmp_path / "broken.toml"
    config.write_text(
        f'[data]\nsource = "folder"\npath = "{(tmp_path / "empty").as_posix()}"\n[train]\nepochs = 1\n',
        encoding="utf-8",
    )
    proc = run_self_test(config, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "self-test: " in proc.stderr and "self-test: run completed" not in proc.stderr, proc.stderr
