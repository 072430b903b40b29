"""The wheel carries the resources and trains the bundled example outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_resources_and_runs_from_anywhere(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(REPO),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("studio-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "studio/_resources/mnist-8k.npz",
        "studio/_resources/mnist-8k.LICENSE",
        "studio/_resources/examples/digits.toml",
        "studio/_resources/style.qss",
        "studio/cli.py",
    ):
        assert needed in names, needed
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import studio; print(studio.__file__)"
    where = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.stdout.strip().startswith(str(site))
    run = tmp_path / "run"
    proc = subprocess.run(
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
            "train.epochs=1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
