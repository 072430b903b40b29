"""`cnn`: a few conv-BN-ReLU stages with He initialisation, the fast small-image recipe.

Each stage is a 3x3 convolution, batch norm and ReLU, then a 2x2 max-pool that halves the size
(stages whose input is already 2 px or less skip the pool); global average pooling and one linear
layer classify. Batch norm lets the rate be high and He (Kaiming) initialisation keeps the
activations' scale through the ReLUs, so it trains in a few epochs (David Page's DAWNBench CIFAR
network and the fast.ai course's `conv_layer` stacks are the models). Large images first pass a
stride-2 or stride-4 stem (`stem.stem_stride`), so the cost per image grows with the pixels.
"""

from __future__ import annotations

from torch import nn

from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import ConfigError
from studio.models.stem import stem_stride


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def build_cnn(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    """The conv-BN-ReLU stack of `cfg.widths` for this data, He-initialised."""
    if spec.kind != "image":
        raise ConfigError("[model] arch 'cnn' needs image data; use mlp or linear for CSV data")
    c, h, w = spec.input_shape
    size = max(h, w)
    layers: list[nn.Module] = []
    stride = stem_stride(size)
    if stride > 1:  # a strided first convolution, so a large image costs what its content needs
        layers.append(conv_bn_relu(c, cfg.widths[0], stride=stride))
        c, size = cfg.widths[0], -(-size // stride)
    for width in cfg.widths:
        layers.append(conv_bn_relu(c, width))
        if size > 2:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            size = -(-size // 2)
        c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    layers.append(nn.Linear(c, spec.num_outputs))
    net = nn.Sequential(*layers)
    he_init(net)
    return net


def he_init(net: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out, for ReLU), unit batch norms, zero biases."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
