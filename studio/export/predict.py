"""Prediction from an exported model (or a run's checkpoint), using only what the model file says.

An ONNX file from `studio export` carries its input shape, task, labels and feature names in its
metadata, so images are read and resized here exactly as training did, and CSV columns are picked
by name; no other knowledge of the run is needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from studio.errors import CheckpointError, DataError, StudioError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
BATCH = 64


@dataclass(frozen=True)
class ModelInfo:
    """What a predictor takes and gives."""

    kind: str  # image | tabular
    task: str  # classification | regression
    input_shape: tuple[int, ...]
    labels: tuple[str, ...]
    feature_names: tuple[str, ...]
    origin: str  # shown to the user: which file predicts


class Predictor(Protocol):
    info: ModelInfo

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs (logits or predictions) for float32 inputs `[N, *input_shape]`."""
        ...


# -- predictors --------------------------------------------------------------------------------


class OnnxPredictor:
    """Runs an exported `.onnx` file in onnxruntime (CPU)."""

    def __init__(self, path: str | Path) -> None:
        from studio.export.onnx_export import ort_session

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"model file '{self.path}' not found")
        try:
            self.session = ort_session(self.path)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds for a bad file
            text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"'{self.path}' is not a model onnxruntime can run ({text})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.info = self._read_info()

    def _read_info(self) -> ModelInfo:
        meta = self.session.get_modelmeta().custom_metadata_map
        dims = self.session.get_inputs()[0].shape[1:]

        def load(key: str, default: Any) -> Any:
            try:
                return json.loads(meta[key]) if key in meta else default
            except json.JSONDecodeError:
                raise CheckpointError(f"'{self.path}': its '{key}' metadata is not valid JSON") from None

        shape = tuple(int(d) for d in load("input_shape", [d if isinstance(d, int) else -1 for d in dims]))
        if any(d < 1 for d in shape):
            raise CheckpointError(f"'{self.path}' has no fixed input shape (got {list(dims)}) and no "
                                  "input_shape metadata; export it with `studio export`")
        out_dims = self.session.get_outputs()[0].shape
        width = out_dims[-1] if out_dims and isinstance(out_dims[-1], int) else None
        labels = tuple(str(v) for v in load("labels", []))
        task = meta.get("task") or ("regression" if width == 1 and not labels else "classification")
        if task == "classification" and not labels and width:
            labels = tuple(str(i) for i in range(width))  # a foreign file: classes by index
        kind = meta.get("kind") or ("image" if len(shape) == 3 else "tabular")
        return ModelInfo(kind, task, shape, labels, tuple(load("feature_names", [])), str(self.path))

    def outputs(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        parts = [self.session.run([self.output_name], {self.input_name: x[i:i + BATCH]})[0]
                 for i in range(0, len(x), BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, max(len(self.info.labels), 1)), np.float32)


class CheckpointPredictor:
    """Runs a run's checkpoint in PyTorch (CPU), for runs not exported yet."""

    def __init__(self, run_dir: str | Path, which: str = "best") -> None:
        from studio.engine.report import load_trained

        run = load_trained(Path(run_dir), which)
        self.model = run.model
        spec = run.spec
        used = "best" if which == "best" and (run.run_dir / "checkpoints" / "best.pt").exists() else "last"
        self.info = ModelInfo(spec.kind, spec.task, tuple(spec.input_shape), tuple(spec.labels),
                              tuple(spec.feature_names), str(run.run_dir / "checkpoints" / f"{used}.pt"))

    def outputs(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            parts = [self.model(torch.from_numpy(np.ascontiguousarray(x[i:i + BATCH], dtype=np.float32))).numpy()
                     for i in range(0, len(x), BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, max(len(self.info.labels), 1)), np.float32)


def exported_model_of(run_dir: str | Path) -> Path | None:
    """RUN_DIR/model.onnx when it exists and is not older than the run's checkpoints."""
    run_dir = Path(run_dir)
    onnx_path = run_dir / "model.onnx"
    if not onnx_path.is_file():
        return None
    checkpoints = [p for p in (run_dir / "checkpoints" / "best.pt", run_dir / "checkpoints" / "last.pt") if p.exists()]
    newest = max((p.stat().st_mtime for p in checkpoints), default=0.0)
    # Training that went on after the export makes the file stale: the checkpoint is the truth then.
    return onnx_path if onnx_path.stat().st_mtime >= newest else None


def open_predictor(target: str | Path, which: str = "best") -> Predictor:
    """A predictor for `MODEL.onnx` or `RUN_DIR` (its up-to-date model.onnx, else its checkpoint)."""
    target = Path(target)
    if target.is_dir():
        exported = exported_model_of(target)
        return OnnxPredictor(exported) if exported is not None else CheckpointPredictor(target, which)
    if not target.exists():
        raise CheckpointError(f"'{target}' not found (give a model.onnx file or a run directory)")
    if target.suffix.lower() != ".onnx":
        raise CheckpointError(f"'{target}' is neither an .onnx file nor a run directory")
    return OnnxPredictor(target)


# -- inputs ------------------------------------------------------------------------------------


def load_image_for_model(path: str | Path, input_shape: tuple[int, ...] | list[int]) -> np.ndarray:
    """Read one image as the model takes it: float32 `[C, H, W]`, pixels in [0, 1].

    Channels and size come from the model's `input_shape` only. The file is decoded by the
    training decoder, `studio.data.images.load_image` (EXIF orientation, alpha dropped, 16-bit
    scaled, luma for gray, bilinear squash resize), so a deployed model sees what training saw;
    builds without the image sources use the same PIL steps here.
    """
    path = Path(path)
    if len(input_shape) != 3:
        raise DataError(f"{path}: the model takes feature rows {list(input_shape)}, not images")
    c, h, w = (int(v) for v in input_shape)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        pixels = _decode(path, c, h, w)
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"{path}: not an image that can be read ({type(exc).__name__})") from None
    return pixels.astype(np.float32) / np.float32(255.0)


def _decode(path: Path, c: int, h: int, w: int) -> np.ndarray:
    """uint8 `[C, H, W]`, decoded exactly as the training data was."""
    try:
        from studio.data.images import load_image  # the image sources' decoder (square sizes)
    except ImportError:
        load_image = None
    if load_image is not None and h == w:
        return np.asarray(load_image(path, h, c))
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        img = img.convert("L" if c == 1 else "RGB")
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        a = np.array(img)
    return a[None] if c == 1 else np.ascontiguousarray(a.transpose(2, 0, 1))


def read_feature_rows(path: str | Path, feature_names: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Feature rows of a CSV, columns picked by name; blank cells become NaN (the model fills them)."""
    from studio.data.tabular import load_table

    if not feature_names:
        raise DataError(f"{path}: the model file names no feature columns, so a CSV cannot be matched to it")
    table = load_table(Path(path), "", "mean", feature_names=tuple(feature_names))
    return table.features.numpy().astype(np.float32), table.warnings


def expand_inputs(files: list[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the images and CSVs inside it (sorted, recursively)."""
    out: list[Path] = []
    for f in map(Path, files):
        if f.is_dir():
            found = sorted(p for p in f.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + TABLE_SUFFIXES)
            if not found:
                raise DataError(f"{f}: the folder holds no images or CSV files")
            out += found
        elif not f.exists():
            raise DataError(f"{f}: file not found")
        else:
            out.append(f)
    return out


# -- outputs -----------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def describe(outputs: np.ndarray, info: ModelInfo, top: int = 3) -> list[dict[str, Any]]:
    """Per sample: `{"label", "probability", "top": [[label, p], ...]}` or `{"prediction"}`."""
    if info.task != "classification":
        return [{"prediction": _num(float(v))} for v in outputs.reshape(len(outputs), -1)[:, 0]]
    probs = softmax(outputs)
    k = max(1, min(top, probs.shape[1]))
    rows = []
    for p in probs:
        order = np.argsort(-p, kind="stable")[:k]
        ranked = [[_label(info, int(i)), round(float(p[i]), 6)] for i in order]
        rows.append({"label": ranked[0][0], "probability": ranked[0][1], "top": ranked})
    return rows


def _label(info: ModelInfo, i: int) -> str:
    return info.labels[i] if i < len(info.labels) else str(i)


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def predict_files(predictor: Predictor, files: list[str | Path], top: int = 3,
                  warn: Any = None) -> Iterator[dict[str, Any]]:
    """One result per image, one per CSV row (with its `row`, 1-based as in a spreadsheet's data)."""
    info = predictor.info
    paths = expand_inputs(files)
    images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    for p in paths:
        if p.suffix.lower() not in IMAGE_SUFFIXES + TABLE_SUFFIXES:
            raise DataError(f"{p}: not an image ({', '.join(IMAGE_SUFFIXES)}) or a CSV file")
        if info.kind == "image" and p.suffix.lower() in TABLE_SUFFIXES:
            raise DataError(f"{p}: this model takes images {list(info.input_shape)}, not CSV rows")
        if info.kind == "tabular" and p.suffix.lower() in IMAGE_SUFFIXES:
            raise DataError(f"{p}: this model takes CSV feature rows ({', '.join(info.feature_names)}), not images")
    done_images: dict[Path, dict[str, Any]] = {}
    for start in range(0, len(images), BATCH):
        chunk = images[start:start + BATCH]
        x = np.stack([load_image_for_model(p, info.input_shape) for p in chunk])
        for p, result in zip(chunk, describe(predictor.outputs(x), info, top)):
            done_images[p] = result
    for p in paths:
        if p in done_images:
            yield {"file": str(p), **done_images[p]}
            continue
        x, warnings = read_feature_rows(p, info.feature_names)
        for w in warnings:
            if warn is not None:
                warn(w)
        for i, result in enumerate(describe(predictor.outputs(x), info, top), start=1):
            yield {"file": str(p), "row": i, **result}


def predict_features(predictor: Predictor, values: list[float], top: int = 3) -> dict[str, Any]:
    """One prediction from typed feature values (NaN for a blank one)."""
    info = predictor.info
    if info.kind != "tabular":
        raise StudioError("this model takes images, not feature values")
    if len(values) != info.input_shape[0]:
        raise DataError(f"the model needs {info.input_shape[0]} feature values (got {len(values)})")
    x = np.asarray([values], dtype=np.float32)
    return describe(predictor.outputs(x), info, top)[0]
