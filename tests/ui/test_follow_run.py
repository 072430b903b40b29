"""File › Follow Run and runs of several processes: the window shows a run another process writes, live,
and stays alive and clear whatever happens to that process or its folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from studio.config import Config, save_config
from studio.engine.run_dir import RunDir
from studio.ui import child_processes, run_follower
from studio.ui.run_controller import RunState

REPO = Path(__file__).resolve().parents[2]
TWO_EPOCHS = Config().replace_value("train.epochs", 2)


def step_line(n: int, epoch: int = 1) -> str:
    return json.dumps(
        {
            "kind": "step",
            "split": "train",
            "epoch": epoch,
            "step": n,
            "loss": 2.0 / n,
            "accuracy": 0.5,
            "lr": 0.001,
            "batch_size": 64,
            "time": n * 0.1,
            "epoch_progress": min(n / 10, 1.0),
        }
    )


def run_folder(tmp_path: Path, cfg: Config = TWO_EPOCHS) -> Path:
    run = tmp_path / "runs" / "followed"
    run.mkdir(parents=True)
    save_config(cfg, RunDir(run).config)
    return run


def studio_train(run: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "studio", "train", str(RunDir(run).config), "--run-dir", str(run), "--quiet"]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_follow_run_shows_a_cli_run_while_it_trains(make_window: Any, tmp_path: Path, qtbot: Any) -> None:
    w = make_window()
    run = run_folder(tmp_path)
    assert w.opener.follow_run(run)  # before the CLI has written a record
    assert w.controller.state == RunState.FOLLOWING and w.history.is_empty()
    assert w.state_label.text() == "Following"
    assert w.status.device.text() == "Device: the followed run's"  # not this machine's
    assert w.window_actions["stop"].isEnabled()  # through the run folder's control.json
    assert w.window_actions["open_run"].isEnabled() and w.window_actions["follow_run"].isEnabled()
    assert not w.window_actions["train"].isEnabled()  # the setup shown is the followed run's, locked
    reads: list[tuple[int, RunState]] = []
    w.history.changed.connect(lambda: reads.append((len(w.history.step_x), w.controller.state)))
    proc = studio_train(run)
    try:
        qtbot.waitUntil(lambda: len(w.history.step_x) > 0, timeout=120000)
        assert w.controller.state == RunState.FOLLOWING  # live: points while the CLI trains
        qtbot.waitUntil(lambda: w.controller.state == RunState.COMPLETED, timeout=120000)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert reads[0][0] == 0 and reads[-1][0] > 0
    assert any(n > 0 and state == RunState.FOLLOWING for n, state in reads)  # drawn before the run's end
    assert len(w.history.epoch_x["val"]) == 2
    assert "Completed: 2 epoch(s)" in w.status.currentMessage()
    assert w.metric_cards.val_acc.value.text().endswith("%")
    assert any("epoch 2/2" in line for line in w.log.lines())


def test_garbage_and_a_torn_last_line_wait_then_the_summary_ends_it(
    make_window: Any, tmp_path: Path, qtbot: Any
) -> None:
    w = make_window()
    run = run_folder(tmp_path)
    torn = step_line(3)
    RunDir(run).metrics.write_text(
        step_line(1) + "\n{not json\n\x00\xff garbage\n" + step_line(2) + "\n" + torn[:25], encoding="utf-8"
    )
    assert w.opener.follow_run(run)
    qtbot.waitUntil(lambda: len(w.history.step_x) == 2, timeout=10000)
    with open(RunDir(run).metrics, "a", encoding="utf-8") as fh:
        fh.write(torn[25:] + "\n")
    qtbot.waitUntil(lambda: len(w.history.step_x) == 3, timeout=10000)
    assert w.controller.state == RunState.FOLLOWING
    summary = {"status": "stopped", "epochs_completed": 0, "metrics": {}, "best": None, "error": None}
    RunDir(run).summary.write_text(json.dumps(summary), encoding="utf-8")
    qtbot.waitUntil(lambda: w.controller.state == RunState.STOPPED, timeout=10000)


def test_a_run_whose_data_lives_elsewhere_is_followed_all_the_same(
    make_window: Any, tmp_path: Path, qtbot: Any
) -> None:
    w = make_window()
    run = tmp_path / "cluster-run"
    run.mkdir()
    cluster = 'seed = 0\n[data]\nsource = "csv"\npath = "/scratch/on/the/cluster.csv"\n[train]\nepochs = 7\n'
    RunDir(run).config.write_text(cluster, encoding="utf-8")
    RunDir(run).metrics.write_text(step_line(1) + "\n", encoding="utf-8")
    assert w.opener.follow_run(run)
    assert "without showing its setup" in w.status.currentMessage() and "cluster.csv" in w.status.currentMessage()
    assert w.controller.state == RunState.FOLLOWING and w.controller.epochs_total == 7
    qtbot.waitUntil(lambda: len(w.history.step_x) == 1, timeout=10000)


def test_a_deleted_folder_leaves_the_window_alive_and_saying_so(make_window: Any, tmp_path: Path, qtbot: Any) -> None:
    w = make_window()
    run = run_folder(tmp_path)
    RunDir(run).metrics.write_text(step_line(1) + "\n", encoding="utf-8")
    assert w.opener.follow_run(run)
    qtbot.waitUntil(lambda: len(w.history.step_x) == 1, timeout=10000)
    shutil.rmtree(run)
    qtbot.waitUntil(lambda: "is gone" in w.status.currentMessage(), timeout=10000)
    assert w.controller.state == RunState.FOLLOWING and w.isVisible()
    w.new_setup()  # lets the followed run go
    assert w.controller.state == RunState.READY and w.controller.worker_thread is None
    qtbot.waitUntil(lambda: not w.controller._following(), timeout=10000)


def test_a_followed_run_is_steered_through_control_json(
    make_window: Any, tmp_path: Path, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        run_follower, "control_writer", lambda run_dir: lambda path, **v: written.append((Path(path).name, v))
    )
    w = make_window()
    assert w.opener.follow_run(run_folder(tmp_path))
    assert w.window_actions["stop"].isEnabled() and w.window_actions["pause"].isEnabled()
    assert w.training_panel.lr_spin.isEnabled()
    w.controller.set_lr(0.01)
    w.toggle_pause()
    qtbot.waitUntil(lambda: {"lr": 0.01, "pause": True}.items() <= _merged(written).items(), timeout=10000)
    w.stop_training()
    qtbot.waitUntil(lambda: _merged(written).get("stop") is True, timeout=10000)
    assert {name for name, _ in written} == {"control.json"}
    assert w.controller.state == RunState.FOLLOWING  # the run's own summary.json will say how it ended


def test_stop_and_a_new_rate_reach_a_followed_cli_run(make_window: Any, tmp_path: Path, qtbot: Any) -> None:
    w = make_window()
    run = run_folder(tmp_path, Config().replace_value("train.epochs", 50))
    assert w.opener.follow_run(run)
    proc = studio_train(run)
    try:
        qtbot.waitUntil(lambda: len(w.history.step_x) > 0, timeout=120000)
        w.controller.set_lr(0.01)  # written to control.json; the run's rank 0 applies and records it
        qtbot.waitUntil(lambda: any(m.label == "lr → 0.01" for m in w.history.markers), timeout=60000)
        w.stop_training()
        qtbot.waitUntil(lambda: w.controller.state == RunState.STOPPED, timeout=60000)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert RunDir(run).read_summary()["status"] == "stopped"


def test_a_run_on_read_only_storage_is_shown_read_only(
    make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_follower, "control_writer", lambda run_dir: None)  # as for a folder not writable here
    w = make_window()
    assert w.opener.follow_run(run_folder(tmp_path))
    assert not w.window_actions["stop"].isEnabled() and not w.window_actions["pause"].isEnabled()
    assert not w.training_panel.lr_spin.isEnabled()
    assert "read-only" in w.log.lines()[-1]


def _merged(written: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _, values in written:
        out.update(values)
    return out


def test_the_processes_field_maps_to_the_run(make_window: Any) -> None:
    w = make_window()
    spin = w.findChild(type(w.training_panel.processes_spin), "processesSpinBox")
    assert spin is w.training_panel.processes_spin and spin.value() == 1 and spin.toolTip()
    spin.setValue(2)
    cfg = w.config()
    assert cfg.train.nproc == 2  # [train] nproc, the key `studio train --nproc` sets
    request = w.controller.plan(w.config, False, w.runs_folder().path, w.sidebar.processes())
    assert request.nproc == 2 and request.config == cfg
    run = Path("R")
    assert child_processes.Launch(cfg, 2).command(run)[3:] == [
        "train",
        str(RunDir(run).config),
        "--run-dir",
        "R",
        "--nproc",
        "2",
    ]
    resume = child_processes.Launch(cfg, 2, resume=True).command(run)[3:]
    assert resume == ["resume", "R", "--epochs", str(cfg.train.epochs), "--nproc", "2"]  # Continue Run


@pytest.mark.slow
def test_a_window_launched_run_of_two_processes_completes(make_window: Any, qtbot: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 1))
    w.training_panel.processes_spin.setValue(2)
    assert w.start_training()
    assert w.controller.state == RunState.TRAINING and w.isVisible()
    qtbot.waitUntil(lambda: w.controller.state != RunState.TRAINING, timeout=600000)
    assert w.controller.state == RunState.COMPLETED, w.log.lines()[-5:]
    summary = RunDir(w.current_run_dir).read_summary()
    assert summary is not None and summary["world_size"] == 2
    assert len(w.history.step_x) > 0 and len(w.history.epoch_x["val"]) == 1
    assert any("starting 2 process(es)" in line for line in w.log.lines())


def _rank_pid(root: int, rank: int) -> int | None:
    for pid in child_processes.descendants(root):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks through /proc (Linux)")
def test_a_killed_rank_fails_the_run_and_leaves_the_window_alive(make_window: Any, qtbot: Any, dialogs: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    w.training_panel.processes_spin.setValue(2)
    assert w.start_training()
    qtbot.waitUntil(lambda: len(w.history.step_x) > 0, timeout=600000)
    rank1 = _rank_pid(w.controller.worker.child_processes.process.pid, 1)
    assert rank1 is not None
    os.kill(rank1, signal.SIGKILL)
    qtbot.waitUntil(lambda: w.controller.state == RunState.FAILED, timeout=120000)
    assert w.isVisible() and not w.is_training
    assert dialogs.shown and "another process of the run ended first" in dialogs.shown[-1][2], dialogs.shown
    summary = RunDir(w.current_run_dir).read_summary()
    assert summary is not None and summary["status"] == "failed"


@pytest.fixture
def one_process_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervised path with a single `studio train` child (`--nproc 1` overrides the config's 2):
    the supervision, not DDP, is under test here (and takes seconds, not a torchrun start)."""
    command = child_processes.Launch.command
    monkeypatch.setattr(child_processes.Launch, "command", lambda self, run_dir: [*command(self, run_dir)[:-1], "1"])


@pytest.mark.usefixtures("one_process_launch")
def test_a_killed_child_process_fails_the_run_clearly(make_window: Any, qtbot: Any, dialogs: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    w.training_panel.processes_spin.setValue(2)
    assert w.start_training()
    assert w.controller.state == RunState.TRAINING
    qtbot.waitUntil(lambda: len(w.history.step_x) > 0, timeout=120000)
    os.killpg(w.controller.worker.child_processes.process.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: w.controller.state == RunState.FAILED, timeout=30000)
    assert w.isVisible() and not w.is_training
    assert any("killed (SIGKILL)" in text for _, _, text in dialogs.shown)
    summary = RunDir(w.current_run_dir).read_summary()
    assert summary is not None and summary["status"] == "failed" and "killed" in summary["error"], "\n".join(
        w.log.lines()
    )


@pytest.mark.usefixtures("one_process_launch")
def test_stop_ends_the_child_processes_with_a_saved_run(make_window: Any, qtbot: Any) -> None:
    w = make_window(Config().replace_value("train.epochs", 50))
    w.training_panel.processes_spin.setValue(2)
    assert w.start_training()
    qtbot.waitUntil(lambda: len(w.history.step_x) > 0, timeout=120000)
    w.stop_training()
    assert w.controller.state == RunState.STOPPING
    qtbot.waitUntil(lambda: w.controller.state == RunState.STOPPED, timeout=60000)
    assert RunDir(w.current_run_dir).has_checkpoint("last")


def test_a_bad_exit_says_what_the_processes_said(
    make_window: Any, qtbot: Any, dialogs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        child_processes.Launch,
        "command",
        lambda self, run_dir: [sys.executable, "-m", "studio", "train", "missing.toml"],
    )
    w = make_window()
    w.training_panel.processes_spin.setValue(2)
    assert w.start_training()
    qtbot.waitUntil(lambda: w.controller.state == RunState.FAILED, timeout=60000)
    assert dialogs.shown and "missing.toml" in dialogs.shown[-1][2]
