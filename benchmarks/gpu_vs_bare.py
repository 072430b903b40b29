"""The studio against a bare PyTorch script of the same recipe, on the same device, in one process.

Three measurements, each printed with its ratio:

1. **Time to a test accuracy** (99% by default) on the bundled digits with the fast CNN recipe
   (the "Best for digits" preset, `resources/examples/best-digits.toml`: cnn, AdamW, onecycle,
   shifts and rotations on the device, fp32): the studio's `Trainer.fit()` (validation, records
   and checkpoints every epoch included) against a plain loop with the same splits, initial
   weights, sample order, schedule and augmentation, data on the device in both. Both check the
   test split after every epoch and stop at the target. Goals: studio within 1.1x of the bare
   script; under 2 s of training on a current data-centre GPU.
2. **resnet18 at 32 px, bf16**: training samples/s (epochs after the first, validation left out)
   of the studio against the bare loop (autocast bf16 in both).
3. **The window**: the recipe of (1) trained from `MainWindow` (offscreen, under `app.exec()`)
   against the same job headless, samples/s from each run's step records. Goal: >= 0.95.

    python benchmarks/gpu_vs_bare.py                     # on cuda when there is one
    python benchmarks/gpu_vs_bare.py --device cpu --quick   # small settings, runs anywhere
    python benchmarks/gpu_vs_bare.py --json report.json  # also write the figures as JSON

Each measurement is preceded by a warm-up of its own (CUDA context, cuDNN's first calls), and
the two sides alternate over `--rounds`; the medians are compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from studio.config import Config, load_config, with_overrides
from studio.data import DataBundle, load_data
from studio.data.augment import build_augment
from studio.data.base import Split
from studio.data.batches import epoch_order
from studio.engine.callbacks import Callback
from studio.engine.device import cpu_threads
from studio.engine.evaluate import evaluate
from studio.engine.optim import param_groups
from studio.engine.run_dir import read_metrics
from studio.engine.schedule import ConfigSchedule
from studio.engine.trainer import Trainer
from studio.models import build_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PRESET = Path(__file__).resolve().parents[1] / "resources" / "examples" / "best-digits.toml"


def recipe(device: str, *extra: str) -> Config:
    """The fast CNN recipe: the "Best for digits" preset (cnn, AdamW, onecycle, shifts and rotations)."""
    overrides = [f'train.device="{device}"', "train.log_every=50", *extra]
    if PRESET.is_file():
        return load_config(PRESET, overrides)
    return with_overrides(Config(), ['model.arch="lenet"', "train.batch_size=128", "train.lr=0.002", *overrides])


# -- the bare script ---------------------------------------------------------------------------------


def bare_fit(
    cfg: Config,
    bundle: DataBundle,
    epochs: int,
    on_epoch: Callable[[int, nn.Module], bool] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
) -> None:
    """A plain loop with the studio's splits, model, parameter groups, rate schedule, augmentation and
    sample order (pure functions, so both sides do the same work and draw the same numbers), and
    nothing else of the studio: no records, checkpoints, validation, events or control."""
    device = torch.device(cfg.train.device)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())  # the studio's rule, so both train on the same threads
    t = cfg.train
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, bundle.spec).to(device)
    groups = param_groups(model, t.weight_decay)
    optimizer = {
        "sgd": lambda: torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum),
        "adam": lambda: torch.optim.Adam(groups, lr=t.lr),
    }.get(t.optimizer, lambda: torch.optim.AdamW(groups, lr=t.lr))()
    schedule = ConfigSchedule(t)
    augment = build_augment(cfg, bundle.spec, device)
    loss_fn = nn.CrossEntropyLoss()
    x, y = bundle.train.x.to(device), bundle.train.y.to(device)
    n, bs = len(y), t.batch_size
    amp = torch.bfloat16 if t.precision == "bf16" and device.type == "cuda" else None
    step = 0
    for epoch in range(1, epochs + 1):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        order = epoch_order(n, cfg.seed, epoch).to(device)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            xb = x[idx].float().div_(255.0)
            if augment is not None:
                xb = augment(xb)
            step += 1
            lr = schedule(step, epoch - 1 + min(i + bs, n) / n, t.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                out = model(xb)
            loss = loss_fn(out.float(), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if on_epoch is not None and on_epoch(epoch, model):
            return


@torch.inference_mode()
def bare_accuracy(model: nn.Module, split: Any, device: torch.device) -> float:
    model.eval()
    x, y = split.x.to(device), split.y.to(device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i in range(0, len(y), 1024):
        correct += (model(x[i : i + 1024].float().div_(255.0)).argmax(1) == y[i : i + 1024]).sum()
    return int(correct) / len(y)


# -- 1. time to the target accuracy --------------------------------------------------------------------


class TargetStop(Callback):
    """Checks the test split after each epoch; stops the run at the target; notes the times."""

    def __init__(self, target: float) -> None:
        self.target, self.t0, self.best = target, 0.0, 0.0
        self.reached: Reached | None = None

    def on_fit_start(self, trainer: Trainer, event: Any) -> None:
        sync(trainer.device)
        self.t0 = time.perf_counter()

    def on_epoch_end(self, trainer: Trainer, event: Any) -> None:
        setup = trainer.setup
        assert setup is not None and trainer.model is not None
        acc = evaluate(trainer.model, setup.test_src, setup.loss_fn, setup.spec)["accuracy"] or 0.0
        self.best = max(self.best, acc)
        if acc >= self.target and self.reached is None:
            self.reached = (event.epoch, time.perf_counter() - self.t0, acc)
            trainer.control.stop()


Reached = tuple[int, float, float]  # (epoch, seconds of training, test accuracy)


def time_to_target(
    cfg: Config, bundle: DataBundle, target: float, max_epochs: int, tmp: Path
) -> dict[str, Callable[[], Reached]]:
    cfg = with_overrides(cfg, [f"train.epochs={max_epochs}"])
    device = torch.device(cfg.train.device)

    def studio() -> Reached:
        stop = TargetStop(target)
        Trainer(cfg, Path(tempfile.mkdtemp(dir=tmp)) / "run", callbacks=[stop], data=bundle).fit()
        return stop.reached or (max_epochs, float("nan"), stop.best)

    def bare() -> Reached:
        reached: list[tuple[int, float, float]] = []
        best = [0.0]
        sync(device)
        t0 = time.perf_counter()

        def check(epoch: int, model: nn.Module) -> bool:
            acc = bare_accuracy(model, bundle.test, device)
            best[0] = max(best[0], acc)
            if acc >= target:
                reached.append((epoch, time.perf_counter() - t0, acc))
                return True
            return False

        bare_fit(cfg, bundle, max_epochs, check)
        return reached[0] if reached else (max_epochs, float("nan"), best[0])

    return {"studio": studio, "bare": bare}


# -- 2. and 3. samples per second ----------------------------------------------------------------------


class TrainClock(Callback):
    """Training-only seconds per epoch: from epoch start to its last step (a synced log point)."""

    def __init__(self) -> None:
        self.start = 0.0
        self.seconds: dict[int, float] = {}

    def on_epoch_start(self, trainer: Trainer, event: Any) -> None:
        sync(trainer.device)
        self.start = time.perf_counter()

    def on_step_end(self, trainer: Trainer, event: Any) -> None:
        if event.epoch_progress is not None and event.epoch_progress >= 1.0:
            self.seconds[event.epoch] = time.perf_counter() - self.start


def samples_per_s(cfg: Config, bundle: DataBundle, epochs: int, tmp: Path) -> dict[str, Callable[[], float]]:
    cfg = with_overrides(cfg, [f"train.epochs={epochs}"])
    device, n = torch.device(cfg.train.device), len(bundle.train)

    def studio() -> float:
        clock = TrainClock()
        Trainer(cfg, Path(tempfile.mkdtemp(dir=tmp)) / "run", callbacks=[clock], data=bundle).fit()
        later = [s for e, s in clock.seconds.items() if e > 1]
        return n * len(later) / sum(later)

    def bare() -> float:
        times: dict[int, float] = {}
        start = [0.0]

        def begin(epoch: int) -> None:
            sync(device)
            start[0] = time.perf_counter()

        def end(epoch: int, model: nn.Module) -> bool:
            sync(device)
            times[epoch] = time.perf_counter() - start[0]
            return False

        bare_fit(cfg, bundle, epochs, end, begin)
        later = [s for e, s in times.items() if e > 1]
        return n * len(later) / sum(later)

    return {"studio": studio, "bare": bare}


def record_rate(run: Path) -> float:
    """Median samples/s of a run's step records after its first epoch."""
    rates = [
        r["samples_per_s"] for r in read_metrics(run) if r.kind == "step" and r.epoch > 1 and r.get("samples_per_s")
    ]
    return float(statistics.median(rates))


def window_vs_headless(cfg: Config, epochs: int, tmp: Path) -> dict[str, Callable[[], float]]:
    cfg = with_overrides(cfg, [f"train.epochs={epochs}", "train.log_every=10"])
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    qInstallMessageHandler(lambda *_: None)
    from studio.ui.main_window import MainWindow

    def window() -> float:
        w = MainWindow(config=cfg, runs_dir=Path(tempfile.mkdtemp(dir=tmp)))
        w.show()
        state = {"started": False}

        def poll() -> None:
            if not state["started"]:
                if w._engine_ready:
                    w.train_button.click()
                    state["started"] = True
            elif not w.is_training:
                app.quit()

        timer = QTimer()
        timer.timeout.connect(poll)
        timer.start(20)
        app.exec()
        timer.stop()
        run = w.current_run_dir
        w.shutdown(30.0)
        w.close()
        w.deleteLater()
        return record_rate(run)

    def headless() -> float:
        run = Path(tempfile.mkdtemp(dir=tmp)) / "run"
        Trainer(cfg, run).fit()
        return record_rate(run)

    return {"window": window, "headless": headless}


# -- the run ----------------------------------------------------------------------------------------------


def alternate(sides: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            out[name].append(run())
    return out


def print_rates(title: str, got: dict[str, list[float]], width: int, ratio_name: str, goal: str) -> float:
    """Print each side's samples/s and the ratio of their medians (the first side over the second)."""
    first, second = (statistics.median(v) for v in got.values())
    ratio = first / second
    print(f"\n{title}")
    for k, v in got.items():
        print(f"   {k:{width}s} " + ", ".join(f"{s:,.0f}" for s in v))
    print(f"   {ratio_name}: {ratio:.3f}  ({goal})")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small settings (a CPU check of the script)")
    parser.add_argument("--target", type=float, default=None, help="test accuracy to reach (0.99; --quick 0.95)")
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="give up after this many epochs (the preset's; --quick 3)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="alternations of the two sides (3; --quick 1)")
    parser.add_argument("--skip", action="append", default=[], choices=["target", "resnet", "window"])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    quick = args.quick
    target = args.target if args.target is not None else (0.95 if quick else 0.99)
    max_epochs = args.max_epochs or (3 if quick else recipe("cpu").train.epochs)
    rounds = args.rounds or (1 if quick else 3)
    device = args.device
    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "CPU"
    print(f"device: {device} ({name}); torch {torch.__version__}; quick={quick}")
    tmp = Path(tempfile.mkdtemp(prefix="studio-gpu-bench-"))
    report: dict[str, Any] = {"device": device, "device_name": name, "torch": torch.__version__, "quick": quick}

    if "target" not in args.skip:
        cfg = recipe(device)
        bundle = load_data(cfg)
        warm = time_to_target(cfg, bundle, 2.0, 1, tmp)  # an unreachable target: one epoch of each, warm-up
        alternate(warm, 1)
        got = alternate(time_to_target(cfg, bundle, target, max_epochs, tmp), rounds)
        med = {k: statistics.median(t for _, t, _ in v) for k, v in got.items()}
        print(f"\n1. digits to {target:.0%} test accuracy ({cfg.model.arch}, batch {cfg.train.batch_size}, fp32)")
        for k, v in got.items():
            print(f"   {k:7s} " + "; ".join(f"epoch {e}, {t:.2f} s, acc {a:.4f}" for e, t, a in v))
        ratio = med["studio"] / med["bare"]
        print(
            f"   studio / bare time: {ratio:.3f}  (goal <= 1.1; studio median {med['studio']:.2f} s, goal < 2 s on a GPU)"
        )
        report["time_to_target"] = {"target": target, "arch": cfg.model.arch, "runs": got, "ratio": ratio}

    if "resnet" not in args.skip:
        # A plain recipe (Adam, constant rate): the preset's onecycle is tuned for the cnn on digits.
        cfg = with_overrides(
            Config(),
            [
                f'train.device="{device}"',
                'model.arch="resnet18"',
                "data.image_size=32",
                "data.channels=3",
                'train.precision="bf16"',
                f"train.batch_size={64 if quick else 256}",
                "train.log_every=50",
            ],
        )
        bundle = load_data(cfg)
        if quick:  # a CPU check of the script: a slice of the data
            bundle = dataclasses.replace(
                bundle,
                train=Split(bundle.train.x[:256], bundle.train.y[:256]),
                val=Split(bundle.val.x[:128], bundle.val.y[:128]),
                test=Split(bundle.test.x[:128], bundle.test.y[:128]),
            )
        epochs = 2 if quick else 4
        alternate(samples_per_s(cfg, bundle, 2, tmp), 1)  # warm-up
        got = alternate(samples_per_s(cfg, bundle, epochs, tmp), rounds)
        title = f"2. resnet18, 32 px RGB, bf16, batch {cfg.train.batch_size}: training samples/s (epochs 2-{epochs})"
        ratio = print_rates(title, got, 7, "studio / bare samples/s", "goal >= 0.91, i.e. within 1.1x")
        report["resnet18_bf16"] = {"runs": got, "ratio": ratio}

    if "window" not in args.skip:
        cfg = recipe(device)
        epochs = 2 if quick else 4
        got = alternate(window_vs_headless(cfg, epochs, tmp), rounds)
        title = f"3. the window (offscreen, app.exec) vs headless: samples/s of {cfg.model.arch}, epochs 2-{epochs}"
        ratio = print_rates(title, got, 8, "window / headless", "goal >= 0.95")
        report["window"] = {"runs": got, "ratio": ratio}

    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
