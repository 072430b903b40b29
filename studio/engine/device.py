"""Device choice (auto: cuda, then mps, then cpu) and a list of devices for the GUI."""

from __future__ import annotations

import torch

from studio.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """Turn a config device name into a torch.device, with a clear error when it is absent."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"[train] device '{name}': CUDA is not available on this machine; use auto or cpu")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"[train] device '{name}': only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", index)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("[train] device 'mps': Apple MPS is not available on this machine")
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    return {"mps": "Apple MPS", "cpu": "CPU"}.get(device.type, str(device))


def available_devices() -> list[tuple[str, str]]:
    """(config value, label) for each usable device: CUDA GPUs by name, then MPS, then CPU."""
    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", f"cuda:{i} — {torch.cuda.get_device_name(i)}"))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append(("mps", "mps — Apple GPU"))
    out.append(("cpu", "cpu"))
    return out
