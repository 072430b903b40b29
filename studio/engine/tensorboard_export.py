"""Write a run's metrics.jsonl as TensorBoard event files, for people who live in TensorBoard.

TensorBoard is optional: studio does not depend on it, and without it this raises a `StudioError`
that says how to get it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.run_dir import read_metrics
from studio.errors import StudioError

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

MISSING = (
    "TensorBoard export needs the 'tensorboard' package, which is not installed; "
    "install it with `pip install tensorboard` (studio itself works without it)"
)

# metrics.jsonl step-record fields written as scalars, and their TensorBoard tags.
STEP_TAGS = {
    "loss": "step/loss",
    "accuracy": "step/accuracy",
    "lr": "step/lr",
    "grad_norm": "step/grad_norm",
    "samples_per_s": "step/samples_per_s",
    "batch_size": "step/batch_size",
    "cuda_memory_allocated": "step/cuda_memory_allocated",
    "cuda_memory_reserved": "step/cuda_memory_reserved",
}


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401 - importing it is the check
    except ImportError:
        return False
    return True


def _summary_writer() -> type[SummaryWriter]:
    if not tensorboard_available():
        raise StudioError(MISSING)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # tensorboard present but broken or too old for this torch
        raise StudioError(f"{MISSING} ({exc})") from None
    return SummaryWriter


def export_tensorboard(run_dir: Path, log_dir: Path) -> Path:
    """Write `run_dir`'s metrics under `log_dir/<run name>`; returns that folder.

    Epoch records become `epoch/<split>_loss` and `epoch/<split>_accuracy` at their global step,
    so they line up with the step records in TensorBoard's step axis.
    """
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise StudioError(f"'{run_dir}' has no metrics to export (metrics.jsonl missing or empty)")
    writer_cls = _summary_writer()
    out = Path(log_dir) / run_dir.name
    writer = writer_cls(log_dir=str(out))
    try:
        for r in records:
            step = int(r.get("step") or 0)
            if r.get("kind") == "step":
                for key, tag in STEP_TAGS.items():
                    if isinstance(r.get(key), (int, float)):
                        writer.add_scalar(tag, float(r[key]), step)
            elif r.get("kind") == "epoch":
                split = r.get("split", "train")
                for key in ("loss", "accuracy"):
                    if isinstance(r.get(key), (int, float)):
                        writer.add_scalar(f"epoch/{split}_{key}", float(r[key]), step)
    finally:
        writer.close()
    return out
