"""Device choice (auto: cuda, then mps, then cpu) and a list of devices for the GUI."""

from __future__ import annotations

import os

import torch

from studio.engine.cuda_errors import check_context_usable
from studio.errors import ConfigError


def parse_device(name: str) -> tuple[str, int | None]:
    """Split a config device name into (kind, index): "cuda:1" -> ("cuda", 1); a malformed name is a `ConfigError`."""
    kind, sep, rest = name.strip().partition(":")
    if kind in ("auto", "cpu", "mps") and not sep:
        return kind, None
    if kind == "cuda" and not sep:
        return "cuda", None
    if kind == "cuda" and rest.isdigit():
        return "cuda", int(rest)
    raise ConfigError(f"[train] device must be auto, cpu, cuda, cuda:N or mps (got {name!r})")


def resolve_device(name: str) -> torch.device:
    """Turn a config device name into a torch.device, with a clear error when it is absent."""
    kind, index = parse_device(name)
    if kind == "auto":
        if torch.cuda.is_available():
            check_context_usable(torch.device("cuda"))  # never a silent fall back to the CPU
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"[train] device '{name}': CUDA is not available on this machine; use auto or cpu")
        count = torch.cuda.device_count()
        if index is not None and index >= count:
            have = ", ".join(f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(count))
            raise ConfigError(
                f"[train] device '{name}': this machine has {count} CUDA device{'s' if count != 1 else ''}"
                f" ({have}); use one of those, cuda or auto"
            )
        device = torch.device("cuda", index) if index is not None else torch.device("cuda")
        check_context_usable(device)
        return device
    if kind == "mps":
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
    out: list[tuple[str, str]] = []
    if torch.cuda.is_available():
        out.extend(
            (f"cuda:{i}", f"cuda:{i} — {torch.cuda.get_device_name(i)}") for i in range(torch.cuda.device_count())
        )
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append(("mps", "mps — Apple GPU"))
    out.append(("cpu", "cpu"))
    return out


_TORCH_THREADS = torch.get_num_threads()  # the default, before any run lowered it


def cpu_threads() -> int:
    """Intra-op threads for training on the CPU: torch's default, but one core left free.

    OpenMP threads wait for each other at every op, so when one is descheduled (by the GUI thread,
    the data pipeline or anything else on the machine) every small op stalls: a 100k-parameter
    MLP step took 20-40 ms on two threads and 1 ms on one, on a busy two-core machine. Leaving a
    core free avoids that. The rule depends on the machine only, never on its momentary load, so
    the same run on the same machine gives the same numbers (thread counts change float sums).
    An explicit OMP_NUM_THREADS or MKL_NUM_THREADS is always respected.
    """
    default = _TORCH_THREADS
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return default
    return max(1, min(default, (os.cpu_count() or 1) - 1))
