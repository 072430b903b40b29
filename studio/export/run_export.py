"""Export a trained run: `export_run(run_dir)`, the one call behind `studio export` and the GUI's Export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from studio.data.base import DataSpec, Split
from studio.engine.locking import output_lock
from studio.engine.report import TrainedRun, load_trained
from studio.engine.run_dir import RunDir
from studio.errors import StudioError
from studio.export.onnx_export import PROOF_SAMPLES, ExportReport, Progress, export_onnx, model_metadata
from studio.export.quantize import quantize_onnx, quantized_path
from studio.files import WriteError, remove_stale_temp_files, write_error

DEFAULT_NAME = RunDir.ONNX
EVAL_SAMPLES = 5000  # the int8 accuracy check stops here, so a huge validation split stays quick


def default_output(run_dir: str | Path) -> Path:
    return RunDir(Path(run_dir)).onnx


def as_model_input(x: torch.Tensor) -> torch.Tensor:
    """Raw split values as the model (and the ONNX file) takes them: images as pixels in [0, 1]."""
    if not isinstance(x, torch.Tensor):  # an image folder over the memory budget: decode these rows
        x = x.decode()
    return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()


def _same_data(a: DataSpec, b: DataSpec) -> bool:
    return a.input_shape == b.input_shape and a.labels == b.labels and a.task == b.task


def proof_samples(run: TrainedRun) -> tuple[torch.Tensor, str, list[str]]:
    """Up to 256 real samples for the proof: validation split first, then test, then train.

    When the run's data cannot be loaded any more (a CSV moved away), the proof still runs, on
    synthetic inputs in the data's range, and a note says so.
    """
    try:
        data = run.data
    except StudioError as exc:
        return (
            _synthetic(run.spec),
            "synthetic inputs",
            [f"the run's data could not be loaded ({exc}); the proof used synthetic inputs in the data's range"],
        )
    if not _same_data(data.spec, run.spec):
        return (
            _synthetic(run.spec),
            "synthetic inputs",
            [
                f"the data no longer matches the run (now {data.spec.describe()}, trained on {run.spec.describe()}); "
                "the proof used synthetic inputs in the data's range"
            ],
        )
    for name, split in (("validation split", data.val), ("test split", data.test), ("training split", data.train)):
        if len(split):
            return as_model_input(split.x[:PROOF_SAMPLES]), name, []
    raise StudioError(f"{run.run_dir}: the data has no samples to check the export against")


def _synthetic(spec: DataSpec) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if spec.kind == "image":
        return torch.rand(64, *spec.input_shape, generator=gen)
    mean = torch.tensor(spec.mean or [0.0] * spec.input_shape[0])
    std = torch.tensor(spec.std or [1.0] * spec.input_shape[0])
    return torch.randn(64, *spec.input_shape, generator=gen) * std + mean


def _eval_split(run: TrainedRun) -> Split | None:
    try:
        data = run.data
    except StudioError:
        return None
    if not _same_data(data.spec, run.spec):
        return None
    return data.val if len(data.val) else (data.test if len(data.test) else None)


def export_run(
    run_dir: str | Path,
    output: str | Path | None = None,
    *,
    checkpoint: str = "best",
    opset: int | None = None,
    quantize: str | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Export a run's `best` (or `last`) checkpoint to ONNX, prove it, optionally add an int8 copy.

    Raises `StudioError` for a bad run directory or checkpoint and `ExportFailed` when no file
    passes the proof; in both cases nothing is written at `output`. One export at a time writes a
    given file (`FolderInUse` for a second one); reading the run while it trains is fine.
    """
    say = progress or (lambda _msg: None)
    say("loading the checkpoint")
    run = load_trained(Path(run_dir), checkpoint)
    out = Path(output) if output else default_output(run.run_dir)
    try:
        try:
            if not out.is_dir():
                out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, out) from None
        lock = output_lock(out).acquire()
    except WriteError as exc:
        hint = "; use -o FILE.onnx to write it elsewhere" if output is None else ""
        raise WriteError(f"{exc}{hint}") from None
    try:
        # Holding the file's lock, no other export is writing it: temp files of its name were left
        # by a killed one.
        remove_stale_temp_files(out.parent, [out.name, quantized_path(out).name])
        return _export_locked(run, out, checkpoint=checkpoint, opset=opset, quantize=quantize, say=say)
    finally:
        lock.release()


def _export_locked(
    run: TrainedRun, out: Path, *, checkpoint: str, opset: int | None, quantize: str | None, say: Progress
) -> ExportReport:
    say("loading validation samples")
    samples, where, notes = proof_samples(run)
    epoch = run.checkpoint.get("epoch")
    # `best` falls back to `last` when a run never validated; the metadata says which one it was.
    used = checkpoint if RunDir(run.run_dir).has_checkpoint(checkpoint) else "last"
    meta = model_metadata(
        run.spec, {"arch": run.config.model.arch, "checkpoint": used, "epoch": str(epoch) if epoch is not None else ""}
    )
    report = export_onnx(run.model, samples, out, metadata=meta, opset=opset, sample_source=where, progress=say)
    if notes:
        report = replace(report, notes=tuple(notes) + report.notes)
    if quantize:
        split = _eval_split(run)
        if split is None:
            raise StudioError(
                f"{run.run_dir}: no validation data to measure the int8 model on; the float32 file '{out}' is fine"
            )
        calibration = _calibration_samples(run, samples)
        val_x = as_model_input(split.x[:EVAL_SAMPLES]).numpy()
        val_y = split.y[:EVAL_SAMPLES].numpy()
        report = replace(
            report,
            quantized=quantize_onnx(
                out, quantize, metadata=meta, calibration=calibration, val_x=val_x, val_y=val_y, progress=say
            ),
        )
    return report


def _calibration_samples(run: TrainedRun, fallback: torch.Tensor) -> np.ndarray:
    """Static quantization calibrates on the training split, so the val figures stay honest."""
    try:
        train = run.data.train
    except StudioError:
        return fallback.numpy()
    if not len(train):
        return fallback.numpy()
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(train), generator=gen)[:256]
    return as_model_input(train.x[idx]).numpy()
