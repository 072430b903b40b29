"""Temp files a kill leaves behind: the next resume or export of that run removes the stale ones of its
own naming, and never one a live process is writing (the folder's lock tells which)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio.cli import main
from studio.engine.locking import run_dir_lock
from studio.files import stale_temp_files

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--set", "data.val_split=0.8", "--set", "data.test_split=0.1", "--set", "train.batch_size=32"]


def python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


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


def killed_while_writing_a_checkpoint(run: Path) -> Path:
    """A process that dies (SIGKILL) half way through writing last.pt: what `kill -9` mid-save leaves."""
    child = python(f"""
        import os, signal
        from pathlib import Path
        from studio.files import atomic_write

        def write(fh):
            fh.write(b"PK\\x03\\x04 half a checkpoint")
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        atomic_write(Path({str(run / "checkpoints" / "last.pt")!r}), write, binary=True)
    """)
    child.communicate(timeout=120)
    assert child.returncode == -9
    (left,) = stale_temp_files(run / "checkpoints", ["last.pt"])
    assert left.name.startswith(".last.pt.") and left.name.endswith(".tmp")
    return left


def test_resume_removes_the_temp_file_a_killed_checkpoint_write_left(run: Path) -> None:
    left = killed_while_writing_a_checkpoint(run)
    # Files that only look alike are not ours: they stay.
    others = [
        run / "checkpoints" / ".last.pt.notours.tmp",
        run / "checkpoints" / "last.pt.tmp",
        run / ".summary.json.ABCDEFGH.tmp",
        run / "notes.tmp",
    ]
    for path in others:
        path.write_text("keep me")
    assert main(["resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert not left.exists()
    assert all(p.exists() for p in others)


def test_a_refused_resume_of_a_busy_run_leaves_its_temp_file(run: Path) -> None:
    left = killed_while_writing_a_checkpoint(run)
    with run_dir_lock(run):  # a live trainer could be writing this very file
        assert main(["resume", str(run), "--epochs", "2", "--quiet"]) == 2
        assert left.exists()
    assert main(["resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert not left.exists()


# An exporter that writes part of the file and then either dies or waits to be killed.
HALF_EXPORT = """
    import os, signal, sys, time
    from pathlib import Path
    import studio.export.onnx_export as onnx_export

    def half_export(model, x, dst, opset):
        Path(dst).write_bytes(b"half an onnx file")
        print("writing", flush=True)
        if {die}:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(600)

    onnx_export.EXPORTERS["dynamo"] = half_export
    from studio.export.run_export import export_run
    export_run(Path({run!r}))
"""


def test_export_removes_the_temp_file_a_killed_export_left(run: Path) -> None:
    child = python(HALF_EXPORT.format(die=True, run=str(run)))
    child.communicate(timeout=300)
    assert child.returncode == -9
    (left,) = stale_temp_files(run, ["model.onnx"])
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "export", str(run)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert not left.exists() and (run / "model.onnx").is_file()
    assert list(stale_temp_files(run, ["model.onnx"])) == []


def test_a_second_export_of_the_same_file_is_refused_and_leaves_the_live_one_alone(run: Path) -> None:
    child = python(HALF_EXPORT.format(die=False, run=str(run)))
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        (live,) = stale_temp_files(run, ["model.onnx"])
        proc = subprocess.run(
            [sys.executable, "-m", "studio", "export", str(run)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert lines and f"is being written by process {child.pid}" in lines[0], proc.stderr
        assert live.exists() and not (run / "model.onnx").exists()
        # Writing to another file is fine meanwhile, and so is reading the run.
        other = run / "copy.onnx"
        assert main(["export", str(run), "-o", str(other)]) == 0 and other.is_file()
    finally:
        child.kill()
        child.communicate(timeout=60)
    assert main(["export", str(run)]) == 0
    assert not live.exists() and (run / "model.onnx").is_file()
