"""`studio gui` in a fresh process: the window paints before torch loads, then loads it on the GUI thread."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_gui(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        STUDIO_STARTUP_TIMING="exit",
        QT_QPA_PLATFORM="offscreen",
        STUDIO_RUNS_DIR=str(tmp_path / "runs"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_first_paint_comes_before_torch_which_loads_on_the_gui_thread(tmp_path: Path) -> None:
    proc = run_gui([], tmp_path)  # bare `studio` opens the window
    assert proc.returncode == 0, proc.stderr
    paint = re.search(
        r"first paint: .*?([\d.]+)s after studio.ui.app was imported.*torch not yet imported: (\w+)", proc.stderr
    )
    engine = re.search(r"engine ready \(torch imported on the GUI thread: (\w+)", proc.stderr)
    assert paint and engine, proc.stderr
    assert paint.group(2) == "True" and engine.group(1) == "True"
    assert proc.stderr.index("first paint") < proc.stderr.index("engine ready")
    assert float(paint.group(1)) < 10
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_gui_opens_a_run_folder_and_rejects_a_bad_config(tmp_path: Path) -> None:
    from studio.config import Config
    from studio.engine.trainer import Trainer

    run = tmp_path / "run"
    Trainer(Config().replace_value("train.epochs", 1), run).fit()
    proc = run_gui(["gui", str(run)], tmp_path)
    assert proc.returncode == 0 and "engine ready" in proc.stderr, proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = -1\n", encoding="utf-8")
    proc = run_gui(["gui", str(bad)], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "lr" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland displays are a Linux matter")
def test_no_display_is_a_clear_error_not_an_abort(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "gui"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "no display" in proc.stderr and "Traceback" not in proc.stderr
    assert "xvfb-run -a studio" in proc.stderr and "studio train" in proc.stderr
    # A DISPLAY that names no running X server: the same one line, not Qt's abort.
    env["DISPLAY"] = ":4917"
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "gui"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot connect to the X display :4917" in lines[0], proc.stderr
