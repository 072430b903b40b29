"""Held-out digits through ONNX: train lenet, export, run onnxruntime on digits it never saw.

    python benchmarks/heldout_digits.py [--epochs 8] [--source digits|folder]

`digits` trains on the bundled source and holds out its test split; `folder` writes the first
7,000 digits as a PNG folder (root/<digit>/<n>.png), trains on that, and holds out the last 1,000.
The held-out digits go in as pixels / 255, NCHW, and class names come from the `labels` metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.cli import main
from studio.data.digits import load_digits
from studio.engine.report import load_trained


def accuracy(onnx_path: Path, images: np.ndarray, targets: np.ndarray) -> float:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    labels = json.loads(session.get_modelmeta().custom_metadata_map["labels"])
    out = session.run(["output"], {"input": images[:, None].astype(np.float32) / 255.0})[0]
    return float(np.mean([labels[i] == str(t) for i, t in zip(out.argmax(1), targets, strict=True)]))


def run(epochs: int, source: str, lr: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="heldout-digits-"))
    images, targets, _ = load_digits()
    x, y = images[:, 0].numpy(), targets.numpy()
    path_line = ""
    if source == "folder":
        root = work / "digits"
        for i in range(7000):
            folder = root / str(int(y[i]))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i]).save(folder / f"{i:05d}.png")
        path_line = f'path = "{root.as_posix()}"\n'
    cfg = work / "lenet.toml"
    cfg.write_text(
        f'seed = 0\n[data]\nsource = "{source}"\n{path_line}[model]\narch = "lenet"\n'
        f'[train]\nepochs = {epochs}\nbatch_size = 64\nlr = {lr}\noptimizer = "adam"\n',
        encoding="utf-8",
    )
    run_dir = work / "run"
    started = time.perf_counter()
    if main(["train", str(cfg), "--run-dir", str(run_dir), "-q"]) != 0:
        raise SystemExit("training failed")
    trained = time.perf_counter()
    if main(["export", str(run_dir)]) != 0:
        raise SystemExit("export failed")
    exported = time.perf_counter()
    if source == "folder":
        held_x, held_y = x[7000:], y[7000:]
    else:
        test = load_trained(run_dir).data.test
        held_x, held_y = test.x[:, 0].numpy(), test.y.numpy()
    acc = accuracy(run_dir / "model.onnx", held_x, held_y)
    print(
        f"\nlenet, {source} source, {epochs} epochs, lr {lr}: held-out accuracy {acc:.4f} on {len(held_y)} "
        f"digits (train {trained - started:.1f} s, export + proof {exported - trained:.1f} s); "
        f"{'PASS' if acc >= 0.955 else 'FAIL'} (>= 0.955)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--source", choices=("digits", "folder"), default="digits")
    parser.add_argument("--lr", type=float, default=0.002)
    args = parser.parse_args()
    run(args.epochs, args.source, args.lr)
