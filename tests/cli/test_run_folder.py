"""One run per folder, and a refused resume that touches nothing.

Two real processes show the lock: the first holds the folder (frozen with SIGSTOP so the check
does not depend on timing), the second train and a resume are refused with the first one's
process id, and once the first is killed -9 its stale lock blocks nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.cli import main
from studio.engine.locking import RUN_LOCK_NAME, run_dir_lock
from studio.engine.run_dir import read_metrics

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--set", "data.val_split=0.8", "--set", "data.test_split=0.1", "--set", "train.batch_size=32"]


def studio(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def hashes(run: Path) -> dict[str, str]:
    """Every file of a run (the lock file aside) with the hash of its bytes."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert (
        main(["train", "examples/digits.toml", "--run-dir", str(run), "--quiet", *SMALL, "--set", "train.epochs=1"])
        == 0
    )
    return run


@pytest.fixture
def run(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def edit_config(run: Path, old: str, new: str) -> None:
    path = run / "config.toml"
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new, 1))


def test_a_second_train_or_resume_on_a_busy_folder_is_refused_and_a_killed_ones_lock_blocks_nothing(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "train",
            "examples/digits.toml",
            "--run-dir",
            str(run),
            "--quiet",
            *SMALL,
            "--set",
            "train.epochs=200",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        # Once epoch 1's checkpoint is there, freeze the trainer: lock held, mid-run.
        assert wait_for(lambda: (run / "checkpoints" / "last.pt").exists(), 240), "no epoch ended"
        first.send_signal(signal.SIGSTOP)
        before = hashes(run)

        second = studio("train", "examples/digits.toml", "--run-dir", str(run), "--quiet", *SMALL)
        assert second.returncode == 2
        assert f"is in use by process {first.pid}" in one_error_line(second.stderr)

        resumed = studio("resume", str(run), "--epochs", "300", "--quiet")
        assert resumed.returncode == 2
        assert f"is in use by process {first.pid}" in one_error_line(resumed.stderr)
        assert hashes(run) == before  # the refused ones wrote nothing

        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        first.kill()
        first.wait(30)
    # The killed trainer's lock file is still there; the OS released its lock with the process.
    assert (run / RUN_LOCK_NAME).exists()
    done = studio("resume", str(run), "--epochs", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert not (run / RUN_LOCK_NAME).exists()  # a run that ends cleanly takes its lock file away


def test_a_lock_held_in_this_process_refuses_train_and_resume(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = hashes(run)
    with run_dir_lock(run):
        assert main(["resume", str(run), "--epochs", "2", "--quiet"]) == 2
        assert f"is in use by process {os.getpid()}" in one_error_line(capsys.readouterr().err)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with run_dir_lock(fresh):
        assert main(["train", "examples/digits.toml", "--run-dir", str(fresh), "--quiet", *SMALL]) == 2
        assert f"is in use by process {os.getpid()}" in one_error_line(capsys.readouterr().err)
    assert list(fresh.iterdir()) == []
    assert hashes(run) == before


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        ('optimizer = "adam"', 'optimizer = "sgd"', ('[train] optimizer is "sgd"', '"adam"')),
        ("weight_decay = 0.0", "weight_decay = 0.01", ("[train] weight_decay",)),
        ("seed = 0", "seed = 7", ("seed is 7", "trained with 0")),
        ("hidden = [\n    128,\n]", "hidden = [\n    64,\n]", ("[model] hidden is [64]", "[128]")),
        ("val_split = 0.8", "val_split = 0.7", ("[data] val_split is 0.7",)),
        ("flip = false", "flip = true", ("[augment] flip is true",)),
    ],
)
def test_a_refused_resume_leaves_the_run_byte_identical(
    run: Path, old: str, new: str, fragments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    edit_config(run, old, new)
    before = hashes(run)
    assert main(["resume", str(run), "--epochs", "4", "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    for fragment in fragments:
        assert fragment in line
    assert hashes(run) == before
    assert any(r.get("split") == "test" for r in read_metrics(run))  # the finished run's test record stays
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_an_optimizer_change_is_refused_from_the_command_line_too(run: Path) -> None:
    edit_config(run, 'optimizer = "adam"', 'optimizer = "sgd"')
    before = hashes(run)
    proc = studio("resume", str(run), "--epochs", "4")
    assert proc.returncode == 2
    assert "optimizer" in one_error_line(proc.stderr)
    assert hashes(run) == before


@pytest.mark.parametrize(
    ("key", "old", "new", "recorded"),
    [
        ("lr", "lr = 0.001", "lr = 0.004", [0.001, 0.004]),
        ("batch_size", "batch_size = 32", "batch_size = 16", [32, 16]),
    ],
)
def test_an_edited_lr_or_batch_size_applies_from_the_resume_as_a_recorded_change(
    run: Path, key: str, old: str, new: str, recorded: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    edit_config(run, old, new)
    assert main(["resume", str(run), "--epochs", "2"]) == 0
    assert f"config.toml sets [train] {key}" in capsys.readouterr().err
    steps = [r for r in read_metrics(run) if r["kind"] == "step" and r["epoch"] == 2]
    assert steps[0]["changed"] == {key: recorded}
    assert all(r[key] == recorded[1] for r in steps)
    assert new in (run / "config.toml").read_text()  # the file says what ran
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["train"][key] == recorded[1]
    # Resumed again with the file unchanged, nothing is recorded as changed a second time.
    assert main(["resume", str(run), "--epochs", "3", "--quiet"]) == 0
    assert not any("changed" in r for r in read_metrics(run) if r["kind"] == "step" and r["epoch"] == 3)
