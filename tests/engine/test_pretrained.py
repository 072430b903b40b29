"""`[model] weights = "imagenet"`: the hub cache, the hash check, the offline message, no network."""

from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

import studio.models.pretrained as pretrained
from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import CheckpointError
from studio.models import build_model, head_name

GREY = DataSpec("t", "image", "classification", (1, 28, 28), labels=("a", "b", "c"), mean=(0.2,), std=(0.3,))


def lay_out_cache(torch_home: Path, arch: str) -> dict[str, torch.Tensor]:
    """Save an ImageNet-shaped state dict as torchvision names its files, `<name>-<sha256[:8]>.pth`."""
    from torchvision.models import mobilenet_v3_small, resnet18

    torch.manual_seed(3)
    state = (resnet18 if arch == "resnet18" else mobilenet_v3_small)(num_classes=1000).state_dict()
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp.rename(folder / f"{arch}-{digest[:8]}.pth")
    return state


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME, and URLs named after the files the test lays out (no download happens)."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))

    def url(arch: str) -> str:
        folder = home / "hub" / "checkpoints"
        found = sorted(folder.glob(f"{arch}-*.pth")) if folder.is_dir() else []
        name = found[0].name if found else f"{arch}-0123abcd.pth"
        return f"https://download.pytorch.org/models/{name}"

    monkeypatch.setattr(pretrained, "weights_url", url)

    def offline(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return home


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small"])
def test_weights_in_the_hub_cache_load_with_a_fresh_head(hub: Path, arch: str) -> None:
    state = lay_out_cache(hub, arch)
    model = build_model(ModelConfig(arch=arch, weights="imagenet"), GREY)
    own = model.net.backbone.state_dict()
    head = "fc." if arch == "resnet18" else "classifier.3."
    for key, value in state.items():
        if key.startswith(head):
            assert own[key].shape[0] == 3  # three classes here, not ImageNet's 1000
        else:
            assert torch.equal(own[key], value), key
    module = "fc" if arch == "resnet18" else "classifier"
    assert head_name(model, ModelConfig(arch=arch, weights="imagenet")) == f"net.backbone.{module}"
    model.eval()
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def test_the_preprocessing_the_weights_expect_is_inside_the_model(hub: Path) -> None:
    lay_out_cache(hub, "resnet18")
    model = build_model(ModelConfig(arch="resnet18", weights="imagenet"), GREY)
    seen: list[torch.Tensor] = []
    model.net.backbone.conv1.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    model.eval()
    pixels = torch.full((1, 1, 28, 28), 0.5)
    with torch.no_grad():
        model(pixels)
    x = seen[0]
    assert x.shape == (1, 3, 64, 64)  # grey to three channels, enlarged to the 64 px minimum
    expected = (0.5 - torch.tensor(pretrained.IMAGENET_MEAN)) / torch.tensor(pretrained.IMAGENET_STD)
    assert torch.allclose(x[0, :, 10, 10], expected, atol=1e-5)  # ImageNet's mean and std, not the data's
    assert isinstance(model.net.backbone.conv1, nn.Conv2d) and model.net.backbone.conv1.kernel_size == (7, 7)


def test_an_empty_cache_offline_names_the_url_and_the_path(hub: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        build_model(ModelConfig(arch="mobilenet_v3_small", weights="imagenet"), GREY)
    message = str(caught.value)
    where = hub / "hub" / "checkpoints" / "mobilenet_v3_small-0123abcd.pth"
    assert "https://download.pytorch.org/models/mobilenet_v3_small-0123abcd.pth" in message
    assert str(where) in message and "name resolution" in message
    assert not pretrained.is_cached("mobilenet_v3_small")
    # Building without the weights (a model a checkpoint fills next, or one only measured) needs no file.
    assert build_model(ModelConfig(arch="mobilenet_v3_small", weights="imagenet"), GREY, load_weights=False)


def test_a_damaged_cached_file_is_refused(hub: Path) -> None:
    lay_out_cache(hub, "resnet18")
    path = pretrained.cached_path("resnet18")
    path.write_bytes(path.read_bytes()[:1000])  # a truncated copy
    with pytest.raises(CheckpointError, match="damaged"):
        build_model(ModelConfig(arch="resnet18", weights="imagenet"), GREY)


@pytest.mark.slow
def test_a_fine_tuned_imagenet_model_exports_with_raw_pixels_in(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import studio.data as data
    from tests.export.runs import tiny_digits, toml_for, train_run
    from tests.export.test_export_archs import assert_same_predictions, export_and_check

    lay_out_cache(hub, "mobilenet_v3_small")
    monkeypatch.setitem(data.LOADERS, "digits", tiny_digits(120, 14))
    toml = toml_for("digits", "mobilenet_v3_small", extra_model='weights = "imagenet"\n') + "freeze_epochs = 1\n"
    run_dir = train_run(tmp_path, "mobilenet", toml.replace("epochs = 1", "epochs = 2"))
    path, out = export_and_check(run_dir, capsys)
    assert "top-1 agreement           100.00%" in out
    assert_same_predictions(run_dir, path)  # the resize and ImageNet's statistics are in the graph


def test_the_setup_hint_proposes_cached_weights_and_says_how_to_get_missing_ones(hub: Path) -> None:
    from studio.models.pretrained import pretrained_hint

    missing = pretrained_hint("lenet", "", "folder")
    assert "resnet18" in missing and str(pretrained.cached_path("resnet18")) in missing
    assert pretrained_hint("lenet", "", "digits") == ""  # only an image folder gets the proposal
    lay_out_cache(hub, "mobilenet_v3_small")
    assert "mobilenet_v3_small are cached" in pretrained_hint("lenet", "", "folder")
    assert pretrained_hint("mobilenet_v3_small", "imagenet", "folder") == ""  # already chosen and cached
    assert "download when training starts" in pretrained_hint("resnet18", "imagenet", "digits")


def test_studio_train_offline_is_one_error_line_and_exit_2(
    hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from studio.cli import main

    cfg = tmp_path / "pretrained.toml"
    cfg.write_text('[model]\narch = "resnet18"\nweights = "imagenet"\n[train]\nepochs = 1\ndevice = "cpu"\n')
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "https://download.pytorch.org/models/resnet18-0123abcd.pth" in err[0]
    assert str(hub / "hub" / "checkpoints" / "resnet18-0123abcd.pth") in err[0]
