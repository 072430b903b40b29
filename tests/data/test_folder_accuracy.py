"""The accuracy promise: lenet, 8 epochs (adam, lr 1e-3, batch 64) on the 8,000 digits as PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from studio.cli import main
from studio.data.digits import load_digits


@pytest.mark.slow
def test_lenet_on_the_png_digits_folder_reaches_955_on_held_out_digits(tmp_path: Path) -> None:
    x, y, labels = load_digits()
    root = tmp_path / "digits"
    for i in range(len(y)):
        folder = root / labels[int(y[i])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i, 0].numpy()).save(folder / f"{i:05d}.png")
    cfg = tmp_path / "lenet.toml"
    cfg.write_text(
        f"""seed = 0
[data]
source = "folder"
path = "{root.as_posix()}"
[model]
arch = "lenet"
[train]
epochs = 8
batch_size = 64
lr = 0.001
optimizer = "adam"
device = "cpu"
""",
        encoding="utf-8",
    )
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["metrics"]["test_accuracy"] >= 0.955  # 800 digits it never saw (the test split)
