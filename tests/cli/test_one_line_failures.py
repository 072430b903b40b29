"""Failures that used to print a traceback or get the process killed: each is one `error: ...` line and
exit 2, with the last good checkpoint kept.

The full-disk and read-only cases run twice: once through a simulated OSError (any machine), and
once on a real tmpfs (2 MB, then remounted read-only) where the machine lets root mount one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio import files as files_module
from studio.cli import main
from studio.config import Config, with_overrides
from studio.engine import locking as locking_module
from studio.engine.callbacks import Callback
from studio.engine.checkpoint import load_checkpoint
from studio.engine.trainer import Trainer
from studio.files import WriteError, stale_temp_files
from studio.models import memory

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--set", "data.val_split=0.8", "--set", "data.test_split=0.1", "--set", "train.batch_size=32"]


def studio(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def hashes(run: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert (
        main(["train", "examples/digits.toml", "--run-dir", str(run), "--quiet", *SMALL, "--set", "train.epochs=1"])
        == 0
    )
    return run


# -- seed ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["99999999999999999999", "9223372036854775807", "4294967296", "-1"])
def test_a_seed_out_of_range_is_one_error_line(seed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "examples/digits.toml", "--run-dir", str(tmp_path / "r"), "--set", f"seed={seed}"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "seed must be" in line and seed in line
    assert not (tmp_path / "r").exists()


def test_the_largest_seed_trains(tmp_path: Path) -> None:
    run = tmp_path / "r"
    assert (
        main(
            [
                "train",
                "examples/digits.toml",
                "--run-dir",
                str(run),
                "--quiet",
                *SMALL,
                "--set",
                "train.epochs=1",
                "--set",
                "seed=4294967295",
            ]
        )
        == 0
    )
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


# -- memory ----------------------------------------------------------------------------------------


def test_a_model_too_big_for_any_machine_is_refused_before_it_is_built(tmp_path: Path) -> None:
    proc = studio(
        "train", "examples/digits.toml", "--run-dir", str(tmp_path / "r"), "--set", "model.hidden=[3000000, 3000000]"
    )
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "needs about" in line and "TB" in line and "available on this machine" in line
    assert not (tmp_path / "r").exists()


def test_lr_find_refuses_it_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lr-find", "examples/digits.toml", "--set", "model.hidden=[3000000, 3000000]"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "9.00 trillion parameters" in line and "available on this machine" in line


def test_the_issue_case_is_refused_with_its_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The machine of the report: hidden = [3000000] was killed at 22.8 GB.
    monkeypatch.setattr(memory, "available_memory", lambda device: (22 * 2**30, "available on this machine"))
    assert (
        main(["train", "examples/digits.toml", "--run-dir", str(tmp_path / "r"), "--set", "model.hidden=[3000000]"])
        == 2
    )
    line = one_error_line(capsys.readouterr().err)
    assert "2.39 billion parameters" in line and "needs about 37.7 GB" in line
    assert "17.8 GB of adam state" in line and "only 22.0 GB is available on this machine" in line
    assert "[model] hidden" in line


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model.hidden=[256, 64]", "model.dropout=0.1"],
        ['model.arch="softmax"'],
        ['model.arch="lenet"'],
        ['model.arch="resnet18"'],
        ['train.optimizer="sgd"', "train.momentum=0.0"],
    ],
)
def test_the_estimate_counts_the_parameters_the_model_has(overrides: list[str]) -> None:
    from studio.data import load_data
    from studio.models import build_model, param_count

    cfg = with_overrides(Config(), overrides)
    spec = load_data(cfg).spec
    estimate = memory.estimate_training_memory(cfg, spec)
    assert estimate.params == param_count(build_model(cfg.model, spec))
    assert estimate.weights == estimate.gradients == 4 * estimate.params
    slots = (
        0 if cfg.train.optimizer == "sgd" and cfg.train.momentum == 0 else (1 if cfg.train.optimizer == "sgd" else 2)
    )
    assert estimate.optimizer == slots * estimate.weights
    # At least the input batch and the logits are kept for backward.
    assert estimate.activations >= cfg.train.batch_size * (784 + 10) * 4


def test_a_model_that_fits_trains_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda device: (64 * 2**20, "available on this machine"))
    cfg = with_overrides(Config(), ['train.device="cpu"', "train.epochs=1", "data.val_split=0.8"])
    assert Trainer(cfg, tmp_path / "r").fit()["status"] == "completed"


# -- full disk -------------------------------------------------------------------------------------


class FullDiskAfter(Callback):
    """From the end of epoch `epoch` on, every write of our files fails as on a full disk."""

    def __init__(self, epoch: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.epoch, self.monkeypatch = epoch, monkeypatch

    def on_validation_end(self, trainer: Trainer, event: Any) -> None:
        if event.epoch == self.epoch:

            def no_space(*args: Any, **kwargs: Any) -> None:
                raise OSError(errno.ENOSPC, "No space left on device")

            self.monkeypatch.setattr(files_module._WatchedFile, "write", no_space)


def test_a_full_disk_says_so_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "r"
    cfg = with_overrides(
        Config(), ['train.device="cpu"', "train.epochs=3", "data.val_split=0.8", "train.batch_size=32"]
    )
    with pytest.raises(WriteError) as info:
        Trainer(cfg, run, callbacks=[FullDiskAfter(1, monkeypatch)]).fit()
    message = str(info.value)
    assert message.startswith("the disk is full") and "last.pt" in message
    assert "the last good checkpoint (epoch 1, step 25) is kept" in message
    monkeypatch.undo()
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 25)
    assert list(stale_temp_files(run / "checkpoints", ["last.pt", "best.pt"])) == []
    # The failure is recorded where the disk allowed it, and the run resumes once there is space.
    assert main(["resume", str(run), "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs_completed"] == 3


def test_a_full_disk_on_the_command_line_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class FullFile:
        """metrics.jsonl on a full disk: opening works, every write fails."""

        def __init__(self, path: Any, mode: str, **kwargs: Any) -> None:
            self.name = str(path)

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr("studio.engine.run_dir.open", FullFile, raising=False)
    run = tmp_path / "r"
    assert main(["train", "examples/digits.toml", "--run-dir", str(run), "--quiet", *SMALL]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: the disk is full: cannot write") and "metrics.jsonl" in line
    assert "no checkpoint had been saved yet" in line
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` at `path` (root only); skipped where the machine cannot mount one."""
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_real_full_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        run = disk / "run"
        # Each checkpoint is about 1.2 MB: the first fits in 2 MB, the second's temp file does not.
        proc = studio(
            "train", "examples/digits.toml", "--run-dir", str(run), "--quiet", *SMALL, "--set", "train.epochs=3"
        )
        assert proc.returncode == 2
        line = one_error_line(proc.stderr)
        assert "the disk is full" in line and "the last good checkpoint (epoch 1" in line
        assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
        assert list(stale_temp_files(run / "checkpoints", ["last.pt", "best.pt"])) == []


# -- read-only run directory -----------------------------------------------------------------------


def test_a_read_only_run_directory_for_train_resume_and_export(finished_run: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64m") as disk:
        run = disk / "run"
        shutil.copytree(finished_run, run)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        before = hashes(run)

        proc = studio("resume", str(run), "--epochs", "2")
        assert proc.returncode == 2
        assert "is on a read-only file system" in one_error_line(proc.stderr)

        proc = studio("export", str(run))
        assert proc.returncode == 2
        line = one_error_line(proc.stderr)
        assert "is on a read-only file system" in line and "model.onnx" in line and "-o FILE.onnx" in line

        proc = studio("train", "examples/digits.toml", "--run-dir", str(disk / "new"), *SMALL)
        assert proc.returncode == 2
        assert "is on a read-only file system" in one_error_line(proc.stderr)

        assert hashes(run) == before
        # Reading is fine: eval works, and export writes elsewhere with -o.
        assert studio("eval", str(run)).returncode == 0
        out = tmp_path / "elsewhere.onnx"
        assert studio("export", str(run), "-o", str(out)).returncode == 0 and out.is_file()


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_an_unwritable_run_directory_is_one_error_line(
    code: int, finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Root ignores permissions, so the folder's answer is simulated where the lock file is created.
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any) -> int:
        if str(path).startswith(str(run)) and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(locking_module.os, "open", refusing_open)
    before = hashes(run)
    expected = "read-only file system" if code == errno.EROFS else "no permission to write"
    assert main(["resume", str(run), "--epochs", "2", "--quiet"]) == 2
    assert expected in one_error_line(capsys.readouterr().err)
    assert main(["export", str(run)]) == 2
    assert expected in one_error_line(capsys.readouterr().err)
    assert hashes(run) == before


# -- last.pt of random bytes -----------------------------------------------------------------------


def test_a_last_pt_of_random_bytes_is_not_a_checkpoint(finished_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoints" / "last.pt").write_bytes(os.urandom(4096))
    (run / "checkpoints" / "best.pt").write_bytes(b"just some text, not a model\n")
    for args in (
        ["resume", str(run), "--epochs", "2"],
        ["eval", str(run), "--checkpoint", "last"],
        ["eval", str(run)],
        ["export", str(run), "--checkpoint", "last"],
    ):
        proc = studio(*args)
        assert proc.returncode == 2, proc.stderr
        line = one_error_line(proc.stderr)
        assert "is not a checkpoint" in line and "could run code" not in line, line


def test_a_legacy_pickle_with_foreign_objects_is_still_refused_as_unsafe(finished_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "pwned"
    payload = (
        "import os, torch\n"
        "class Evil:\n"
        f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
        f"torch.save({{'model': Evil(), 'format': 1}}, {str(run / 'checkpoints' / 'last.pt')!r}, "
        "_use_new_zipfile_serialization=False)\n"
    )
    subprocess.run([sys.executable, "-c", payload], check=True)
    proc = studio("resume", str(run), "--epochs", "2")
    assert proc.returncode == 2
    assert "refusing to load it (it could run code)" in one_error_line(proc.stderr)
    assert not marker.exists()
