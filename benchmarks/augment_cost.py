"""What augmentation costs per training step, on the device that trains.

For a few data shapes and models, times a full training step (batch from the in-memory source,
forward, backward, Adam) without and with every augmentation on (flip, translate 0.1, rotate 10
degrees, colour jitter 0.3, which is the worst case: all transforms at once), and the augmentation
alone. Prints milliseconds per step and the overhead in percent of the plain step.

    python benchmarks/augment_cost.py               # the best device here (cuda if present)
    python benchmarks/augment_cost.py --device cpu --steps 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.config import config_from_dict
from studio.data.augment import build_augment
from studio.data.base import DataSpec, Split
from studio.data.batches import InMemoryBatches, epoch_order
from studio.engine.device import resolve_device
from studio.models import build_model

CASES = [  # (name, channels, size, arch, batch)
    ("digits 1x28x28", 1, 28, "mlp", 64),
    ("digits 1x28x28", 1, 28, "lenet", 64),
    ("cifar 3x32x32", 3, 32, "lenet", 128),
    ("cifar 3x32x32", 3, 32, "resnet18", 128),
]
ALL_ON = {"flip": True, "translate": 0.1, "rotate": 10.0, "color_jitter": 0.3}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    device: torch.device, c: int, size: int, arch: str, batch: int, augment: dict, steps: int, repeats: int
) -> tuple[float, float]:
    """Median ms per training step, and median ms of the augmentation alone per batch."""
    n = batch * steps
    cfg = config_from_dict({"augment": augment, "model": {"arch": arch, "hidden": [128]}})
    spec = DataSpec(
        "bench",
        "image",
        "classification",
        (c, size, size),
        labels=tuple("abcdefghij"),
        mean=(0.5,) * c,
        std=(0.25,) * c,
    )
    torch.manual_seed(0)
    split = Split(torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8), torch.randint(0, 10, (n,)))
    aug = build_augment(cfg, spec, device)
    src = InMemoryBatches(split, device, aug)
    model = build_model(cfg.model, spec).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def one_pass() -> float:
        _sync(device)
        t0 = time.perf_counter()
        for x, y in src.batches(epoch_order(n, 0, 1), 0, lambda: batch):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
        _sync(device)
        return (time.perf_counter() - t0) / steps * 1000

    one_pass()  # warm-up: kernels, allocator, first-touch
    step_ms = statistics.median(one_pass() for _ in range(repeats))
    aug_ms = 0.0
    if aug is not None:
        xb = torch.rand(batch, c, size, size, device=device)
        aug(xb)
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                aug(xb)
            _sync(device)
            times.append((time.perf_counter() - t0) / steps * 1000)
        aug_ms = statistics.median(times)
    return step_ms, aug_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=30, help="steps per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (the median counts)")
    parser.add_argument("--skip-resnet", action="store_true", help="leave out resnet18 (slow on a CPU)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch (0 = torch's default); 1 gives steadier figures on a busy machine",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(
        f"device {device} ({torch.get_num_threads()} CPU threads); {args.steps} steps a pass, median of {args.repeats} passes; "
        f"augmentation: {', '.join(f'{k}={v}' for k, v in ALL_ON.items())}"
    )
    print(
        f"{'data':16} {'model':9} {'batch':>5} {'plain ms':>9} {'augmented ms':>13} {'overhead':>9} "
        f"{'augment alone ms':>17}"
    )
    for name, c, size, arch, batch in CASES:
        if arch == "resnet18" and args.skip_resnet:
            continue
        plain, _ = time_steps(device, c, size, arch, batch, {}, args.steps, args.repeats)
        augmented, alone = time_steps(device, c, size, arch, batch, ALL_ON, args.steps, args.repeats)
        print(
            f"{name:16} {arch:9} {batch:5d} {plain:9.3f} {augmented:13.3f} "
            f"{(augmented / plain - 1) * 100:8.1f}% {alone:17.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
