"""ResNet-18 from torchvision, adapted to the data's channels and to small images.

Inputs of 64 px or less get a 3x3 stride-1 stem and no max-pool (the CIFAR recipe: the ImageNet
stem would shrink a 28 px digit to 7 px before the first block); larger inputs keep the 7x7
stride-2 stem and max-pool, with the stem taking the data's channels.

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

SMALL_INPUT = 64  # px: at or below this, the 3x3 stem without max-pool
_PREFIXES = ("module.", "net.", "model.")
_STUDIO_WRAPPERS = ("input_norm.", "output_scale.")


def build_resnet18(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    """torchvision's resnet18 for this data's channels, size and classes (no weights loaded here)."""
    from torchvision.models import resnet18

    if spec.kind != "image":
        raise ConfigError("[model] arch 'resnet18' needs image data")
    c, h, w = spec.input_shape
    net = resnet18(weights=None, num_classes=spec.num_outputs)
    if max(h, w) <= SMALL_INPUT:
        net.conv1 = nn.Conv2d(c, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif c != 3:
        net.conv1 = nn.Conv2d(c, 64, kernel_size=7, stride=2, padding=3, bias=False)
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
