"""The training loop's own cost: `Trainer.fit()` against a plain PyTorch loop on the same tensors.

Both train the digits MLP (Linear(784, 128), ReLU, Linear(128, 10); cross-entropy; Adam; batch 64)
on the bundled 8,000 digits held in memory, so data loading is out of the picture and what is left
is the loop: batching, the step, running sums, step records, checkpoints and events. Each run is a
fresh process that first trains one epoch to warm up (imports, the memory check's first use of
torch's meta tensors, first calls), then times a whole training of `--epochs`; runs alternate
A B A B ..., and the script prints every run, the median samples per second of each and the
ratio studio / plain.

`--against DIR` adds a third program: the Trainer of another checkout (e.g. the main branch before
a refactor), run in the same alternation, so a change to the loop is measured side by side.

    python benchmarks/loop_overhead.py                         # 5 rounds, 3 epochs
    python benchmarks/loop_overhead.py --against ../main       # also the Trainer of ../main
    python benchmarks/loop_overhead.py --threads 1             # one thread: no OpenMP contention
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PLAIN = r"""
import json, sys, time
import torch
from torch import nn
from studio.data.digits import load_digits
from studio.engine.device import cpu_threads

torch.set_num_threads(cpu_threads())  # the studio's own rule, so both loops run on the same threads
epochs, seed = int(sys.argv[1]), int(sys.argv[2])
x, y, _ = load_digits()
n_train = 6400
x = x[:n_train].float().div_(255.0).sub_(0.1307).div_(0.3081)
y = y[:n_train]


def train(epochs):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        order = torch.randperm(n_train)
        for i in range(0, n_train, 64):
            idx = order[i:i + 64]
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


train(1)
t0 = time.perf_counter()
train(epochs)
seconds = time.perf_counter() - t0
print(json.dumps({"samples_per_s": epochs * n_train / seconds}))
"""

STUDIO = r"""
import json, sys, time
from studio.config import Config, with_overrides
from studio.data import load_data
from studio.engine.trainer import Trainer

epochs, seed, run_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
config = with_overrides(Config(), ['train.device="cpu"', f"train.epochs={epochs}", f"seed={seed}"])
bundle = load_data(config)
Trainer(config.replace_value("train.epochs", 1), run_dir + "-warm-up", data=bundle).fit()
t0 = time.perf_counter()
Trainer(config, run_dir, data=bundle).fit()
seconds = time.perf_counter() - t0
print(json.dumps({"samples_per_s": epochs * len(bundle.train) / seconds}))
"""


def run(script: str, args: list[str], repo: Path, threads: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(repo))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, cwd=repo)
    if proc.returncode != 0:
        sys.exit(f"a run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["samples_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for every run (0 = default)")
    parser.add_argument("--against", type=Path, default=None, help="another checkout whose Trainer runs too")
    args = parser.parse_args()

    programs: list[tuple[str, str, Path]] = [("plain", PLAIN, REPO), ("studio", STUDIO, REPO)]
    if args.against is not None:
        programs.append(("against", STUDIO, args.against.resolve()))
    speeds: dict[str, list[float]] = {name: [] for name, _, _ in programs}
    print(
        f"digits MLP in memory, {args.epochs} epochs, {args.rounds} rounds; "
        f"OMP_NUM_THREADS={args.threads or os.environ.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="studio-loop-bench-") as tmp:
        for n in range(args.rounds):
            for name, script, repo in programs:
                extra = [str(Path(tmp) / f"{name}-{n}")] if script is STUDIO else []
                speed = run(script, [str(args.epochs), str(n), *extra], repo, args.threads)
                speeds[name].append(speed)
                print(f"  round {n}  {name:8s} {speed:9.0f} samples/s", flush=True)
    median = {name: statistics.median(values) for name, values in speeds.items()}
    print("median samples/s: " + ", ".join(f"{name} {value:.0f}" for name, value in median.items()))
    print(f"ratio studio / plain = {median['studio'] / median['plain']:.3f}")
    if "against" in median:
        print(
            f"ratio studio / against = {median['studio'] / median['against']:.3f} "
            f"(above 1: this checkout's loop is faster)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
