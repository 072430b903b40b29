"""Load a trained run back (config, model, data) and report its metrics, for `eval` and `export`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.config import Config, load_config
from studio.data import DataBundle, DataSpec, load_data
from studio.data.batch_sources import make_batches
from studio.data.images import take_images
from studio.engine.checkpoint import load_checkpoint
from studio.engine.evaluate import (
    ClassPredictions,
    RegressionPoints,
    class_predictions,
    classification_report,
    compute_loss,
    loss_scale,
    predict_all,
    regression_points,
    regression_report,
)
from studio.engine.linear_fit import FittedLine, fitted_line, linear_parameters
from studio.engine.optim import build_loss
from studio.engine.run_dir import RunDir
from studio.errors import CheckpointError, StudioError
from studio.models import StudioModel, build_model


@dataclass
class TrainedRun:
    """A run's config, spec and model (eval mode, CPU) restored from one checkpoint."""

    run_dir: Path
    config: Config
    spec: DataSpec
    model: StudioModel
    checkpoint: dict[str, Any] = field(repr=False)
    _bundle: DataBundle | None = None
    which: str = "best"  # the checkpoint actually loaded ("best" falls back to "last")

    @property
    def data(self) -> DataBundle:
        """The run's data, split exactly as in training (same seed), loaded on first use."""
        if self._bundle is None:
            self._bundle = load_data(self.config)
        return self._bundle


def spec_from_dict(raw: dict[str, Any]) -> DataSpec:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return DataSpec(**fields)


def load_trained(run_dir: Path, which: str = "best") -> TrainedRun:
    """Restore a run's model from `best` or `last`; falls back to `last` when there is no best."""
    files = RunDir(run_dir).check()
    run_dir = files.path
    path = files.checkpoint(which)
    if which == "best" and not path.exists() and files.has_checkpoint("last"):
        which, path = "last", files.checkpoint("last")
    if not path.exists():
        raise CheckpointError(
            f"{run_dir}: no checkpoint yet ({path.relative_to(run_dir)} not found); train the run first"
        )
    state = load_checkpoint(path)
    config = load_config(files.config)
    try:
        spec = spec_from_dict(state["spec"])
    except TypeError as exc:
        raise CheckpointError(f"checkpoint '{path}' has an unreadable data spec ({exc})") from None
    model = build_model(config.model, spec, load_weights=False)  # the checkpoint holds them
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint '{path}' does not fit the run's model ({str(exc).splitlines()[0][:160]})"
        ) from None
    model.eval()
    return TrainedRun(run_dir, config, spec, model, state, which=which)


# The split evaluated when the asked one is empty, in order: a run without a val or test split
# (the tutorial's line fit trains on all its points) is evaluated on what it has, and says so.
FALLBACKS = {"test": ("val", "train"), "val": ("train",), "train": ()}


def _split_outputs(run: TrainedRun, split: str) -> tuple[str, Any, torch.Tensor, torch.Tensor, str | None]:
    """(split used, its Split, model outputs, targets, a note when it is not the split asked for)."""
    data = run.data
    if data.spec.input_shape != run.spec.input_shape or data.spec.labels != run.spec.labels:
        raise StudioError(
            f"{run.run_dir}: the data no longer matches the run "
            f"(now {data.spec.describe()}, trained on {run.spec.describe()})"
        )
    if split not in FALLBACKS:
        raise StudioError(f"split must be train, val or test (got {split!r})")
    parts = {"train": data.train, "val": data.val, "test": data.test}
    used = next((s for s in (split, *FALLBACKS[split]) if len(parts[s]) > 0), None)
    if used is None:
        raise StudioError(f"{run.run_dir}: the {split} split is empty (see [data] val_split / test_split)")
    note = None
    if used != split:
        empty = [s for s in ("val", "test") if len(parts[s]) == 0 and s in (split, *FALLBACKS[split])]
        note = f"evaluated on {used} (no {' or '.join(empty)} split)"
    part = parts[used]
    out, y = predict_all(run.model, make_batches(part, torch.device("cpu"), None, run.config.data.num_workers))
    return used, part, out, y, note


def _report(
    run: TrainedRun, which: str, split: str, out: torch.Tensor, y: torch.Tensor, note: str | None = None
) -> dict[str, Any]:
    loss = float(compute_loss(out, y, build_loss(run.config.train.loss, run.spec.task), run.spec))
    loss *= loss_scale(run.config.train.loss, run.spec)
    report: dict[str, Any] = {
        "run_dir": str(run.run_dir),
        "checkpoint": run.which,
        "split": split,
        "epoch": run.checkpoint["epoch"],
        "task": run.spec.task,
        "loss": loss,
    }
    if note:
        report["note"] = note
    if run.spec.task == "classification":
        report |= classification_report(out, y, run.spec.labels)
    else:
        report |= regression_report(out, y)
        report["accuracy"] = None
    parameters = linear_parameters(run.model, run.spec, run.config.model.arch)
    if parameters is not None:
        report["parameters"] = parameters
    return report


def evaluate_run(run_dir: Path, which: str = "best", split: str = "test") -> dict[str, Any]:
    """Metrics of one split as a JSON-ready dict: loss, accuracy, confusion matrix, per-class figures."""
    run = load_trained(run_dir, which)
    split, _, out, y, note = _split_outputs(run, split)
    return _report(run, which, split, out, y, note)


@dataclass(frozen=True)
class EvaluationDetails:
    """Everything the Evaluation tab shows for one split: the report plus per-sample detail.

    Arrays are numpy, never tensors, so the object can be handed from a worker thread to the GUI.
    `images` holds the split's uint8 images [N, C, H, W] when they are in memory (None for tables
    and for file-backed image folders), in the order of the predictions; `sample_images(positions)`
    returns a cell's pictures in either case.
    """

    report: dict[str, Any]
    task: str
    labels: tuple[str, ...]
    classes: ClassPredictions | None
    regression: RegressionPoints | None
    images: np.ndarray | None
    source_indices: np.ndarray | None  # each sample's position in the data source
    _pixels: Any = None  # the split's x: a uint8 tensor, or a file-backed stand-in that decodes on demand
    fitted_line: FittedLine | None = None  # one-feature regression: the data and the model's line

    def sample_images(self, positions: Any) -> np.ndarray:
        """uint8 images [k, C, H, W] of these samples (in memory, or decoded from their files)."""
        if self.images is not None:
            return self.images[np.asarray(positions, dtype=np.int64)]
        if self._pixels is None:
            raise ValueError("these samples are not images")
        return take_images(self._pixels, list(positions)).numpy()


def evaluation_details(run_dir: Path, which: str = "best", split: str = "test") -> EvaluationDetails:
    """Evaluate a run on a split and keep each sample's prediction, for the GUI's Evaluation tab."""
    run = load_trained(run_dir, which)
    split, part, out, y, note = _split_outputs(run, split)
    report = _report(run, which, split, out, y, note)
    classes = class_predictions(out, y) if run.spec.task == "classification" else None
    points = regression_points(out, y) if run.spec.task == "regression" else None
    in_memory = run.spec.kind == "image" and isinstance(part.x, torch.Tensor)
    images = part.x.numpy() if in_memory else None  # a view, not a copy
    indices = part.indices.numpy() if part.indices is not None else None
    pixels = part.x if run.spec.kind == "image" else None
    line = fitted_line(run.model, run.spec, part.x, part.y) if run.spec.kind == "tabular" else None
    return EvaluationDetails(
        report, run.spec.task, run.spec.labels, classes, points, images, indices, pixels, fitted_line=line
    )
