"""Samples per second of one run trained by 1 and by N processes under DDP (torchrun), side by side.

Each case is a real `torchrun -m studio train` of the bundled digits (an MLP on the CPU with gloo,
a CNN on CUDA with NCCL); the figure is the median `samples_per_s` of its step records after the
first epoch (the whole run's throughput: the records sum every process's samples). Cases
alternate, repeated, so a busy machine slows both alike. Prints each case and the ratio N/1.

    python benchmarks/ddp_scaling.py                 # CPU: 1 and 2 processes (OMP_NUM_THREADS=1 each)
    python benchmarks/ddp_scaling.py --repeats 3     # and, with GPUs here, 1 GPU and all of them
    python benchmarks/ddp_scaling.py --cpu-arch lenet --epochs 2   # more compute per step on the CPU
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

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """seed = 0
[data]
source = "digits"
[model]
arch = "{arch}"
hidden = [256, 256]
[train]
epochs = {epochs}
batch_size = {batch}
lr = 0.001
device = "{device}"
log_every = 5
"""


def one_run(tmp: Path, name: str, nproc: int, device: str, arch: str, epochs: int, batch: int) -> float:
    cfg = tmp / f"{name}.toml"
    cfg.write_text(CONFIG.format(arch=arch, epochs=epochs, batch=batch, device=device))
    run = tmp / name
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    cmd += ["-m", "studio", "train", str(cfg), "--run-dir", str(run), "--quiet"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["samples_per_s"] for r in lines if r["kind"] == "step" and r["epoch"] > 1 and r.get("samples_per_s")]
    return statistics.median(speeds)


def compare(title: str, device: str, arch: str, counts: tuple[int, int], repeats: int, epochs: int, batch: int) -> None:
    results: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for n in counts:  # alternate, so drift in the machine's load hits both
                results[n].append(one_run(Path(tmp), f"{device}-{n}-{r}", n, device, arch, epochs, batch))
    base, scaled = (statistics.median(results[n]) for n in counts)
    print(f"{title}: batch {batch} (global), {arch}, median of {repeats} runs")
    for n in counts:
        print(f"  {n} process(es): {statistics.median(results[n]):10.0f} samples/s  (runs: {results[n]})")
    print(f"  ratio {counts[1]}/{counts[0]}: {scaled / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nproc", type=int, default=2, help="processes to compare with 1 on the CPU")
    parser.add_argument("--cpu-arch", default="mlp", help="the CPU case's model (mlp, lenet, cnn, ...)")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}; {os.cpu_count()} CPU cores; {torch.cuda.device_count()} CUDA device(s)")
    if not args.skip_cpu:
        compare("CPU (gloo)", "cpu", args.cpu_arch, (1, args.nproc), args.repeats, args.epochs, 128)
    gpus = torch.cuda.device_count()
    if gpus >= 1:
        name = torch.cuda.get_device_name(0)
        compare(f"CUDA (nccl) on {gpus} x {name}", "cuda", "cnn", (1, gpus), args.repeats, args.epochs, 256)
        if gpus == 1:
            print("  (one GPU here: 1 and 'all' are the same; the figure shows DDP's cost at N=1 under torchrun)")


if __name__ == "__main__":
    main()
