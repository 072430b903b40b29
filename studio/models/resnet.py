"""ResNet-18 from torchvision, adapted to the data's channels and to small images.

The stem follows the image size (`stem.stem_stride`): up to 48 px a 3x3 stride-1 stem and no
max-pool (the CIFAR recipe: the ImageNet stem would shrink a 28 px digit to 7 px before the first
block); up to 95 px the 7x7 stride-2 stem without the max-pool; from 96 px the full ImageNet stem.
The stem takes the data's channels.

`[model] weights` fine-tunes from a local state dict, loaded with `weights_only=True` (a file
that carries any other pickled object is refused) and strictly: every tensor must fit, except
the classifier head when the class count differs and the stem when its input channels or kernel
differ, which start fresh (a 3-channel stem of the same kernel is summed over its channels for
grayscale data, so an ImageNet stem still helps). A state dict saved by torchvision, one wrapped
as `{"model": ...}` or `{"state_dict": ...}`, one with `module.` (DataParallel) prefixes, and a
studio checkpoint (`checkpoints/best.pt`) all load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import CheckpointError, ConfigError
from studio.models.stem import stem_stride

_PREFIXES = ("module.", "net.", "model.")
_STUDIO_WRAPPERS = ("input_norm.", "output_scale.")


def build_resnet18(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    """torchvision's resnet18 for this data's channels, size and classes (no weights loaded here)."""
    if spec.kind != "image":
        raise ConfigError("[model] arch 'resnet18' needs image data")
    c, h, w = spec.input_shape
    return resnet18_for(c, max(h, w), spec.num_outputs)


def resnet18_for(channels: int, size: int, classes: int) -> nn.Module:
    """torchvision's resnet18 with the stem for `size` px (see `stem_stride`) and `channels` in."""
    from torchvision.models import resnet18

    net = resnet18(weights=None, num_classes=classes)
    stride = stem_stride(size)
    if stride == 1:
        net.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    elif channels != 3:
        net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if stride < 4:
        net.maxpool = nn.Identity()
    return net


def _unwrap(state: Any) -> dict[str, torch.Tensor]:
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("not a state dict of tensors")
    out = {}
    for key, value in state.items():
        if key.startswith(_STUDIO_WRAPPERS):
            continue
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        out[key] = value
    return out


def load_pretrained(net: nn.Module, path: Path) -> list[str]:
    """Load a local state dict into `net`, strictly and safely; returns what started fresh."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise CheckpointError(
            f"[model] weights '{path}': cannot load safely ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''})"
        ) from None
    try:
        state = _unwrap(raw)
    except ValueError:
        raise CheckpointError(f"[model] weights '{path}': not a state dict of tensors") from None
    own = net.state_dict()
    fresh: list[str] = []
    stem = state.get("conv1.weight")
    if stem is not None and stem.shape != own["conv1.weight"].shape:
        if (
            stem.shape[0] == own["conv1.weight"].shape[0]
            and stem.shape[2:] == own["conv1.weight"].shape[2:]
            and own["conv1.weight"].shape[1] == 1
        ):
            state["conv1.weight"] = stem.sum(dim=1, keepdim=True)
        else:
            state["conv1.weight"] = own["conv1.weight"]
            fresh.append("the stem (conv1)")
    for key in ("fc.weight", "fc.bias"):
        if key in state and key in own and state[key].shape != own[key].shape:
            state[key] = own[key]
            if "the classifier head (fc)" not in fresh:
                fresh.append("the classifier head (fc)")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"[model] weights '{path}' do not fit resnet18: {str(exc).strip().splitlines()[-1].strip()[:200]}"
        ) from None
    return fresh
