"""Seconds per epoch of each architecture on a 64 px RGB image folder, side by side.

The folder is the bundled `resources/examples/shapes/` (300 RGB images, 3 classes), trained at
`image_size = 64` (and at 32 for resnet18, to show that the cost per image follows the pixels:
the stem by size). Wall seconds swing with the machine's load; CPU seconds (this process's, per
epoch) much less, so compare those on a shared machine. Each row trains `--epochs` epochs in this process (no run directory, batch 32,
Adam, the CPU unless `--device`), and prints the median epoch time (train and validation), the
FLOPs of one image's forward pass, and the parameter count. `--old-stem` adds resnet18 at 64 px
with the stride-1 CIFAR stem every size got before, the baseline the ratio is against.

    python benchmarks/arch_epoch_time.py                  # every architecture, 2 epochs each
    python benchmarks/arch_epoch_time.py --old-stem       # and the old resnet18 stem at 64 px
    python benchmarks/arch_epoch_time.py --archs cnn vit --epochs 3
    python benchmarks/arch_epoch_time.py --pretrained     # and the ImageNet models, when cached
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ARCHS = ["lenet", "cnn", "mobilenet_v3_small", "vit", "resnet18"]


def epoch_times(
    arch: str, size: int, epochs: int, device: str, old_stem: bool = False, weights: str = ""
) -> dict[str, Any]:
    """Train `arch` on the shapes at `size` px; the median epoch time, FLOPs/image and parameters."""
    import studio.models.resnet as resnet
    from studio.config import Config, with_overrides
    from studio.engine.callbacks import Callback
    from studio.engine.trainer import Trainer
    from studio.models import param_count
    from studio.models.cost import flops_per_image
    from studio.resources import resource_path

    class Times(Callback):
        """Each epoch's wall seconds and this process's CPU seconds (steadier on a shared machine)."""

        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.cpu: list[float] = []
            self._cpu0 = 0.0

        def on_epoch_start(self, trainer: Any, event: Any) -> None:
            self._cpu0 = time.process_time()

        def on_epoch_end(self, trainer: Any, event: Any) -> None:
            self.seconds.append(event.epoch_s)
            self.cpu.append(time.process_time() - self._cpu0)

    cfg = with_overrides(
        Config(),
        [
            'data.source="folder"',
            f'data.path="{resource_path("examples", "shapes").as_posix()}"',
            f"data.image_size={size}",
            "data.channels=3",
            f'model.arch="{arch}"',
            f'model.weights="{weights}"',
            f"train.epochs={epochs}",
            "train.batch_size=32",
            f'train.device="{device}"',
        ],
    )
    times = Times()
    saved = resnet.stem_stride
    if old_stem:
        resnet.stem_stride = lambda size: 1  # the stride-1 stem at every size
    try:
        trainer = Trainer(cfg, None, callbacks=[times])
        trainer.fit()
    finally:
        resnet.stem_stride = saved
    model = trainer.model
    assert model is not None
    flops = flops_per_image(model.cpu(), trainer.spec)
    return {
        "seconds": statistics.median(times.seconds),
        "cpu": statistics.median(times.cpu),
        "flops": flops,
        "params": param_count(model),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=ARCHS)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--old-stem", action="store_true", help="also resnet18 at 64 px with the stride-1 stem")
    parser.add_argument(
        "--pretrained", action="store_true", help="also resnet18 and mobilenet_v3_small with cached ImageNet weights"
    )
    args = parser.parse_args()

    rows: list[tuple[str, int, dict[str, Any]]] = []
    t0 = time.perf_counter()
    for arch in args.archs:
        rows.append((arch, 64, epoch_times(arch, 64, args.epochs, args.device)))
        if arch == "resnet18":
            rows.append((arch, 32, epoch_times(arch, 32, args.epochs, args.device)))
    if args.pretrained:
        from studio.models.pretrained import is_cached

        for arch in ("resnet18", "mobilenet_v3_small"):
            if is_cached(arch):
                rows.append(
                    (f"{arch} imagenet", 64, epoch_times(arch, 64, args.epochs, args.device, weights="imagenet"))
                )
            else:
                print(f"{arch}: ImageNet weights not cached; skipped")
    if args.old_stem:
        rows.append(("resnet18 (old stride-1 stem)", 64, epoch_times("resnet18", 64, 1, args.device, old_stem=True)))

    print(f"\n300 RGB shapes, 3 classes, batch 32, {args.device}; median of {args.epochs} epoch(s) (train + val)")
    print(f"{'architecture':32} {'px':>4} {'s/epoch':>8} {'CPU s/epoch':>12} {'MFLOPs/img':>11} {'params':>12}")
    for arch, size, r in rows:
        print(
            f"{arch:32} {size:>4} {r['seconds']:>8.2f} {r['cpu']:>12.2f} {r['flops'] / 1e6:>11.1f} {r['params']:>12,}"
        )
    by = {(a, s): r for a, s, r in rows}
    if ("resnet18", 64) in by and ("resnet18", 32) in by:
        big, small = by[("resnet18", 64)], by[("resnet18", 32)]
        print(
            f"resnet18 64 px / 32 px: {big['seconds'] / small['seconds']:.2f}x the time, "
            f"{big['cpu'] / small['cpu']:.2f}x the CPU time, "
            f"{big['flops'] / small['flops']:.2f}x the FLOPs"
        )
    old = by.get(("resnet18 (old stride-1 stem)", 64))
    if old and ("resnet18", 64) in by:
        new = by[("resnet18", 64)]
        print(
            f"resnet18 at 64 px, old stem / new stem: {old['seconds'] / new['seconds']:.2f}x the time, "
            f"{old['cpu'] / new['cpu']:.2f}x the CPU time, "
            f"{old['flops'] / new['flops']:.2f}x the FLOPs"
        )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
