"""Training-split augmentation, applied per batch on the training device."""

from __future__ import annotations

from typing import Callable

import torch

from studio.config import Config
from studio.data.base import DataSpec


def build_augment(config: Config, spec: DataSpec, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Return a batch transform for float images in [0, 1], or None when nothing is enabled."""
    a = config.augment
    if spec.kind != "image" or not (a.flip or a.translate or a.rotate or a.color_jitter):
        return None

    def flip(x: torch.Tensor) -> torch.Tensor:
        mask = torch.rand(x.shape[0], device=x.device) < 0.5
        return torch.where(mask[:, None, None, None], x.flip(-1), x)

    return flip if a.flip else None
