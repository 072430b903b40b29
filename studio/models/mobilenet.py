"""`mobilenet_v3_small` from torchvision, adapted to the data's channels and to small images.

MobileNetV3-Small shrinks an image 32x (224 px ends at 7 px), which leaves nothing of a 28 px
digit. The stem follows the size (`stem.stem_stride`): small images keep the first two stride-2
layers at stride 1 (/8 in all), mid-sized ones the first (/16), large ones the ImageNet layout.
Strides change no weight's shape, so ImageNet weights load into every variant.
"""

from __future__ import annotations

from torch import nn

from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import ConfigError
from studio.models.stem import stem_stride

HEAD = "classifier"  # the module a pretrained model gets fresh (its last layer) and trains first


def build_mobilenet_v3_small(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    if spec.kind != "image":
        raise ConfigError("[model] arch 'mobilenet_v3_small' needs image data")
    c, h, w = spec.input_shape
    return mobilenet_for(c, max(h, w), spec.num_outputs, cfg.dropout)


def mobilenet_for(channels: int, size: int, classes: int, dropout: float = 0.2) -> nn.Module:
    """torchvision's MobileNetV3-Small for `channels` in, `classes` out, strided for `size` px."""
    from torchvision.models import mobilenet_v3_small

    net = mobilenet_v3_small(weights=None, num_classes=classes, dropout=dropout)
    first: nn.Conv2d = net.features[0][0]
    if channels != 3:
        net.features[0][0] = first = nn.Conv2d(channels, first.out_channels, 3, 2, 1, bias=False)
    stride = stem_stride(size)
    if stride < 4:
        first.stride = (1, 1)
    if stride < 2:
        depthwise: nn.Conv2d = net.features[1].block[0][0]
        depthwise.stride = (1, 1)
    return net
