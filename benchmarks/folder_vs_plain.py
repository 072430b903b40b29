"""The studio's `folder` training against the plain PyTorch program users write from tutorials.

Both train the same MLP (Linear(784, 128), ReLU, Linear(128, 10); cross-entropy; Adam lr 1e-3;
batch 64; 5 epochs) on the same folder of PNGs: the bundled 8,000 MNIST digits written out as one
PNG per image, in `train/`, `val/` and `test/` folders of one folder per digit (the split is the
studio's own stratified seed-0 split, so both programs train and validate on the same images).

The plain program is the tutorial recipe: `ImageFolder` + `Grayscale` + `ToTensor` + `Normalize`
+ `DataLoader(batch_size=64, shuffle=True)`, validating after every epoch as the studio does.
Runs alternate, plain then studio (A B A B ...), each a whole fresh process, timed from start to
exit; round n seeds both programs with n (initialisation and shuffling), so the accuracies are
medians over seeds rather than one draw. The script prints every run, the median whole-process
time ratio (studio / plain) and both median validation accuracies.

    python benchmarks/folder_vs_plain.py                  # CPU, 2 rounds (A B A B)
    python benchmarks/folder_vs_plain.py --rounds 3 --device cuda
    python benchmarks/folder_vs_plain.py --threads 1      # both on one thread: no OpenMP contention
    python benchmarks/folder_vs_plain.py --lenet          # also: lenet, 8 epochs, test accuracy

The PNG folder goes to `--folder` (default: the user's cache folder, studio/benchmarks/); it is
written once and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PLAIN = r"""
import json, sys
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

root, device, epochs, seed = sys.argv[1], torch.device(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(seed)
tf = transforms.Compose([transforms.Grayscale(), transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
train = datasets.ImageFolder(f"{root}/train", transform=tf)
val = datasets.ImageFolder(f"{root}/val", transform=tf)
train_loader = DataLoader(train, batch_size=64, shuffle=True)
val_loader = DataLoader(val, batch_size=64)
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(epochs):
    model.train()
    for x, y in train_loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in val_loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    print(f"epoch {epoch + 1}: val accuracy {correct / total:.4f}", file=sys.stderr)
print(json.dumps({"val_accuracy": correct / total}))
"""

STUDIO_CONFIG = """seed = {seed}
[data]
source = "folder"
path = "{root}"
[model]
arch = "{arch}"
hidden = [128]
[train]
epochs = {epochs}
batch_size = 64
lr = 0.001
optimizer = "adam"
device = "{device}"
"""


def default_folder() -> Path:
    from studio.data.torchvision_sets import default_cache_dir

    return default_cache_dir().parent / "benchmarks" / "mnist-8k-png"


def write_png_folder(root: Path) -> Path:
    """The bundled digits as root/{train,val,test}/<digit>/<index>.png (studio's seed-0 split); once."""
    from PIL import Image

    from studio.data.digits import load_digits
    from studio.data.splits import split_indices

    done = root / ".complete"
    if done.is_file():
        return root
    x, y, labels = load_digits()
    parts = split_indices(len(y), 0.1, 0.1, 0, y)
    for name, idx in zip(("train", "val", "test"), parts, strict=True):
        for i in idx.tolist():
            folder = root / name / labels[int(y[i])]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i, 0].numpy()).save(folder / f"{i:05d}.png")
    done.write_text("8000 images\n")
    return root


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def run_plain(root: Path, device: str, epochs: int, work: Path, env: dict[str, str], seed: int) -> tuple[float, float]:
    script = work / "plain_tutorial.py"
    script.write_text(PLAIN, encoding="utf-8")
    seconds, out = _timed([sys.executable, str(script), str(root), device, str(epochs), str(seed)], env)
    return seconds, json.loads(out.strip().splitlines()[-1])["val_accuracy"]


def run_studio(
    root: Path, device: str, epochs: int, work: Path, env: dict[str, str], n: int, arch: str = "mlp"
) -> tuple[float, dict]:
    cfg = work / f"studio_{arch}.toml"
    cfg.write_text(
        STUDIO_CONFIG.format(root=root.as_posix(), arch=arch, epochs=epochs, device=device, seed=n), encoding="utf-8"
    )
    run_dir = work / f"run-{arch}-{n}"
    seconds, _ = _timed([sys.executable, "-m", "studio", "train", str(cfg), "--run-dir", str(run_dir), "--quiet"], env)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return seconds, summary["metrics"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs (default 2: A B A B)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=None, help="where the PNG folder is written (once)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="OMP_NUM_THREADS for both programs (0 = each its default); 1 takes thread contention "
        "on a busy machine out of the comparison",
    )
    parser.add_argument("--lenet", action="store_true", help="also train lenet 8 epochs and print its test accuracy")
    args = parser.parse_args()

    root = write_png_folder((args.folder or default_folder()).expanduser().resolve())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(
        f"folder: {root} (8,000 PNGs); device {args.device}; {args.epochs} epochs; "
        f"{args.rounds} rounds, plain then studio; OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    plain_t, studio_t, plain_acc, studio_acc = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        work = Path(tmp)
        for n in range(args.rounds):
            t, acc = run_plain(root, args.device, args.epochs, work, env, seed=n)
            plain_t.append(t)
            plain_acc.append(acc)
            print(f"  A plain  seed {n}  {t:7.2f} s  val accuracy {acc:.4f}", flush=True)
            t, metrics = run_studio(root, args.device, args.epochs, work, env, n)
            studio_t.append(t)
            studio_acc.append(metrics["val_accuracy"])
            print(f"  B studio seed {n}  {t:7.2f} s  val accuracy {metrics['val_accuracy']:.4f}", flush=True)
        ratio = statistics.median(studio_t) / statistics.median(plain_t)
        print(
            f"median whole-process time: plain {statistics.median(plain_t):.2f} s, "
            f"studio {statistics.median(studio_t):.2f} s; ratio studio/plain = {ratio:.3f}"
        )
        print(
            f"val accuracy: plain {statistics.median(plain_acc):.4f}, studio {statistics.median(studio_acc):.4f} "
            f"(median of {args.rounds})"
        )
        if args.lenet:
            t, metrics = run_studio(root, args.device, 8, work, env, 0, arch="lenet")
            print(
                f"lenet, 8 epochs: test accuracy {metrics['test_accuracy']:.4f} "
                f"(val {metrics['val_accuracy']:.4f}), {t:.1f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
