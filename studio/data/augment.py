"""Training-split augmentation, applied per batch on the training device.

The batch sources call the transform on float images in [0, 1] right after the uint8 -> float
conversion, for the training split only (evaluation asks for `augment=False`), so val and test
are never augmented. Everything is a handful of batched tensor ops with per-sample random
amounts drawn on the CPU (one `grid_sample` for flip, shift and rotation together), so on a
GPU it costs little next to a training step; `benchmarks/augment_cost.py` measures it.

- `flip`: mirror half of the images left-right (off by default: mirrored digits and text are
  different symbols);
- `translate`: shift by whole pixels, up to this fraction of the size each way: a random crop
  of an image padded by that much, as torchvision's `RandomCrop(padding=...)`;
- `rotate`: rotate by up to this many degrees either way;
- `fill`: what shows where a shift or rotation uncovers the image: zeros (black), border
  (repeat the edge pixels) or reflection;
- `color_jitter`: scale brightness, contrast and (RGB only) saturation by random factors in
  [1 - s, 1 + s]; grayscale images get brightness and contrast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from studio.config import AugmentConfig, Config
from studio.data.base import DataSpec

Transform = Callable[[torch.Tensor], torch.Tensor]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's convert("L") and torchvision's Grayscale


def random_flip(x: torch.Tensor) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = (torch.rand(x.shape[0]) < 0.5).to(x.device, non_blocking=True)
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def random_affine(
    x: torch.Tensor, translate: float, rotate: float, fill: str = "zeros", flip: bool = False
) -> torch.Tensor:
    """Shift each image by whole pixels (up to `translate` of its size), rotate it (up to `rotate`
    degrees) and, with `flip`, mirror half of them: one `grid_sample` for all three.

    The per-image amounts are drawn on the CPU and copied over once: a few dozen numbers, where
    drawing them on a GPU would launch a dozen tiny kernels per batch.
    """
    n, _, h, w = x.shape
    angle = (torch.rand(n) * 2 - 1) * math.radians(rotate) if rotate > 0 else torch.zeros(n)
    cos, sin = angle.cos(), angle.sin()
    mirror = torch.where(torch.rand(n) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = mirror * cos, -mirror * sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    if translate > 0:
        # Whole pixels, so a pure shift copies pixels exactly (no blur), like a padded random crop.
        for axis, size in ((0, w), (1, h)):
            most = round(translate * size)
            if most > 0:
                theta[:, axis, 2] = torch.randint(-most, most + 1, (n,)).float() * 2.0 / size
    theta = theta.to(device=x.device, dtype=x.dtype, non_blocking=True)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=fill, align_corners=False)


def color_jitter(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Random brightness, contrast and (RGB) saturation factors in [1 - s, 1 + s] per image."""
    n, c = x.shape[:2]
    factors = (1.0 + (torch.rand(3, n, 1, 1, 1) * 2 - 1) * strength).clamp_min(0)
    brightness, contrast, saturation = factors.to(device=x.device, dtype=x.dtype, non_blocking=True)
    x = x * brightness
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = torch.lerp(mean, x, contrast)
    if c == 3:
        gray = _gray(x)
        x = torch.lerp(gray, x, saturation)
    return x.clamp_(0.0, 1.0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x
    r, g, b = _LUMA
    return x[:, 0:1] * r + x[:, 1:2] * g + x[:, 2:3] * b


class BatchAugment:
    """The enabled transforms in a fixed order; called on a float batch on the training device."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.steps: list[Transform] = []
        if cfg.translate > 0 or cfg.rotate > 0:  # the flip rides along in the same resampling
            self.steps.append(lambda x: random_affine(x, cfg.translate, cfg.rotate, cfg.fill, cfg.flip))
        elif cfg.flip:
            self.steps.append(random_flip)
        if cfg.color_jitter > 0:
            self.steps.append(lambda x: color_jitter(x, cfg.color_jitter))

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for step in self.steps:
                x = step(x)
        return x

    def __repr__(self) -> str:
        c = self.cfg
        parts = [
            p
            for p, on in (
                ("flip", c.flip),
                (f"translate {c.translate:g}", c.translate),
                (f"rotate {c.rotate:g}°", c.rotate),
                (f"color jitter {c.color_jitter:g}", c.color_jitter),
            )
            if on
        ]
        return f"BatchAugment({', '.join(parts)})"


def build_augment(config: Config, spec: DataSpec, device: torch.device | None = None) -> BatchAugment | None:
    """The training transform for float images in [0, 1], or None when nothing is enabled (or not images)."""
    if spec.kind != "image":
        return None
    augment = BatchAugment(config.augment)
    return augment if augment else None
