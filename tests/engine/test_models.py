"""ResNet-18 adapted to small images and any channels, safe weight loading, and the init schemes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import CheckpointError, ConfigError
from studio.models import build_model, init_weights


def spec(c: int = 1, size: int = 28, k: int = 10) -> DataSpec:
    return DataSpec(
        "digits",
        "image",
        "classification",
        (c, size, size),
        labels=tuple(str(i) for i in range(k)),
        mean=(0.5,) * c,
        std=(0.25,) * c,
    )


def resnet(c: int, size: int, k: int = 10, **cfg: object) -> nn.Module:
    return build_model(ModelConfig(arch="resnet18", **cfg), spec(c, size, k))


@pytest.mark.parametrize("c", [1, 3])
def test_small_inputs_get_a_3x3_stem_and_no_max_pool(c: int) -> None:
    model = resnet(c, 16)
    net = model.net
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.in_channels == c
    assert isinstance(net.maxpool, nn.Identity)
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, c, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("c", [1, 3])
def test_large_inputs_keep_the_imagenet_stem_with_the_datas_channels(c: int) -> None:
    net = resnet(c, 96, k=4).net
    assert net.conv1.kernel_size == (7, 7) and net.conv1.stride == (2, 2) and net.conv1.in_channels == c
    assert isinstance(net.maxpool, nn.MaxPool2d)
    assert net.fc.out_features == 4


def _imagenet_like(path: Path, wrap: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict shaped like torchvision's ImageNet resnet18 (3 channels, 7x7 stem, 1000 classes)."""
    from torchvision.models import resnet18

    torch.manual_seed(7)
    state = resnet18(weights=None, num_classes=1000).state_dict()
    torch.save({wrap: state} if wrap else state, path)
    return state


def test_fine_tuning_weights_load_strictly_with_a_fresh_head(tmp_path: Path) -> None:
    state = _imagenet_like(tmp_path / "w.pth")
    model = resnet(3, 96, k=5, weights=str(tmp_path / "w.pth"))
    own = model.net.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            assert own[key].shape != value.shape  # a new 5-class head
        else:
            assert torch.equal(own[key], value), key


def test_grayscale_data_sums_the_colour_stem(tmp_path: Path) -> None:
    state = _imagenet_like(tmp_path / "w.pth", wrap="state_dict")
    model = resnet(1, 96, weights=str(tmp_path / "w.pth"))
    assert torch.allclose(model.net.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    small = resnet(1, 28, weights=str(tmp_path / "w.pth"))  # 3x3 stem: starts fresh, the rest loads
    assert torch.equal(small.net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_a_studio_checkpoint_and_dataparallel_prefixes_load(tmp_path: Path) -> None:
    trained = resnet(1, 28)
    torch.save({"model": trained.state_dict(), "epoch": 3}, tmp_path / "best.pt")
    again = resnet(1, 28, weights=str(tmp_path / "best.pt"))
    assert torch.equal(again.net.conv1.weight, trained.net.conv1.weight)
    torch.save({f"module.{k}": v for k, v in trained.net.state_dict().items()}, tmp_path / "dp.pth")
    dp = resnet(1, 28, weights=str(tmp_path / "dp.pth"))
    assert torch.equal(dp.net.fc.weight, trained.net.fc.weight)


def test_weights_survive_the_init_scheme(tmp_path: Path) -> None:
    state = _imagenet_like(tmp_path / "w.pth")
    model = resnet(3, 96, weights=str(tmp_path / "w.pth"), init="xavier")
    assert torch.equal(model.net.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_unsafe_foreign_and_misfit_weights_are_checkpoint_errors(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"conv1.weight": torch.zeros(1), "where": Path("x")}, unsafe)  # a pickled object
    with pytest.raises(CheckpointError, match="cannot load safely"):
        resnet(3, 32, weights=str(unsafe))
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load safely"):
        resnet(3, 32, weights=str(text))
    mlp = build_model(ModelConfig(arch="mlp"), spec(3, 32))
    torch.save(mlp.state_dict(), tmp_path / "mlp.pth")
    with pytest.raises(CheckpointError, match="do not fit resnet18"):
        resnet(3, 32, weights=str(tmp_path / "mlp.pth"))
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        resnet(3, 32, weights=str(tmp_path / "list.pth"))


def test_weights_are_only_for_resnet18(tmp_path: Path) -> None:
    _imagenet_like(tmp_path / "w.pth")
    with pytest.raises(ConfigError, match=r"weights.*resnet18"):
        build_model(ModelConfig(arch="lenet", weights=str(tmp_path / "w.pth")), spec())


def test_resnet18_needs_images() -> None:
    tabular = DataSpec("csv", "tabular", "classification", (4,), labels=("a", "b"))
    with pytest.raises(ConfigError, match="needs image data"):
        build_model(ModelConfig(arch="resnet18"), tabular)


# -- init schemes --------------------------------------------------------------------------------


def _layers(model: nn.Module) -> list[nn.Module]:
    model.requires_grad_(False)
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def test_default_init_is_pytorchs_own() -> None:
    torch.manual_seed(0)
    ours = build_model(ModelConfig(arch="mlp", hidden=[64], init="default"), spec())
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    for a, b in zip(_layers(ours), _layers(plain), strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


@pytest.mark.parametrize("arch", ["mlp", "lenet", "resnet18"])
def test_kaiming_gives_the_relu_gain(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, hidden=[256], init="kaiming"), spec())
    for layer in _layers(model):
        w = layer.weight
        fan_in = w[0].numel()
        if w.numel() < 2000:
            continue  # too few weights for a stable estimate
        assert float(w.std()) == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.1)
        if layer.bias is not None:
            assert torch.count_nonzero(layer.bias) == 0


def test_xavier_is_glorot_uniform() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="mlp", hidden=[256], init="xavier"), spec())
    for layer in _layers(model):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert float(layer.weight.abs().max()) <= bound
        assert float(layer.weight.std()) == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert torch.count_nonzero(layer.bias) == 0


def test_orthogonal_rows_are_orthonormal_also_for_convolutions() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="lenet", init="orthogonal"), spec())
    for layer in _layers(model):
        w = layer.weight.flatten(1)
        rows, cols = w.shape
        gram = w @ w.T if rows <= cols else w.T @ w
        assert torch.allclose(gram, torch.eye(min(rows, cols)), atol=1e-4)


def test_unknown_init_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="init"):
        init_weights(nn.Linear(2, 2), "lecun")
