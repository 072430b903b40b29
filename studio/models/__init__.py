"""Architecture registry and init schemes.

Every model is a `StudioModel`: an input layer that normalises raw values with the training
split's statistics (and fills blank CSV cells with the training mean), the network, and for
regression an output layer that maps standardised predictions back to the target's units.
Because those live inside the module, an exported model takes raw values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn

from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import ConfigError


class InputNorm(nn.Module):
    """(x - mean) / std per channel or feature; NaN features become the mean (i.e. 0 after scaling)."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], image: bool) -> None:
        super().__init__()
        shape = (1, -1, 1, 1) if image else (1, -1)
        self.image = image
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if not self.image:
            x = torch.nan_to_num(x, nan=0.0)
        return x


class OutputScale(nn.Module):
    """y * std + mean: the network learns standardised targets, the module returns real units."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


class StudioModel(nn.Module):
    """Input normalisation, the network, and (regression) the output scale, as one module."""

    def __init__(self, net: nn.Module, spec: DataSpec) -> None:
        super().__init__()
        self.input_norm = InputNorm(spec.mean, spec.std, spec.kind == "image")
        self.net = net
        self.output_scale = OutputScale(spec.target_mean, spec.target_std) if spec.task == "regression" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.input_norm(x))
        return self.output_scale(out) if self.output_scale is not None else out


def _flat(spec: DataSpec) -> int:
    return math.prod(spec.input_shape)


def build_softmax(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(_flat(spec), spec.num_outputs))


def build_linear(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(_flat(spec), spec.num_outputs))


def build_mlp(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = _flat(spec)
    for h in cfg.hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = h
    layers.append(nn.Linear(width, spec.num_outputs))
    return nn.Sequential(*layers)


def build_lenet(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    """LeNet-5 (ReLU and max-pool) for any image size: padding keeps tiny inputs alive."""
    if spec.kind != "image":
        raise ConfigError("[model] arch 'lenet' needs image data; use mlp or linear for CSV data")
    c, h, w = spec.input_shape
    pad2 = 0 if min(h, w) // 2 >= 9 else 2
    features = nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=pad2),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = features(torch.zeros(1, c, h, w)).shape[1]
    layers: list[nn.Module] = [features, nn.Linear(flat, 120), nn.ReLU()]
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    layers += [nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, spec.num_outputs)]
    return nn.Sequential(*layers)


def build_resnet18(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    from studio.models.resnet import build_resnet18 as build

    return build(cfg, spec)


def build_cnn(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    from studio.models.cnn import build_cnn as build

    return build(cfg, spec)


def build_vit(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    from studio.models.vit import build_vit as build

    return build(cfg, spec)


def build_mobilenet_v3_small(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    from studio.models.mobilenet import build_mobilenet_v3_small as build

    return build(cfg, spec)


ARCHITECTURES: dict[str, Callable[[ModelConfig, DataSpec], nn.Module]] = {
    "softmax": build_softmax,
    "mlp": build_mlp,
    "lenet": build_lenet,
    "cnn": build_cnn,
    "resnet18": build_resnet18,
    "mobilenet_v3_small": build_mobilenet_v3_small,
    "vit": build_vit,
    "linear": build_linear,
}
IMAGE_ONLY = ("lenet", "cnn", "resnet18", "mobilenet_v3_small", "vit")


def init_weights(module: nn.Module, scheme: str) -> None:
    """Re-initialise conv and linear weights (`default` keeps PyTorch's); biases start at zero."""
    if scheme == "default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(m.weight)
            else:
                raise ConfigError(f"[model] init: unknown scheme {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_model(cfg: ModelConfig, spec: DataSpec, load_weights: bool = True) -> StudioModel:
    """Build the configured architecture for this data, initialised per `cfg.init`.

    `load_weights=False` skips reading (or downloading) `[model] weights`: for a model whose
    weights come from a checkpoint next, or one built only to be measured.
    """
    if spec.task == "regression" and cfg.arch == "softmax":
        raise ConfigError("[model] arch 'softmax' is for classification; use linear or mlp for regression")
    if spec.kind == "tabular" and cfg.arch in IMAGE_ONLY:
        raise ConfigError(f"[model] arch '{cfg.arch}' needs image data; use mlp or linear for CSV data")
    if cfg.weights == "imagenet":
        return _build_imagenet(cfg, spec, load_weights)
    net = ARCHITECTURES[cfg.arch](cfg, spec)
    init_weights(net, cfg.init)
    if cfg.weights:  # after the init, so fine-tuning starts from the loaded weights
        if cfg.arch != "resnet18":
            raise ConfigError(f"[model] weights: loading a local file is for resnet18, not '{cfg.arch}'")
        from pathlib import Path

        from studio.models.resnet import load_pretrained

        if load_weights:
            load_pretrained(net, Path(cfg.weights).expanduser())
    return StudioModel(net, spec)


def _build_imagenet(cfg: ModelConfig, spec: DataSpec, load_weights: bool) -> StudioModel:
    """torchvision's ImageNet model behind the preprocessing its weights expect (see `pretrained`)."""
    from studio.models.pretrained import HEADS, build_pretrained, load_imagenet

    if cfg.arch not in HEADS:
        raise ConfigError(f"[model] weights = \"imagenet\" is for {' and '.join(HEADS)}, not '{cfg.arch}'")
    if spec.kind != "image":
        raise ConfigError(f"[model] arch '{cfg.arch}' needs image data")
    c, h, w = spec.input_shape
    net = build_pretrained(cfg.arch, c, h, w, spec.num_outputs, cfg.dropout)
    init_weights(net, cfg.init)
    if load_weights:
        load_imagenet(net.backbone, cfg.arch)
    # The model normalises with ImageNet's statistics inside `net`; the data's own would undo them.
    return StudioModel(net, dataclasses.replace(spec, mean=(0.0,) * c, std=(1.0,) * c))


def head_name(model: nn.Module, cfg: ModelConfig) -> str | None:
    """The module (a `named_modules` name) that fine-tuning trains first; None without pretrained weights."""
    from studio.models.pretrained import HEADS, PretrainedNet

    if isinstance(model.net, PretrainedNet):
        return f"net.{model.net.head_name}"
    if cfg.weights and cfg.arch in HEADS:
        return f"net.{HEADS[cfg.arch]}"
    return None


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shape_summary(model: StudioModel, spec: DataSpec) -> str:
    """One line: input shape, each top-level layer's output shape, and the output."""
    x = torch.zeros(1, *spec.input_shape)
    parts = ["x".join(map(str, spec.input_shape))]
    net = model.net
    was_training = model.training
    model.eval()
    with torch.no_grad():
        h = model.input_norm(x)
        layers = list(net) if isinstance(net, nn.Sequential) else [net]
        for layer in layers:
            h = layer(h)
            if not isinstance(layer, (nn.ReLU, nn.Dropout)):
                parts.append(f"{type(layer).__name__}→{'x'.join(map(str, h.shape[1:]))}")
    model.train(was_training)
    return " | ".join(parts)
