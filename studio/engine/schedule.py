"""Learning-rate schedules as pure functions of progress in epochs.

Progress is measured in (fractional) epochs rather than steps, so a live batch-size change
does not warp the schedule; a live learning-rate change replaces the base rate.

The loop asks a `Schedule` for each optimizer step's rate: the config's (`ConfigSchedule`), or a
tool's that runs on the loop (the LR finder's exponential sweep).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from studio.config import TrainConfig


class Schedule(Protocol):
    """The rate of optimizer step `step` (1-based), `progress` epochs into the run, from `base_lr`."""

    def __call__(self, step: int, progress: float, base_lr: float) -> float: ...


@dataclass(frozen=True)
class ConfigSchedule:
    """The schedule a run's config asks for ([train] schedule, warmup_epochs, step_size, gamma)."""

    train: TrainConfig

    def __call__(self, step: int, progress: float, base_lr: float) -> float:
        t = self.train
        return base_lr * lr_factor(
            t.schedule, progress, t.epochs, warmup_epochs=t.warmup_epochs, step_size=t.step_size, gamma=t.gamma
        )


def lr_factor(
    kind: str,
    progress: float,
    total_epochs: int,
    *,
    warmup_epochs: float = 0.0,
    step_size: int = 10,
    gamma: float = 0.1,
) -> float:
    """Multiplier on the base rate after `progress` epochs of `total_epochs`."""
    total = max(float(total_epochs), 1e-9)
    frac = min(max(progress / total, 0.0), 1.0)
    if kind == "none":
        factor = 1.0
    elif kind == "step":
        factor = gamma ** int(progress // step_size)
    elif kind == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * frac))
    elif kind == "onecycle":
        # torch's OneCycleLR shape: cosine up from 1/25 over 30%, then down to 1/(25*1e4).
        peak, start, end = 0.3, 1 / 25, 1 / 25e4
        if frac < peak:
            factor = start + (1 - start) * 0.5 * (1 - math.cos(math.pi * frac / peak))
        else:
            factor = end + (1 - end) * 0.5 * (1 + math.cos(math.pi * (frac - peak) / (1 - peak)))
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    if warmup_epochs > 0 and progress < warmup_epochs and kind != "onecycle":
        factor *= 0.1 + 0.9 * progress / warmup_epochs
    return factor
