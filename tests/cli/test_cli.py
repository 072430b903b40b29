"""The `studio` command line as a user runs it: exit codes, one-line errors, kill -9 and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from studio.cli import main
from studio.engine.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def studio(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=kw.pop("cwd", REPO),
        env=env,
        **kw,
    )


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_train_headless_never_imports_qt(tmp_path: Path) -> None:
    code = (
        "import sys; from studio.cli import main; "
        f"rc = main(['train', 'examples/digits.toml', '--run-dir', {str(tmp_path / 'r')!r}, '--quiet', "
        "'--set', 'train.epochs=1']); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]; "
        "print(rc, bad)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.stdout.strip() == "0 []", proc.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "completed"


def test_train_prints_progress_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "examples/digits.toml", "--run-dir", str(tmp_path / "r"), "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "101,770 parameters" in err and "Flatten→784" in err  # parameter count and shape summary
    assert "epoch 1/1 | train loss" in err and "completed: 1 epoch(s), test accuracy" in err


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ("[train]\nlrr = 0.1\n", ("unknown key 'lrr' in [train]", "did you mean 'lr'?")),
        ('[train]\nbatch_size = "big"\n', ("[train] batch_size must be an integer",)),
        ("[train]\nlr = -1\n", ("[train] lr must be > 0",)),
        ("[train]\nepochs = 0\n", ("[train] epochs must be >= 1",)),
        ("[data]\nval_split = 0.5\ntest_split = 0.5\n", ("below 1",)),
        ("[train\nlr = 1\n", ("malformed TOML", "line 1")),
        ('[data]\nsource = "csv"\npath = "missing.csv"\n', ("missing.csv' does not exist",)),
    ],
)
def test_config_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, fragments: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    assert main(["train", str(path), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert str(path) in err
    for fragment in fragments:
        assert fragment in err
    assert not (tmp_path / "r").exists()  # nothing half-made


def test_missing_config_and_bad_usage(tmp_path: Path) -> None:
    assert_user_error(studio("train", str(tmp_path / "nope.toml")), "nope.toml' not found")
    assert_user_error(studio("train"), "the following arguments are required")
    assert_user_error(studio("train", "examples/digits.toml", "--set", "train.lr"), "expected KEY=VALUE")
    assert_user_error(studio("resume", str(tmp_path)), "not a run directory")
    assert_user_error(studio("eval", str(tmp_path / "absent")), "not found")


def test_bad_data_exits_2(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("", encoding="utf-8")
    assert_user_error(
        studio("train", "examples/digits.toml", "--set", 'data.source="csv"', "--set", f'data.path="{csv}"'),
        "the CSV file is empty",
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "examples/digits.toml", "--run-dir", str(run), "--quiet", "--set", "train.epochs=2"]) == 0
    return run


def test_eval_prints_one_json_object(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(trained_run), "--split", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    cm = torch.tensor(report["confusion_matrix"])
    assert cm.shape == (10, 10) and int(cm.sum()) == 800
    assert report["accuracy"] == pytest.approx(float(cm.diag().sum() / cm.sum()))
    assert report["labels"] == [str(i) for i in range(10)]
    assert set(report["per_class"]["3"]) >= {"precision", "recall", "f1", "support"}
    assert report["accuracy"] > 0.9


def test_truncated_checkpoint_is_a_clear_error(trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(trained_run), str(run)], check=True)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    assert_user_error(studio("resume", str(run), "--epochs", "3"), "truncated or corrupt", "last.pt")
    (run / "checkpoints" / "best.pt").write_bytes(b"")
    assert_user_error(studio("eval", str(run)), "best.pt")


def test_pickle_payload_is_refused_and_never_runs(trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(trained_run), str(run)], check=True)
    marker = tmp_path / "pwned"
    payload = (
        "import os, torch\n"
        "class Evil:\n"
        f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
        f"torch.save({{'model': Evil(), 'format': 1}}, {str(run / 'checkpoints' / 'last.pt')!r})\n"
        f"torch.save({{'model': Evil(), 'format': 1}}, {str(run / 'checkpoints' / 'best.pt')!r})\n"
    )
    subprocess.run([sys.executable, "-c", payload], check=True)
    assert_user_error(studio("resume", str(run), "--epochs", "3"), "refusing to load")
    assert_user_error(studio("eval", str(run)), "refusing to load")
    assert not marker.exists()


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _step_records_in_epoch(run: Path, epoch: int) -> bool:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(f'"kind": "step", "split": "train", "epoch": {epoch},' in line for line in lines)


def _start_training(run: Path, *extra: str) -> subprocess.Popen:
    # Small batches make an epoch last long enough to be interrupted in the middle.
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "train",
            "examples/digits.toml",
            "--run-dir",
            str(run),
            "--quiet",
            "--set",
            "train.batch_size=4",
            "--set",
            "train.epochs=3",
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_kill_9_mid_epoch_then_resume_completes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start_training(run, "--set", "data.val_split=0.5")
    try:
        assert _wait_for(lambda: _step_records_in_epoch(run, 2), 240), "epoch 2 never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["epoch"] == 1
    done = studio("resume", str(run), "--quiet")
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    steps = [
        json.loads(line)["step"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if '"kind": "step"' in line
    ]
    assert steps == sorted(set(steps))  # no step logged twice after the resume


def test_ctrl_c_saves_and_exits_130(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start_training(run)
    try:
        assert _wait_for(lambda: _step_records_in_epoch(run, 1), 240)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"the last checkpoint was saved; continue with: studio resume {run}" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["pos"] > 0


def test_resume_of_a_finished_run_says_so(trained_run: Path) -> None:
    proc = studio("resume", str(trained_run))
    assert proc.returncode == 0 and "use --epochs N" in proc.stderr


def test_train_refuses_to_overwrite_a_run(trained_run: Path) -> None:
    assert_user_error(studio("train", "examples/digits.toml", "--run-dir", str(trained_run)), "studio resume")
