"""ImageNet weights through torchvision's weights API, cached the way torchvision caches them.

`[model] weights = "imagenet"` takes `ResNet18_Weights.DEFAULT` or `MobileNet_V3_Small_Weights.DEFAULT`:
the file is downloaded once into torch's hub cache (`$TORCH_HOME/hub/checkpoints/<name>-<hash>.pth`)
by `torch.hub.download_url_to_file`, with a progress bar and the hash in its name checked, and
loaded with `weights_only=True`. A file already in the cache is checked against that hash too, so
a copy put there by hand that is truncated is refused. Offline, the error names the URL to fetch
and the exact path to put it.

What the weights expect of their input lives inside the model (`ImagenetInput`): grey images
become three channels, small images are enlarged to `MIN_SIZE`, and pixels in [0, 1] are
normalised with ImageNet's mean and std. So the exported ONNX model still takes raw pixels.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from studio.errors import CheckpointError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_SIZE = 64  # px: smaller images are enlarged to this, so the ImageNet features have room
HEADS = {"resnet18": "fc", "mobilenet_v3_small": "classifier"}  # what starts fresh and trains first


def weights_url(arch: str) -> str:
    """The URL of torchvision's default ImageNet weights for `arch`."""
    from torchvision.models import MobileNet_V3_Small_Weights, ResNet18_Weights

    weights: Any = {"resnet18": ResNet18_Weights, "mobilenet_v3_small": MobileNet_V3_Small_Weights}[arch].DEFAULT
    return str(weights.url)


def cached_path(arch: str) -> Path:
    """Where torch.hub keeps the file: `$TORCH_HOME/hub/checkpoints/<the URL's file name>`."""
    name = os.path.basename(urlparse(weights_url(arch)).path)
    return Path(torch.hub.get_dir(), "checkpoints", name)  # torch.hub's folder, not a run's checkpoints


def is_cached(arch: str) -> bool:
    return cached_path(arch).is_file()


def _hash_prefix(path: Path) -> str | None:
    found = torch.hub.HASH_REGEX.search(path.name)
    return found.group(1) if found else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def offline_advice(arch: str) -> str:
    return f"fetch {weights_url(arch)} on a machine with internet and put it at {cached_path(arch)}"


def fetch_weights(arch: str, progress: bool = True) -> Path:
    """The cached ImageNet weights file of `arch`, downloaded (once, hash-checked) if missing."""
    path, url = cached_path(arch), weights_url(arch)
    prefix = _hash_prefix(path)
    if path.is_file():
        if prefix and not _sha256(path).startswith(prefix):
            raise CheckpointError(
                f'[model] weights = "imagenet": {path} is damaged (its sha256 does not start with {prefix}); '
                f"delete it, then {offline_advice(arch)}"
            )
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=progress)
    except Exception as exc:  # noqa: BLE001 - offline, refused, a proxy, a bad hash: all mean "get it by hand"
        reason = str(getattr(exc, "reason", "") or exc).strip().splitlines()
        raise CheckpointError(
            f'[model] weights = "imagenet": could not download {url} ({reason[0][:120] if reason else type(exc).__name__}); '
            f"{offline_advice(arch)}"
        ) from None
    return path


def load_imagenet(net: nn.Module, arch: str, progress: bool = True) -> None:
    """Fill `net` (torchvision's layout) with the ImageNet weights; the head keeps its fresh weights."""
    path = fetch_weights(arch, progress)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise CheckpointError(f"[model] weights: {path} cannot be loaded safely ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"[model] weights: {path} is not a state dict of tensors")
    own = net.state_dict()
    head = HEADS[arch] + "."
    for key, value in list(state.items()):
        if key.startswith(head) and key in own and own[key].shape != value.shape:
            state[key] = own[key]  # a new head for this data's classes
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        last = str(exc).strip().splitlines()[-1].strip()[:200]
        raise CheckpointError(f"[model] weights: {path} does not fit {arch}: {last}") from None


def enlarged(h: int, w: int) -> tuple[int, int]:
    """The size the model resizes an `h` x `w` image to: at least `MIN_SIZE` on the longer side."""
    side = max(h, w)
    if side >= MIN_SIZE:
        return h, w
    return round(h * MIN_SIZE / side), round(w * MIN_SIZE / side)


class ImagenetInput(nn.Module):
    """Grey to RGB, enlarge small images, ImageNet mean and std: the weights' preprocessing, in the graph."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, channels: int, size: tuple[int, int], out: tuple[int, int]) -> None:
        super().__init__()
        self.grey = channels == 1
        self.out = out if out != size else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grey:
            x = x.expand(-1, 3, -1, -1)
        if self.out is not None:
            x = nn.functional.interpolate(x, size=self.out, mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std


class PretrainedNet(nn.Module):
    """`preprocess` (ImagenetInput) then a torchvision `backbone` whose head is `HEADS[arch]`."""

    def __init__(self, preprocess: nn.Module, backbone: nn.Module, arch: str) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.backbone = backbone
        self.head_name = f"backbone.{HEADS[arch]}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.preprocess(x))


def build_pretrained(arch: str, channels: int, h: int, w: int, classes: int, dropout: float) -> PretrainedNet:
    """The ImageNet layout of `arch` for this data, behind its preprocessing; no weights loaded yet."""
    out = enlarged(h, w)
    if arch == "resnet18":
        from studio.models.resnet import resnet18_for

        backbone = resnet18_for(3, max(out), classes)
    else:
        from studio.models.mobilenet import mobilenet_for

        backbone = mobilenet_for(3, max(out), classes, dropout or 0.2)
    return PretrainedNet(ImagenetInput(channels, (h, w), out), backbone, arch)


def pretrained_hint(arch: str, weights: str, source: str) -> str:
    """One line for the setup: propose a pretrained model for an image folder, or say how to get its weights.

    Empty when there is nothing to say (not a folder, or pretrained weights already set and cached).
    """
    if weights == "imagenet":
        if is_cached(arch):
            return ""
        return f"ImageNet weights for {arch} download when training starts (once). Offline: {offline_advice(arch)}."
    if source != "folder" or weights:
        return ""
    cached = [a for a in HEADS if is_cached(a)]
    if cached:
        return (
            f"ImageNet weights for {cached[0]} are cached: choose {cached[0]} with pretrained weights "
            '"imagenet" for a strong model on a small folder in a few epochs.'
        )
    return (
        'A pretrained model learns a small folder best: resnet18 with weights "imagenet" downloads '
        f"its weights once (45 MB). Offline: {offline_advice('resnet18')}."
    )
