"""CUDA failures a run can end in, told apart and explained in words a user can act on.

Two kinds matter, because they end differently:

- **out of memory** (`torch.OutOfMemoryError`, or an allocator's "out of memory" in a library's
  error): the process's CUDA context is fine. The run ends with the memory figures and a smaller
  batch size to try, and its progress is saved as after a Ctrl-C.
- **the context is lost** (a device-side assert, an illegal address, a launch failure, an
  uncorrectable ECC error: CUDA's "sticky" errors, `torch.AcceleratorError` in recent PyTorch):
  every later CUDA call in this process fails too. Nothing more can be read from the GPU, so the
  run ends with its last good checkpoint as it is on disk, and the process remembers
  (`mark_context_lost`): a later run on CUDA in the same process is refused with
  `CONTEXT_LOST`, and the window starts GPU runs in a fresh `studio train` process instead.

Classification reads the exception's type and text (and its causes), so it is testable on a CPU
with a fake error.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass

import torch

from studio.config import TrainConfig
from studio.engine.stop_criteria import TrainingFailed
from studio.errors import StudioError

CONTEXT_LOST = "CUDA context unusable: the next run needs a fresh process"

# CUDA's sticky errors (cudaErrorAssert, IllegalAddress, LaunchFailure, ...) as their messages read,
# and the library errors that follow them; lower case.
_CONTEXT_LOST_TEXT = (
    "device-side assert",
    "illegal memory access",
    "an illegal address",
    "illegal instruction",
    "misaligned address",
    "unspecified launch failure",
    "invalid program counter",
    "hardware stack error",
    "launch timed out",
    "uncorrectable ecc error",
    "context is destroyed",
    "cublas_status_execution_failed",
    "cudnn_status_execution_failed",
    "cudnn_status_mapping_error",
)
_OUT_OF_MEMORY_TEXT = (
    "cuda out of memory",
    "cuda error: out of memory",
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "defaultcpuallocator: can't allocate memory",
)


class CudaFailureKind(enum.Enum):
    OUT_OF_MEMORY = "out_of_memory"
    CONTEXT_LOST = "context_lost"


@dataclass(frozen=True)
class CudaFailure:
    """A classified failure: its kind and the first line of the original error."""

    kind: CudaFailureKind
    detail: str


@dataclass(frozen=True)
class MemoryFigures:
    """A CUDA device's memory at the moment of a failure, in bytes (`torch.cuda`'s allocator and the driver)."""

    allocated: int
    reserved: int
    peak: int  # the most this run's tensors held at once
    free: int | None  # what the driver says is free on the device (other processes included)
    total: int | None


class CudaContextError(StudioError):
    """A CUDA run was asked for in a process whose CUDA context an earlier error broke."""


_lost: str | None = None  # the error that broke this process's CUDA context, once one has


def classify(exc: BaseException) -> CudaFailure | None:
    """Out of memory, a lost CUDA context, or None for anything else; the exception's causes count too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        failure = _classify_one(current)
        if failure is not None:
            return failure
        current = current.__cause__ or current.__context__
    return None


def _classify_one(exc: BaseException) -> CudaFailure | None:
    text = str(exc)
    lower = text.lower()
    detail = _first_line(text) or type(exc).__name__
    if isinstance(exc, torch.OutOfMemoryError) or any(t in lower for t in _OUT_OF_MEMORY_TEXT):
        return CudaFailure(CudaFailureKind.OUT_OF_MEMORY, detail)
    accelerator_error = getattr(torch, "AcceleratorError", None)  # PyTorch 2.8 and later
    if not isinstance(exc, RuntimeError) and not (accelerator_error and isinstance(exc, accelerator_error)):
        return None
    if any(t in lower for t in _CONTEXT_LOST_TEXT):
        return CudaFailure(CudaFailureKind.CONTEXT_LOST, detail)
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


# -- the process's CUDA context ------------------------------------------------------------------


def mark_context_lost(reason: str) -> None:
    """Remember that this process's CUDA context is broken (the first reason is kept)."""
    global _lost
    if _lost is None:
        _lost = reason


def cuda_context_usable() -> bool:
    """False once a CUDA error broke this process's context: CUDA runs then need a fresh process."""
    return _lost is None


def context_lost_reason() -> str | None:
    return _lost


def check_context_usable(device: torch.device) -> None:
    """Refuse a CUDA run in a process whose context is lost, with the error that lost it."""
    if device.type == "cuda" and _lost is not None:
        raise CudaContextError(f"{CONTEXT_LOST} (an earlier run ended with: {_lost})")


def needs_fresh_process(device: str) -> bool:
    """True when a run on `device` (a config name) would use CUDA in a process whose context is lost.

    The window then trains it in a child process (`studio train`/`studio resume`, followed through
    the run directory), so the next run works without restarting the application.
    """
    if _lost is None:
        return False
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def reset_for_tests() -> None:
    """Forget a lost context (tests that fake one put the process back as it was)."""
    global _lost
    _lost = None


# -- what the user reads ---------------------------------------------------------------------------


def memory_figures(device: torch.device) -> MemoryFigures | None:
    """The device's memory now, or None off CUDA (or where the driver cannot say)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    try:
        free: int | None
        total: int | None
        try:
            free, total = (int(v) for v in torch.cuda.mem_get_info(device))
        except (RuntimeError, AssertionError):
            free = total = None
        return MemoryFigures(
            allocated=int(torch.cuda.memory_allocated(device)),
            reserved=int(torch.cuda.memory_reserved(device)),
            peak=int(torch.cuda.max_memory_allocated(device)),
            free=free,
            total=total,
        )
    except (RuntimeError, AssertionError):
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def out_of_memory_message(
    failure: CudaFailure, figures: MemoryFigures | None, batch_size: int, device: str, precision: str
) -> str:
    """One paragraph: what ran out, the memory figures, and what to change (batch size, precision)."""
    where = f"out of memory on {device} at batch size {batch_size}"
    if figures is not None:
        parts = [
            f"{_gib(figures.allocated)} allocated by this run",
            f"{_gib(figures.reserved)} reserved",
            f"peak {_gib(figures.peak)}",
        ]
        if figures.total is not None and figures.free is not None:
            parts.append(f"{_gib(figures.free)} free of {_gib(figures.total)} on the device")
        where += f" ({', '.join(parts)})"
    else:
        where += f" ({failure.detail})"
    advice = f"lower [train] batch_size (try {max(1, batch_size // 2)})"
    if precision == "fp32" and figures is not None:  # mixed precision halves the activations, on CUDA
        advice += ', or train with [train] precision = "bf16"'
    return f"{where}; {advice}"


def context_lost_message(failure: CudaFailure) -> str:
    """The message for an error that broke the CUDA context, ending in what the next run needs."""
    detail = failure.detail if failure.detail.lower().startswith("cuda error") else f"CUDA error: {failure.detail}"
    return f"{detail.rstrip('.')}. {CONTEXT_LOST}"


def describe(failure: CudaFailure, device: torch.device, label: str, batch_size: int, train: TrainConfig) -> str:
    """The message a run ends with; a lost context is also remembered for the rest of the process."""
    if failure.kind is CudaFailureKind.CONTEXT_LOST:
        mark_context_lost(failure.detail)
        return context_lost_message(failure)
    return out_of_memory_message(failure, memory_figures(device), batch_size, label, train.precision)


def raise_in_words(exc: BaseException, train: TrainConfig) -> None:
    """Raise `TrainingFailed` with the message for a CUDA failure before training began; else return."""
    failure = classify(exc)
    if failure is None:
        return
    device = torch.device("cuda") if train.device in ("auto", "cuda") else torch.device(train.device)
    if device.type != "cuda":
        device = torch.device("cpu")
    text = describe(failure, device, train.device, train.batch_size, train)
    release_frames(exc)
    raise TrainingFailed(f"{text}; nothing was trained in this process") from None


def release_frames(exc: BaseException) -> None:
    """Drop the locals of the frames an exception passed through, so the tensors they held are freed.

    After an out-of-memory error the traceback keeps the step's activations alive; a run that
    follows in the same process (the window) needs that memory back.
    """
    tb = exc.__traceback__
    if tb is not None:
        traceback.clear_frames(tb)
