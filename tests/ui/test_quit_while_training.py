"""Leaving the program while a run trains, by every way out: the run stops at a step, saves
`last.pt` and `summary.json` ("stopped"), the process exits 0 soon after, and `studio resume`
finishes the run.

Each case runs `tests/ui/quit_while_training.py` in its own process, offscreen.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("quit_while_training.py")
# Two short epochs: the quit lands in the first (the script holds the run there until it does),
# and the resume that finishes the run takes seconds.
CONFIG = (
    'seed = 0\n[data]\nsource = "digits"\n[model]\narch = "mlp"\nhidden = [32]\n'
    '[train]\nepochs = 2\nbatch_size = 64\nlr = 0.003\ndevice = "cpu"\nlog_every = 5\n'
)
EXIT_S = 60  # a hang guard: the process ends in about a second after the quit

pytestmark = pytest.mark.slow


def start(how: str, tmp_path: Path) -> subprocess.Popen[str]:
    config = tmp_path / "short.toml"
    config.write_text(CONFIG, encoding="utf-8")
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        STUDIO_RUNS_DIR=str(tmp_path / "runs"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
        PYTHONFAULTHANDLER="1",
    )
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), how, str(config)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=EXIT_S + 120)  # the window and torch load first
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process did not exit: {err[-3000:]}")
    return proc.returncode, out, err


def check_stopped_then_resume(tmp_path: Path, returncode: int, out: str, err: str) -> None:
    assert returncode == 0, err[-3000:]
    assert "first step" in out
    for bad in ("Traceback", "QThread: Destroyed", "Fatal Python error", "Signal source has been deleted"):
        assert bad not in err, err[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "stopped" and summary["epochs_completed"] == 0, summary
    assert (run / "checkpoints" / "last.pt").is_file()
    assert main(["resume", str(run), "--quiet"]) == 0
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2


@pytest.mark.parametrize("how", ["quit", "exit", "close", "end"])
def test_leaving_while_training_stops_saves_and_exits_0(how: str, tmp_path: Path) -> None:
    check_stopped_then_resume(tmp_path, *finish(start(how, tmp_path)))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_studio_process_stops_the_run_and_exits_0(signum: int, tmp_path: Path) -> None:
    proc = start("signal", tmp_path)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the run has reached its first logged step
    assert line.strip() == "first step", proc.communicate()[1][-3000:]
    proc.send_signal(signum)
    returncode, out, err = finish(proc)
    check_stopped_then_resume(tmp_path, returncode, line + out, err)
    assert signal.Signals(signum).name in err  # it said why it quit
