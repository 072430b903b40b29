"""Training on CUDA: every registered architecture, mixed precision, exact resume, memory records, the loader path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from studio.config import Config, with_overrides
from studio.engine.callbacks import Callback
from studio.engine.checkpoint import load_checkpoint
from studio.engine.control import TrainingControl
from studio.engine.run_dir import read_metrics
from studio.engine.trainer import Trainer
from studio.models import ARCHITECTURES

pytestmark = pytest.mark.cuda


def config(*overrides: str) -> Config:
    return with_overrides(Config(), ['train.device="cuda"', "train.epochs=1", *overrides])


class Probe(Callback):
    """What the run trained on, seen from inside the fit."""

    def __init__(self) -> None:
        self.device = ""
        self.params_on: set[str] = set()
        self.data_on: str | None = None

    def on_fit_start(self, trainer: Trainer, event: Any) -> None:
        assert trainer.model is not None
        self.device = event.device
        self.params_on = {p.device.type for p in trainer.model.parameters()}
        x = getattr(trainer.setup.train_src, "x", None) if trainer.setup is not None else None
        self.data_on = x.device.type if isinstance(x, torch.Tensor) else None


def steps_of(run: Path) -> list[Any]:
    return [r for r in read_metrics(run) if r.kind == "step"]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_trains_on_cuda(tmp_path: Path, arch: str) -> None:
    source = "linear" if arch == "linear" else "digits"
    probe = Probe()
    run = tmp_path / "run"
    summary = Trainer(config(f'model.arch="{arch}"', f'data.source="{source}"'), run, callbacks=[probe]).fit()
    assert summary["status"] == "completed", summary["error"]
    assert probe.device.startswith("cuda") and probe.params_on == {"cuda"}
    assert probe.data_on == "cuda"  # the in-memory split moved to the GPU once
    steps = steps_of(run)
    if len(steps) > 1:  # the small line data set takes a single step record
        assert steps[-1]["loss"] < steps[0]["loss"], "the loss did not fall in one epoch"
    assert summary["metrics"]["val_loss"] is not None and summary["metrics"]["val_loss"] < float("inf")
    for r in steps:  # the memory fields of metrics.jsonl, on every step record
        assert isinstance(r["cuda_memory_allocated"], int) and r["cuda_memory_allocated"] > 0
        assert r["cuda_memory_reserved"] >= r["cuda_memory_allocated"]


def test_lenet_learns_the_digits_on_cuda(tmp_path: Path) -> None:
    summary = Trainer(config('model.arch="lenet"', "train.epochs=4"), tmp_path / "run").fit()
    assert summary["metrics"]["test_accuracy"] >= 0.95  # 0.966 on the CPU with the same seed


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_the_scaler_is_in_the_checkpoint(tmp_path: Path, precision: str) -> None:
    run = tmp_path / "run"
    summary = Trainer(config('model.arch="lenet"', f'train.precision="{precision}"'), run).fit()
    assert summary["status"] == "completed" and summary["metrics"]["val_accuracy"] >= 0.8  # 0.86 in fp32 on the CPU
    scaler = load_checkpoint(run / "checkpoints" / "last.pt")["scaler"]
    if precision == "fp16":
        assert scaler["scale"] > 0 and set(scaler) >= {"scale", "growth_factor", "_growth_tracker"}
    else:  # bf16 needs no scaler: GradScaler(enabled=False) saves nothing
        assert scaler == {}


class StopAt(Callback):
    def __init__(self, step: int, control: TrainingControl) -> None:
        self.step, self.control = step, control

    def on_step_end(self, trainer: Trainer, event: Any) -> None:
        if event.step >= self.step:
            self.control.stop()


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_resume_after_a_stop_continues_exactly(tmp_path: Path, precision: str, deterministic: None) -> None:
    # Dropout and flips draw from both generators (CUDA and CPU) every step; log_every=5 stops mid-epoch.
    c = config(
        'model.arch="lenet"',
        "model.dropout=0.2",
        "augment.flip=true",
        "train.epochs=2",
        "train.log_every=5",
        f'train.precision="{precision}"',
    )
    reference, stopped = tmp_path / "reference", tmp_path / "stopped"
    Trainer(c, reference).fit()
    control = TrainingControl()
    assert Trainer(c, stopped, callbacks=[StopAt(135, control)], control=control).fit()["status"] == "stopped"
    saved = load_checkpoint(stopped / "checkpoints" / "last.pt")
    assert saved["epoch"] == 1 and saved["pos"] > 0  # mid-epoch, so the position and sums are resumed too
    if precision == "fp16":
        assert saved["scaler"]["scale"] > 0
    Trainer(c, stopped, resume=True).fit()
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (reference, stopped))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["scaler"] == b["scaler"]
    drop = ("time", "samples_per_s", "cuda_memory_allocated", "cuda_memory_reserved")
    strip = lambda run: [{k: v for k, v in dict(r).items() if k not in drop} for r in read_metrics(run)]  # noqa: E731
    assert strip(stopped) == strip(reference)
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (reference, stopped))
    assert sa["metrics"] == sb["metrics"]


def test_cuda_n_selects_that_device(tmp_path: Path) -> None:
    last = torch.cuda.device_count() - 1
    probe = Probe()
    Trainer(config(f'train.device="cuda:{last}"', 'model.arch="mlp"'), tmp_path / "run", callbacks=[probe]).fit()
    assert probe.device == f"cuda:{last}"


def test_the_loader_path_feeds_the_gpu(tmp_path: Path) -> None:
    from tests.data.image_files import write_digit_folder

    root = tmp_path / "digits"
    write_digit_folder(root, per_class=40)
    c = config(
        'data.source="folder"',
        f'data.path="{root.as_posix()}"',
        "data.memory_budget_mb=0",  # over the budget: DataLoader workers decode, pinned, to the GPU
        "data.num_workers=2",
        'model.arch="lenet"',
        "augment.translate=0.1",
    )
    probe = Probe()
    summary = Trainer(c, tmp_path / "run", callbacks=[probe]).fit()
    assert summary["status"] == "completed" and probe.params_on == {"cuda"}
    assert probe.data_on is None  # the files stay on disk; batches come through the loader
