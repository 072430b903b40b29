"""What a fit trains with, built in one place (`build_training`), and how a checkpoint holds it.

The same set-up serves `studio train`, `studio resume`, the GUI and the LR finder, which all run
`Trainer.fit`, so the data, the seeding, the model's initialisation, the optimizer, the precision
and the batch sources of one are those of the others. `checkpoint_state` is everything last.pt
and best.pt hold; `check_resume` and `restore_checkpoint` take it back, refusing what does not fit.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.config import Config, config_from_dict
from studio.data import DataBundle, DataSpec, load_data
from studio.data.augment import build_augment
from studio.data.batch_sources import make_batches
from studio.data.batches import BatchSource
from studio.engine import checkpoint as ckpt
from studio.engine.device import cpu_threads, resolve_device
from studio.engine.evaluate import loss_scale
from studio.engine.loop_state import LoopState, RunningSums
from studio.engine.optim import build_loss, build_optimizer
from studio.errors import CheckpointError, ConfigError
from studio.models import StudioModel, build_model, head_name
from studio.models.memory import check_fits

Say = Callable[[str, str], None]  # (text, level): how the set-up tells the user something


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass
class TrainingSetup:
    """The pieces a fit trains with; built by `build_training`, never changed during the fit."""

    bundle: DataBundle
    device: torch.device
    model: StudioModel
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    amp_dtype: torch.dtype | None  # None: fp32
    scaler: torch.amp.GradScaler  # enabled for fp16 only
    train_src: BatchSource
    val_src: BatchSource | None
    test_src: BatchSource | None
    loss_scale: float  # reports a regression loss in the target's units

    @property
    def spec(self) -> DataSpec:
        return self.bundle.spec

    @property
    def classify(self) -> bool:
        return self.spec.task == "classification"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for the forward pass, or nothing (fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)


def build_training(
    config: Config,
    data: DataBundle | None = None,
    say: Say | None = None,
    device: torch.device | None = None,
    load_weights: bool = True,
) -> TrainingSetup:
    """Load (or take) the data and build the model, optimizer and batch sources, seeded by the config.

    Refuses, before anything trains, what cannot work: a device that is absent, a model that does
    not fit in memory (`check_fits`), a loss that does not fit the task.
    """
    cfg = config

    def tell(text: str, level: str) -> None:
        if say is not None:
            say(text, level)

    # First: an absent device (or a lost CUDA context) refuses at once. A DDP rank passes its own (cuda:LOCAL_RANK).
    device = device or resolve_device(cfg.train.device)
    seed_everything(cfg.seed)
    bundle = data or load_data(cfg)
    for warning in bundle.warnings:
        tell(warning, "warning")
    spec = bundle.spec
    if device.type == "cpu" and torch.get_num_threads() != cpu_threads():
        torch.set_num_threads(cpu_threads())  # see cpu_threads: one core stays free
    check_fits(cfg, spec, device)  # refuse, with the estimate, what the kernel would kill
    torch.manual_seed(cfg.seed)  # the same init whatever loading the data drew
    model = build_model(cfg.model, spec, load_weights).to(device)
    optimizer = build_optimizer(model, cfg.train, head_name(model, cfg.model))  # fine-tuning: per-part rates
    loss_fn = build_loss(cfg.train.loss, spec.task)
    amp_dtype = None
    if cfg.train.precision != "fp32":
        if device.type == "cuda":
            amp_dtype = torch.bfloat16 if cfg.train.precision == "bf16" else torch.float16
        else:
            tell(f"mixed precision ({cfg.train.precision}) needs CUDA; training in fp32", "warning")
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    workers = cfg.data.num_workers
    train_src = make_batches(bundle.train, device, build_augment(cfg, spec, device), workers)
    val_src = make_batches(bundle.val, device, None, workers) if len(bundle.val) else None
    test_src = make_batches(bundle.test, device, None, workers) if len(bundle.test) else None
    return TrainingSetup(
        bundle,
        device,
        model,
        optimizer,
        loss_fn,
        amp_dtype,
        scaler,
        train_src,
        val_src,
        test_src,
        loss_scale(cfg.train.loss, spec),
    )


def checkpoint_state(
    config: Config, setup: TrainingSetup, loop: LoopState, sums: RunningSums, elapsed: float
) -> dict[str, Any]:
    """Everything a checkpoint holds: weights, optimizer, scaler, the loop's state and sums, RNGs, config, spec."""
    return {
        "model": setup.model.state_dict(),
        "optimizer": setup.optimizer.state_dict(),
        "scheduler": {"kind": config.train.schedule, "base_lr": loop.base_lr},
        "scaler": setup.scaler.state_dict() if setup.scaler.is_enabled() else {},
        **loop.to_checkpoint(elapsed),
        "sums": sums.state_dict(),
        "rng": ckpt.rng_state(),
        "config": config.to_dict(),
        "spec": spec_dict(setup.spec),
    }


def restore_checkpoint(
    state: dict[str, Any], setup: TrainingSetup, loop: LoopState, sums: RunningSums, run_dir: Path
) -> None:
    """Put a checkpoint (already accepted by `check_resume`) back; what does not fit raises `CheckpointError`."""
    try:
        setup.model.load_state_dict(state["model"], strict=True)
        setup.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{run_dir}: checkpoint does not fit this model ({str(exc).splitlines()[0][:160]})"
        ) from None
    try:
        if state.get("scaler"):
            setup.scaler.load_state_dict(state["scaler"])
        loop.load_checkpoint(state)
        if state.get("sums") is not None:  # checkpoints before the sums were saved start them at zero
            sums.load_state_dict(state["sums"])
        ckpt.set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{run_dir}: checkpoint 'last.pt' is incomplete or damaged ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if not loop.is_possible():
        raise CheckpointError(f"{run_dir}: checkpoint 'last.pt' holds an impossible position")


def check_resume(config: Config, state: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Refuse a config the checkpoint cannot continue; return the live changes it asks for.

    The data, model and augmentation must be the same, and so must the optimizer's kind and
    settings (its state comes back from the checkpoint). A different rate or batch size is fine:
    it applies from the first step, as a live change recorded in metrics.jsonl.
    """
    try:
        saved = config_from_dict(state["config"])
    except (ConfigError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{run_dir}: the checkpoint's config is unreadable ({exc})") from None
    cfg = config
    if saved.seed != cfg.seed:
        raise CheckpointError(
            f"{run_dir}: seed is {cfg.seed} in the config but the run was trained with "
            f"{saved.seed}; resume needs the same seed (it decides the splits and the "
            "data order)"
        )
    for section in ("data", "model", "augment"):
        old, new = getattr(saved, section).__dict__, getattr(cfg, section).__dict__
        for key in old:
            if old[key] != new[key]:
                raise CheckpointError(
                    f"{run_dir}: [{section}] {key} is {toml_value(new[key])} in the config but the "
                    f"checkpoint was trained with {toml_value(old[key])}; resume needs the same data and "
                    "model (set it back, or start a new run with `studio train`)"
                )
    keys = ["optimizer", "weight_decay"] + (["momentum", "nesterov"] if saved.train.optimizer == "sgd" else [])
    for key in keys:
        old_value, new_value = getattr(saved.train, key), getattr(cfg.train, key)
        if old_value != new_value:
            raise CheckpointError(
                f"{run_dir}: [train] {key} is {toml_value(new_value)} in the config but the checkpoint's "
                f"optimizer state was trained with {toml_value(old_value)}; resume needs the same optimizer "
                f"settings (set it back to {toml_value(old_value)}, or start a new run with `studio train`)"
            )
    return {
        key: getattr(cfg.train, key)
        for key in ("lr", "batch_size")
        if getattr(saved.train, key) != getattr(cfg.train, key)
    }


def toml_value(value: Any) -> str:
    """A config value as a user writes it in config.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def spec_dict(spec: DataSpec) -> dict[str, Any]:
    """The data spec as a checkpoint holds it (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}
