"""Small runs to export: tiny digit images and small CSV files, trained for a step or two."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import studio.data as data
from studio.cli import main
from studio.data.digits import load_digits


def tiny_digits(n: int = 300, size: int = 14):
    """The first `n` bundled digits shrunk to `size` px, so even resnet18 trains in a second."""

    def load(config):
        x, y, labels = load_digits()
        small = F.interpolate(x[:n].float(), size=(size, size), mode="area").round().clamp(0, 255).to(torch.uint8)
        return data.bundle_from_arrays(config, small, y[:n], kind="image", task="classification", labels=labels)

    return load


def write_blobs_csv(path: Path, n: int = 150) -> Path:
    """Three well-separated classes with text labels, two features, and a few blank cells."""
    rng = np.random.default_rng(0)
    names = ("north", "south", "west")
    centres = np.array([[0.0, 5.0], [0.0, -5.0], [-5.0, 0.0]])
    lines = ["width,height,zone"]
    for i in range(n):
        k = i % 3
        w, h = centres[k] + rng.normal(0, 1.0, 2)
        cell = "" if i in (7, 40, 41) else f"{w:.4f}"
        lines.append(f"{cell},{h:.4f},{names[k]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_line_csv(path: Path) -> Path:
    """The textbook walkthrough: x = 100 points evenly in [0, 5], y = 2x + 1 + N(0, 0.5), numpy seed 42."""
    np.random.seed(42)
    x = np.linspace(0, 5, 100)
    y = 2 * x + 1 + np.random.normal(0, 0.5, 100)
    path.write_text(
        "x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y, strict=True)), encoding="utf-8"
    )
    return path


def train_run(tmp_path: Path, name: str, toml: str, *extra: str) -> Path:
    """Train headless through the CLI and return the run directory."""
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(toml, encoding="utf-8")
    run_dir = tmp_path / name
    assert main(["train", str(cfg), "--run-dir", str(run_dir), "-q", *extra]) == 0
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    return run_dir


def toml_for(
    source: str,
    arch: str,
    *,
    path: Path | None = None,
    target: str = "label",
    epochs: int = 1,
    lr: float = 0.003,
    optimizer: str = "adam",
    extra_data: str = "",
    hidden: str = "[16]",
    extra_model: str = "",
) -> str:
    return (
        f'seed = 0\n[data]\nsource = "{source}"\n'
        + (f'path = "{path.as_posix()}"\ntarget = "{target}"\n' if path else "")
        + extra_data
        + f'[model]\narch = "{arch}"\nhidden = {hidden}\n'
        + extra_model
        + f'[train]\nepochs = {epochs}\nbatch_size = 64\nlr = {lr}\noptimizer = "{optimizer}"\ndevice = "cpu"\n'
    )
