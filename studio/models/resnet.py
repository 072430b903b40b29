"""ResNet-18 from torchvision, adapted to the data's channels and to small images."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import CheckpointError, ConfigError


def build_resnet18(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    """torchvision's resnet18; inputs of 64 px or less get a 3x3 stride-1 stem and no max-pool."""
    from torchvision.models import resnet18

    if spec.kind != "image":
        raise ConfigError("[model] arch 'resnet18' needs image data")
    c, h, w = spec.input_shape
    net = resnet18(weights=None, num_classes=spec.num_outputs)
    if max(h, w) <= 64:
        net.conv1 = nn.Conv2d(c, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif c != 3:
        net.conv1 = nn.Conv2d(c, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if cfg.weights:
        load_pretrained(net, Path(cfg.weights).expanduser())
    return net


def load_pretrained(net: nn.Module, path: Path) -> None:
    """Load a local state dict strictly and safely; the classifier head may differ in size."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise CheckpointError(f"[model] weights '{path}': cannot load safely ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160]})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"[model] weights '{path}': not a state dict")
    own = net.state_dict()
    # A new head (fine-tuning to other classes) or stem (other channels) starts fresh.
    for key in ("fc.weight", "fc.bias", "conv1.weight"):
        if key in state and key in own and state[key].shape != own[key].shape:
            state[key] = own[key]
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"[model] weights '{path}' do not fit resnet18: "
                              f"{str(exc).splitlines()[0][:200]}") from None
