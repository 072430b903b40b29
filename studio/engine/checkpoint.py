"""Checkpoints: the full training state, written atomically and loaded strictly and safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so
`torch.load(..., weights_only=True)` reads it and a file that carries any other pickled object is
refused before anything in it can run.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from studio import __version__
from studio.engine.run_dir import RunDir
from studio.errors import CheckpointError
from studio.files import atomic_write

FORMAT = 1
REQUIRED = ("format", "model", "config", "epoch", "step", "spec")
CHECKPOINT_FILES = RunDir.CHECKPOINT_FILES
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
_PICKLE_PROTOCOLS = range(2, 6)  # a pickle stream opens with PROTO n (the pre-zip torch format is one too)


def rng_state() -> dict[str, Any]:
    """Every RNG the loop draws from (python, numpy, torch, cuda), as weights_only-safe values."""
    np_state = cast(tuple[Any, ...], np.random.get_state())  # the legacy tuple: (name, keys, pos, has_gauss, gauss)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` (plus format and version) to `path` atomically: temp file, fsync, os.replace."""
    payload = {"format": FORMAT, "studio_version": __version__, **state}
    atomic_write(Path(path), lambda fh: torch.save(payload, fh), binary=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; a missing, truncated, foreign or unsafe file raises `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found")
    _check_file_kind(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "Weights only load failed" in first or "weights_only" in str(exc):
            raise CheckpointError(
                f"checkpoint '{path}' holds objects other than tensors and plain values; "
                "refusing to load it (it could run code)"
            ) from None
        raise CheckpointError(f"checkpoint '{path}' is corrupt ({first[:120]})") from None
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError, OSError) as exc:
        msg = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint '{path}' is truncated or corrupt ({msg})") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a broken file
        raise CheckpointError(f"checkpoint '{path}' cannot be read ({type(exc).__name__})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        raise CheckpointError(f"checkpoint '{path}' is not a studio checkpoint")
    if state["format"] > FORMAT:
        raise CheckpointError(
            f"checkpoint '{path}' was written by a newer studio ({state.get('studio_version')}); please upgrade"
        )
    return state


def _check_file_kind(path: Path) -> None:
    """Refuse what is no PyTorch file at all (random bytes, text, an image) as "not a checkpoint".

    Only a zip archive or a pickle stream goes on to `torch.load(weights_only=True)`, which is what
    tells a checkpoint from a payload of foreign objects (those are refused as unsafe).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"checkpoint '{path}' cannot be read ({exc.strerror})") from None
    if not head:
        raise CheckpointError(f"checkpoint '{path}' is empty (truncated or corrupt)")
    if head == _ZIP_MAGIC or (len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS):
        return
    raise CheckpointError(
        f"'{path}' is not a checkpoint: it is neither a PyTorch file nor a studio checkpoint (random or foreign data)"
    )


def checkpoint_path(run_dir: Path | RunDir, which: str = "last") -> Path:
    return RunDir(Path(run_dir)).checkpoint(which)
