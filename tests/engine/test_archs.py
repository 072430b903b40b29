"""The cnn, vit and mobilenet_v3_small architectures, the stem by size, and the per-image cost."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from studio.config import ModelConfig, config_from_dict
from studio.data.base import DataSpec
from studio.errors import ConfigError
from studio.models import build_model
from studio.models.cost import describe_flops, flops_per_image
from studio.models.stem import stem_stride


def spec(c: int = 1, size: int = 28, k: int = 10, kind: str = "image") -> DataSpec:
    shape = (c, size, size) if kind == "image" else (c,)
    return DataSpec(
        "t", kind, "classification", shape, labels=tuple(str(i) for i in range(k)), mean=(0.5,) * c, std=(0.25,) * c
    )


def train_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 12) -> tuple[float, float]:
    """(first loss, last loss) of a few Adam steps on one small batch."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


TINY = {"cnn": {"widths": [8, 16]}, "vit": {"depth": 1, "dim": 16, "heads": 2}, "mobilenet_v3_small": {}}


@pytest.mark.parametrize("arch", list(TINY))
def test_each_new_architecture_learns_a_tiny_batch(arch: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 3, 16, 16)
    y = torch.arange(16) % 4
    x[y == 1, 0] += 0.5  # something to learn: the classes differ in a channel's brightness
    x[y == 2, 1] += 0.5
    x[y == 3, 2] += 0.5
    model = build_model(ModelConfig(arch=arch, **TINY[arch]), spec(3, 16, 4))  # type: ignore[arg-type]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as training does on a small machine (device.cpu_threads): tiny ops, no waiting
    try:
        first, last = train_steps(model, x, y)
    finally:
        torch.set_num_threads(threads)
    assert last < first * 0.7
    model.eval()
    assert model(x[:2]).shape == (2, 4)


def test_cnn_is_conv_bn_relu_stages_with_he_init() -> None:
    torch.manual_seed(0)
    net = build_model(ModelConfig(arch="cnn", widths=[32, 64, 128]), spec()).net
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 3
    for conv in convs[1:]:  # He (fan-out, ReLU gain): std = sqrt(2 / (out channels x kernel area))
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert float(conv.weight.detach().std()) == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.1)
        assert conv.bias is None  # batch norm's shift replaces it


def test_vit_takes_patch_size_depth_and_dim_from_the_config() -> None:
    cfg = ModelConfig(arch="vit", patch_size=7, depth=3, dim=48, heads=3)
    net = build_model(cfg, spec(1, 28)).net
    assert net.embed.kernel_size == (7, 7) and net.embed.out_channels == 48
    assert len(net.encoder.layers) == 3 and net.pos.shape == (1, 16, 48)
    auto = build_model(ModelConfig(arch="vit"), spec(3, 64)).net
    assert auto.embed.kernel_size == (8, 8)  # 64 px: 8x8 patches, 64 tokens
    odd = build_model(ModelConfig(arch="vit", patch_size=8, depth=1, dim=16, heads=2), spec(1, 28))
    odd.eval()
    assert odd(torch.rand(2, 1, 28, 28)).shape == (2, 10)  # 28 px padded to 32: 4x4 tokens
    assert odd.net.pos.shape[1] == 16


def test_vit_and_cnn_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="multiple of heads"):
        config_from_dict({"model": {"arch": "vit", "dim": 30, "heads": 4}})
    with pytest.raises(ConfigError, match="patch_size"):
        build_model(ModelConfig(arch="vit", patch_size=40), spec(1, 28))
    with pytest.raises(ConfigError, match="widths"):
        config_from_dict({"model": {"arch": "cnn", "widths": []}})
    with pytest.raises(ConfigError, match="depth must be >= 1"):
        config_from_dict({"model": {"arch": "vit", "depth": 0}})
    for arch in ("cnn", "vit", "mobilenet_v3_small"):
        with pytest.raises(ConfigError, match="needs image data"):
            build_model(ModelConfig(arch=arch), spec(4, kind="tabular"))
    with pytest.raises(ConfigError, match=r"imagenet.*resnet18"):
        config_from_dict({"model": {"arch": "lenet", "weights": "imagenet"}})


def test_the_stem_stride_follows_the_image_size() -> None:
    assert [stem_stride(s) for s in (16, 28, 32, 48, 64, 95, 96, 224)] == [1, 1, 1, 1, 2, 2, 4, 4]
    mid = build_model(ModelConfig(arch="resnet18"), spec(3, 64)).net
    assert mid.conv1.stride == (2, 2) and isinstance(mid.maxpool, nn.Identity)
    mobile = build_model(ModelConfig(arch="mobilenet_v3_small"), spec(1, 28)).net
    assert mobile.features[0][0].stride == (1, 1) and mobile.features[0][0].in_channels == 1
    assert build_model(ModelConfig(arch="mobilenet_v3_small"), spec(3, 224)).net.features[0][0].stride == (2, 2)


@pytest.mark.parametrize("arch", ["cnn", "resnet18", "mobilenet_v3_small", "vit"])
def test_a_64px_image_costs_at_most_4x_a_32px_one(arch: str) -> None:
    def cost(size: int) -> int:
        model = build_model(ModelConfig(arch=arch), spec(3, size, 3))
        return flops_per_image(model, spec(3, size, 3))

    small, large = cost(32), cost(64)
    assert small < large <= 4 * small  # it grows with the pixels, never 16x as a stride-1 stem did


def test_flops_are_counted_once_per_setup_and_described() -> None:
    cfg = ModelConfig(arch="lenet")
    s = spec()
    model = build_model(cfg, s)
    first = flops_per_image(model, s, cfg)
    conv1 = 2 * 6 * 28 * 28 * 25  # multiply-adds of LeNet's first convolution, counted as two FLOPs
    assert first > conv1
    assert flops_per_image(nn.Identity(), s, cfg) == first  # cached: the model is not run again
    assert model.training  # the count ran in eval mode and put the mode back
    vit_cfg = ModelConfig(arch="vit", depth=2, dim=32, heads=2)
    vit = build_model(vit_cfg, s)
    attention = 2 * 2 * 49 * 32 * 32 * 3  # 2 layers' q, k, v projections of 49 tokens: a lower bound
    assert flops_per_image(vit, s, vit_cfg) > attention  # the fused inference path would hide these
    assert describe_flops(1_820_000_000) == "1.8 GFLOPs/image"
    assert describe_flops(142_300_000) == "142 MFLOPs/image"
    assert describe_flops(830_000) == "830 kFLOPs/image"
    assert describe_flops(4) == "4 FLOPs/image"  # the line fit's linear model: not "0 kFLOPs"
