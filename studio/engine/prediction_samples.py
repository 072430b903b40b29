"""A fixed handful of validation images and what the model says about them, after every epoch.

The GUI shows them as a small grid with the wrong ones marked, so a person sees the model learn
(and which digits stay hard) while it trains. The callback runs in the training thread and hands
out `PredictionSamples`: numpy images and plain tuples, never tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from studio.data.images import take_images
from studio.engine.callbacks import Callback


@dataclass(frozen=True)
class PredictionSamples:
    """One epoch's predictions for the watched validation samples."""

    epoch: int
    images: np.ndarray  # uint8 [N, C, H, W]
    true: tuple[int, ...]
    pred: tuple[int, ...]
    confidence: tuple[float, ...]  # probability of the predicted class
    labels: tuple[str, ...]

    @property
    def wrong(self) -> tuple[bool, ...]:
        return tuple(t != p for t, p in zip(self.true, self.pred, strict=True))


def pick_watch_indices(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """`count` sample positions taken round-robin over the classes, so every class shows up."""
    gen = torch.Generator().manual_seed(seed)
    labels = labels.long().cpu()
    pools = [
        idx[torch.randperm(len(idx), generator=gen)].tolist()
        for c in torch.unique(labels)
        for idx in [torch.nonzero(labels == c, as_tuple=True)[0]]
    ]
    picked: list[int] = []
    while len(picked) < count and any(pools):
        for pool in pools:
            if pool and len(picked) < count:
                picked.append(pool.pop())
    return torch.tensor(picked, dtype=torch.long)


@torch.inference_mode()
def predict_samples(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: tuple[str, ...],
    epoch: int,
    device: torch.device | str = "cpu",
) -> PredictionSamples:
    """Run `model` on uint8 images [N, C, H, W] and package the answers as plain data."""
    was_training = model.training
    model.eval()
    try:
        out = model(images.to(device).float().div_(255.0)).float()
    finally:
        model.train(was_training)
    probs = torch.softmax(out, dim=1).cpu()
    conf, pred = probs.max(dim=1)
    return PredictionSamples(
        epoch,
        images.cpu().numpy(),
        tuple(int(v) for v in labels.tolist()),
        tuple(int(v) for v in pred.tolist()),
        tuple(float(v) for v in conf.tolist()),
        tuple(class_names),
    )


class ValidationSamples(Callback):
    """After each epoch, predict a fixed set of validation images and pass them to `on_samples`.

    Only for image classification; for other data it does nothing.
    """

    def __init__(self, on_samples: Callable[[PredictionSamples], None], count: int = 24) -> None:
        self.on_samples = on_samples
        self.count = count
        self._images: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    def on_fit_start(self, trainer: Any, event: Any) -> None:
        spec, val = trainer.spec, trainer.bundle.val
        self._images = self._labels = None
        if spec.kind != "image" or spec.task != "classification" or len(val) == 0:
            return
        idx = pick_watch_indices(val.y, self.count, trainer.config.seed)
        self._images, self._labels = take_images(val.x, idx).clone(), val.y[idx].clone()

    def on_epoch_end(self, trainer: Any, event: Any) -> None:
        if self._images is None or self._labels is None or trainer.model is None:
            return
        self.on_samples(
            predict_samples(trainer.model, self._images, self._labels, trainer.spec.labels, event.epoch, trainer.device)
        )
