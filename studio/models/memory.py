"""How much memory training a configured model takes, estimated before anything is allocated.

`check_fits(config, spec, device)` builds the architecture on PyTorch's `meta` device (shapes
only, no storage), counts its parameters, runs one meta forward pass at the configured batch size
to size the activations, and compares the total with the memory the device has available. A
model that cannot fit is refused with the estimate in the message, instead of being killed by the
kernel half way through allocating it (`hidden = [3000000]` reached 22.8 GB before the OOM killer).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from studio.config import Config
from studio.data.base import DataSpec
from studio.errors import ConfigError

FLOAT_BYTES = 4  # parameters, gradients, optimizer state and activations are float32


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training step needs, by kind; `total` is what must fit in the device's memory."""

    params: int  # number of parameters
    weights: int
    gradients: int
    optimizer: int
    activations: int  # for one batch: the outputs backward keeps, plus its largest working buffer
    batch_size: int
    optimizer_name: str

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        parts = [f"{_size(self.weights)} of weights", f"{_size(self.gradients)} of gradients"]
        if self.optimizer:
            parts.append(f"{_size(self.optimizer)} of {self.optimizer_name} state")
        return (
            f"about {_size(self.total)} ({_count(self.params)} parameters: {', '.join(parts)}; "
            f"{_size(self.activations)} of activations for a batch of {self.batch_size})"
        )


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _count(n: int) -> str:
    if n >= 1e12:
        return f"{n / 1e12:.2f} trillion"
    if n >= 1e9:
        return f"{n / 1e9:.2f} billion"
    if n >= 1e6:
        return f"{n / 1e6:.1f} million"
    return f"{n:,}"


def _optimizer_slots(config: Config) -> int:
    """Tensors the size of the parameters that the optimizer keeps (Adam: two moments; SGD: momentum)."""
    t = config.train
    if t.optimizer in ("adam", "adamw"):
        return 2
    return 1 if t.momentum > 0 else 0


def estimate_training_memory(config: Config, spec: DataSpec) -> MemoryEstimate:
    """Estimate the memory a training step of this config on this data needs, allocating nothing."""
    from studio.models import ARCHITECTURES

    batch = max(1, config.train.batch_size)
    with torch.device("meta"):
        if config.model.weights == "imagenet":  # the ImageNet layout, enlarging small images first
            from studio.models.pretrained import build_pretrained

            channels, height, width = spec.input_shape
            net: nn.Module = build_pretrained(
                config.model.arch, channels, height, width, spec.num_outputs, config.model.dropout
            )
        else:
            net = ARCHITECTURES[config.model.arch](config.model, spec)
        params = sum(p.numel() for p in net.parameters())
        outputs: list[int] = []

        def keep(module: nn.Module, args: object, out: object) -> None:
            if isinstance(out, torch.Tensor):
                outputs.append(out.numel() * out.element_size())

        hooks = [m.register_forward_hook(keep) for m in net.modules() if not list(m.children())]
        try:
            net(torch.empty(batch, *spec.input_shape))
        finally:
            for hook in hooks:
                hook.remove()
    inputs = batch * math.prod(spec.input_shape) * FLOAT_BYTES
    activations = inputs + sum(outputs) + max(outputs, default=0)
    weights = params * FLOAT_BYTES
    return MemoryEstimate(
        params=params,
        weights=weights,
        gradients=weights,
        optimizer=weights * _optimizer_slots(config),
        activations=activations,
        batch_size=batch,
        optimizer_name=config.train.optimizer,
    )


def available_memory(device: torch.device) -> tuple[int, str] | None:
    """(bytes available, where) on the training device; None when it cannot be told."""
    if device.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(device)
        except (RuntimeError, AssertionError):
            return None
        return int(free), f"free on {torch.cuda.get_device_name(device)}"
    ram = _available_ram()
    return (ram, "available on this machine") if ram is not None else None


def _available_ram() -> int | None:
    """MemAvailable, lowered to what a container's memory limit leaves (cgroup v2, then v1)."""
    candidates = []
    meminfo = _read_meminfo()
    if meminfo is not None:
        candidates.append(meminfo)
    elif hasattr(os, "sysconf"):
        try:
            pages = (
                os.sysconf("SC_AVPHYS_PAGES") if "SC_AVPHYS_PAGES" in os.sysconf_names else os.sysconf("SC_PHYS_PAGES")
            )
            candidates.append(int(pages) * int(os.sysconf("SC_PAGE_SIZE")))
        except (OSError, ValueError):
            pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            candidates.append(max(limit - usage, 0))
            break
    return min(candidates) if candidates else None


def _read_meminfo() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def check_fits(config: Config, spec: DataSpec, device: torch.device) -> MemoryEstimate | None:
    """Refuse (ConfigError) a model whose training cannot fit in the device's available memory.

    Returns the estimate, or None when it cannot be made: an estimate that fails never blocks a run
    (the real build then reports whatever is wrong with the model).
    """
    try:
        estimate = estimate_training_memory(config, spec)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - an op the meta device lacks, say: train without the estimate
        return None
    available = available_memory(device)
    if available is None:
        return estimate
    free, where = available
    if estimate.total > free:
        big_model = estimate.weights + estimate.gradients + estimate.optimizer >= estimate.activations
        advice = (
            "use fewer or smaller layers ([model] hidden)"
            if big_model and config.model.arch == "mlp"
            else "use a smaller model"
            if big_model
            else "use a smaller [train] batch_size"
        )
        raise ConfigError(
            f"[model] training this {config.model.arch} on {spec.describe()} needs "
            f"{estimate.describe()}, but only {_size(free)} is {where}; {advice}"
        )
    return estimate
