"""A fit's beginning and end, as plain functions the trainer calls: the set-up, the fit-start event and summary.json.

`prepare` refuses what cannot run and builds what the run trains with, before anything is
written; `fit_start` describes the run to the callbacks; `run_summary` is summary.json's content
on every ending. The loop itself (steps, epochs, commits) stays in `trainer.py`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

from studio.config import Config
from studio.data import DataBundle
from studio.engine import checkpoint as ckpt
from studio.engine.control import TrainingControl
from studio.engine.device import device_name
from studio.engine.distributed import SINGLE, Dist, check_split
from studio.engine.evaluate import REGRESSION_FIGURES
from studio.engine.events import FitStart, RunStatus
from studio.engine.loop_state import EpochMetrics, LoopState
from studio.engine.run_dir import RunDir
from studio.engine.training_setup import Say, TrainingSetup, build_training, check_resume
from studio.errors import CheckpointError
from studio.models import param_count, shape_summary


class Ending(NamedTuple):
    """How the loop ended: the status, the reason the user reads, and the error (for a failure)."""

    status: RunStatus
    reason: str | None = None
    error: str | None = None


class Prepared(NamedTuple):
    """What `prepare` built: the set-up, the checkpoint to resume from (or None) and the config's edits to it."""

    setup: TrainingSetup
    resume_state: dict[str, Any] | None
    resume_edits: dict[str, Any]


def prepare(
    config: Config, data: DataBundle | None, files: RunDir | None, resume: bool, say: Say, ctx: Dist = SINGLE
) -> Prepared:
    """Refuse what cannot run, then build what the run trains with; nothing is written here."""
    if files is not None and not resume and files.has_checkpoint("last"):
        raise CheckpointError(f"'{files.path}' already holds a run; resume it or choose another folder")
    resume_state, edits = None, {}
    if files is not None and resume:
        resume_state = ckpt.load_checkpoint(files.checkpoint("last"))
        edits = check_resume(config, resume_state, files.path)
    # A resumed run's weights come from its checkpoint: no pretrained file (or download) is needed.
    setup = build_training(
        config, data, say=say, device=ctx.device(config.train.device), load_weights=resume_state is None
    )
    check_split(len(setup.bundle.train), config.train.batch_size, ctx.world_size)
    if resume_state is not None and ctx.is_main:
        was = int(resume_state.get("world_size", 1) or 1)
        if was != ctx.world_size:
            say(
                f"this run trained with {was} process(es) and continues with {ctx.world_size}: "
                "it continues from the same step and data order, but not bit for bit",
                "warning",
            )
    return Prepared(setup, resume_state, edits)


def apply_resume_edits(edits: dict[str, Any], control: TrainingControl, state: LoopState) -> list[str]:
    """Queue config.toml's edited rate or batch size as live changes for the first step; the lines that say so."""
    lines = []
    for key, value in edits.items():
        (control.set_lr if key == "lr" else control.set_batch_size)(value)
        lines.append(
            f"config.toml sets [train] {key} = {value:g}; the run was at "
            f"{state.base_lr if key == 'lr' else state.batch_size:g}: applied from step "
            f"{state.step + 1} and recorded in metrics.jsonl"
        )
    return lines


def fit_start(
    config: Config, setup: TrainingSetup, state: LoopState, run_dir: Path | None, resumed: bool
) -> tuple[FitStart, list[str]]:
    """The fit_start event and the lines that introduce the run in the log."""
    model, spec, bundle = setup.model, setup.spec, setup.bundle
    params, shapes = param_count(model), shape_summary(model, spec)
    event = FitStart(
        run_dir=str(run_dir or ""),
        epochs=config.train.epochs,
        start_epoch=state.epoch + 1,
        device=str(setup.device),
        device_name=device_name(setup.device),
        task=spec.task,
        labels=spec.labels,
        param_count=params,
        model_summary=shapes,
        num_train=len(bundle.train),
        num_val=len(bundle.val),
        num_test=len(bundle.test),
        resumed=resumed,
        step=state.step,
    )
    where = f"run directory {run_dir}" if run_dir is not None else "nothing is saved (no run directory)"
    lines = [
        bundle.summary(),
        f"model {config.model.arch}: {params:,} parameters; {shapes}",
        f"device {device_name(setup.device)}; {where}",
    ]
    return event, lines


def run_summary(
    config: Config,
    state: LoopState,
    ending: Ending,
    test: EpochMetrics,
    elapsed: float,
    world_size: int = 1,
    checkpoint: str = "last",
) -> dict[str, Any]:
    """summary.json's content: how the run ended, its last metrics, its best epoch.

    `checkpoint` names the weights the test figures come from (`headline.headline_checkpoint`);
    regression adds `train_rmse`, `val_rmse`, `val_mae`, `val_r2`, `test_rmse`, ... beside the losses.
    """
    m = state.last_metrics
    return {
        "status": ending.status.value,
        "reason": ending.reason,
        "epochs_completed": state.epoch,
        "metrics": {k: m.get(k) for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")}
        | {k: v for k, v in m.items() if k.rsplit("_", 1)[-1] in REGRESSION_FIGURES}
        | {f"test_{k}": v for k, v in test.items()},
        "checkpoint": checkpoint,
        "best": {
            "epoch": state.best_epoch,
            "val_loss": state.best_loss if math.isfinite(state.best_loss) else None,
        },
        "error": ending.error,
        "step": state.step,
        "time": round(elapsed, 3),
        "config": config.to_dict(),
        "world_size": world_size,
    }
