"""Prediction from an exported model (or a run's checkpoint), using only what the model file says.

An ONNX file from `studio export` carries its input shape, task, labels and feature names in its
metadata, so images are read and resized here exactly as training did, and CSV columns are picked
by name; no other knowledge of the run is needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from studio.engine.run_dir import RunDir
from studio.errors import CheckpointError, DataError, StudioError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
BATCH = 64
TASKS = ("classification", "regression")
KINDS = ("image", "tabular")
# What a model file may ask one sample to be: 2**24 float32 values (64 MB), over five times the
# largest input the studio trains (3x1024x1024). A larger request is refused before anything is
# allocated; a batch holds at most BATCH_BYTES of input.
MAX_INPUT_VALUES = 2**24
MAX_IMAGE_SIDE = 8192
MAX_LABELS = 100_000
BATCH_BYTES = 256 * 2**20


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
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or not outputs:
            got = ", ".join(f"{i.name}: {i.type}" for i in inputs) or "none"
            raise CheckpointError(
                f"'{self.path}' takes inputs ({got}) and gives {len(outputs)} output(s); the "
                "predictor feeds one float32 tensor and reads the first output"
            )
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.info = self._read_info()

    def _read_info(self) -> ModelInfo:
        meta = self.session.get_modelmeta().custom_metadata_map
        in_dims = list(self.session.get_inputs()[0].shape or [])
        out_dims = list(self.session.get_outputs()[0].shape or [])
        return info_from_metadata(dict(meta), in_dims, out_dims, str(self.path))

    def outputs(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        step = batch_size_for(self.info.input_shape)
        parts = []
        for i in range(0, len(x), step):
            try:
                out = np.asarray(self.session.run([self.output_name], {self.input_name: x[i : i + step]})[0])
            except Exception as exc:  # noqa: BLE001 - onnxruntime's own kinds: the file's graph failed
                text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                raise CheckpointError(f"'{self.path}' failed to run on {list(x.shape[1:])} inputs ({text})") from None
            _check_outputs(out, len(x[i : i + step]), self.info)
            parts.append(out.reshape(len(out), -1))
        return np.concatenate(parts) if parts else np.zeros((0, max(len(self.info.labels), 1)), np.float32)


def _check_outputs(out: np.ndarray, n: int, info: ModelInfo) -> None:
    """The model gave one row per input, as wide as its metadata promised."""
    width = len(info.labels) if info.task == "classification" else 1
    if out.ndim < 1 or out.shape[0] != n or out.size != n * width:
        raise CheckpointError(
            f"'{info.origin}' gave outputs of shape {list(out.shape)} for {n} input(s), "
            f"but its metadata promises {width} value(s) per input"
        )


# -- the metadata of a model file (untrusted: it comes from whoever made the file) -----------------


def _meta_json(meta: dict[str, str], key: str, origin: str) -> Any:
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; deep nesting recurses
        raise CheckpointError(f"'{origin}': its {key} metadata is not valid JSON ({_clip(meta[key])})") from None


def _clip(text: str, limit: int = 40) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _fixed(dim: Any) -> int | None:
    """A dimension the model fixes (ONNX gives a symbolic one as a string or None)."""
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def check_input_shape(shape: Any, origin: str, what: str = "input_shape", raw: str | None = None) -> tuple[int, ...]:
    """A sample's shape, `[F]` or `[C, H, W]`, of small positive ints; else one clear error.

    The bound stops a file from making the predictor allocate without limit (a `[1, 20000, 20000]`
    image would take 1.6 GB a sample).
    """
    ok = (
        isinstance(shape, (list, tuple))
        and len(shape) in (1, 3)
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    )
    if not ok:
        raise CheckpointError(
            f"'{origin}': its {what} {_clip(raw if raw is not None else str(shape))} is not "
            "[features] or [channels, height, width] in positive whole numbers"
        )
    values = math.prod(shape)
    if values > MAX_INPUT_VALUES:
        mb = MAX_INPUT_VALUES * 4 // 2**20
        raise CheckpointError(
            f"'{origin}': its {what} {list(shape)} asks for {values:,} values a sample; "
            f"the predictor takes at most {MAX_INPUT_VALUES:,} ({mb} MB of float32)"
        )
    if len(shape) == 3:
        c, h, w = shape
        if c not in (1, 3):
            raise CheckpointError(
                f"'{origin}': its {what} {list(shape)} has {c} channels; images are read as 1 (grayscale) or 3 (RGB)"
            )
        if max(h, w) > MAX_IMAGE_SIDE:
            raise CheckpointError(
                f"'{origin}': its {what} {list(shape)} asks for {w}x{h} pixel images; "
                f"the predictor resizes to at most {MAX_IMAGE_SIDE} px a side"
            )
    return tuple(int(v) for v in shape)


def _string_list(meta: dict[str, str], key: str, origin: str, limit: int) -> tuple[str, ...]:
    value = _meta_json(meta, key, origin)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CheckpointError(f"'{origin}': its {key} metadata is not a JSON list of names ({_clip(meta[key])})")
    if len(value) > limit:
        raise CheckpointError(f"'{origin}': its {key} metadata lists {len(value):,} names (at most {limit:,})")
    if len(set(value)) != len(value):
        dup = next(v for v in value if value.count(v) > 1)
        raise CheckpointError(f"'{origin}': its {key} metadata names {_clip(dup)} twice")
    return tuple(value)


def info_from_metadata(meta: dict[str, str], in_dims: list[Any], out_dims: list[Any], origin: str) -> ModelInfo:
    """What a model file takes and gives, from its metadata checked against its declared input and output.

    Every field is untrusted: a wrong type, an unknown task or kind, labels that do not match the
    output width, or an input shape that disagrees with the model or is too large is a
    `CheckpointError` that names the field. Files without studio metadata fall back on the graph's
    own shapes (classes by index).
    """
    if len(in_dims) not in (2, 4):
        raise CheckpointError(
            f"'{origin}': its input has shape {in_dims}; the predictor feeds [batch, features] "
            "or [batch, channels, height, width]"
        )
    dims = in_dims[1:]
    if "input_shape" in meta:
        shape = check_input_shape(
            _meta_json(meta, "input_shape", origin), origin, "input_shape metadata", raw=meta["input_shape"]
        )
        declared = [_fixed(d) for d in dims]
        if len(shape) != len(dims) or any(d is not None and d != v for d, v in zip(declared, shape, strict=True)):
            raise CheckpointError(
                f"'{origin}': its input_shape metadata {list(shape)} does not match the "
                f"model's input {['batch'] + [d if d is not None else '?' for d in declared]}"
            )
    else:
        fixed = [_fixed(d) for d in dims]
        if any(d is None for d in fixed):
            raise CheckpointError(
                f"'{origin}' has no fixed input shape (got {dims}) and no "
                "input_shape metadata; export it with `studio export`"
            )
        shape = check_input_shape(fixed, origin, "input")

    if out_dims and len(out_dims) != 2:  # no dims at all: the graph does not say, the outputs are checked
        raise CheckpointError(f"'{origin}': its output has shape {out_dims}; the predictor reads [batch, outputs]")
    width = _fixed(out_dims[-1]) if out_dims else None
    labels = _string_list(meta, "labels", origin, MAX_LABELS) if "labels" in meta else ()
    task = meta.get("task") or ("regression" if width == 1 and not labels else "classification")
    if task not in TASKS:
        raise CheckpointError(f"'{origin}': its task metadata {_clip(task)} is not one of {', '.join(TASKS)}")
    if task == "classification":
        if not labels:
            if width is None:
                raise CheckpointError(
                    f"'{origin}' names no labels and its output width is not fixed "
                    f"({out_dims}); export it with `studio export`"
                )
            if width > MAX_LABELS:
                raise CheckpointError(f"'{origin}': its output has {width:,} classes (at most {MAX_LABELS:,})")
            labels = tuple(str(i) for i in range(width))  # a foreign file: classes by index
        elif width is not None and width != len(labels):
            raise CheckpointError(
                f"'{origin}': its labels metadata names {len(labels)} class(es) but the model gives {width} output(s)"
            )
        if len(labels) < 2:  # softmax over one output says 100% whatever the input
            raise CheckpointError(f"'{origin}': a classifier with {len(labels)} class(es); it needs at least two")
    else:
        if labels:
            raise CheckpointError(f"'{origin}': a regression model with class labels in its metadata")
        if width is not None and width != 1:
            raise CheckpointError(f"'{origin}': a regression model must give one output, this one gives {width}")
    kind = meta.get("kind") or ("image" if len(shape) == 3 else "tabular")
    if kind not in KINDS or (kind == "image") != (len(shape) == 3):
        raise CheckpointError(
            f"'{origin}': its kind metadata {_clip(kind)} does not fit its input shape "
            f"{list(shape)} (image: [C, H, W], tabular: [features])"
        )
    names = _string_list(meta, "feature_names", origin, MAX_INPUT_VALUES) if "feature_names" in meta else ()
    if names and (kind != "tabular" or len(names) != shape[0]):
        raise CheckpointError(
            f"'{origin}': its feature_names metadata names {len(names)} column(s) but the model takes {list(shape)}"
        )
    return ModelInfo(kind, task, shape, labels, names, origin)


def batch_size_for(input_shape: tuple[int, ...]) -> int:
    """Samples a batch holds: up to BATCH, within BATCH_BYTES of float32 input."""
    return max(1, min(BATCH, BATCH_BYTES // (4 * max(1, math.prod(input_shape)))))


class CheckpointPredictor:
    """Runs a run's checkpoint in PyTorch (CPU), for runs not exported yet."""

    def __init__(self, run_dir: str | Path, which: str = "best") -> None:
        from studio.engine.report import load_trained

        run = load_trained(Path(run_dir), which)
        self.model = run.model
        spec = run.spec
        files = RunDir(run.run_dir)
        used = "best" if which == "best" and files.has_checkpoint("best") else "last"
        self.info = ModelInfo(
            spec.kind,
            spec.task,
            tuple(spec.input_shape),
            tuple(spec.labels),
            tuple(spec.feature_names),
            str(files.checkpoint(used)),
        )

    def outputs(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            parts = [
                self.model(torch.from_numpy(np.ascontiguousarray(x[i : i + BATCH], dtype=np.float32))).numpy()
                for i in range(0, len(x), BATCH)
            ]
        return np.concatenate(parts) if parts else np.zeros((0, max(len(self.info.labels), 1)), np.float32)


def exported_model_of(run_dir: str | Path) -> Path | None:
    """RUN_DIR/model.onnx when it exists and is not older than the run's checkpoints."""
    files = RunDir(Path(run_dir))
    onnx_path = files.onnx
    if not onnx_path.is_file():
        return None
    checkpoints = [p for p in (files.checkpoint("best"), files.checkpoint("last")) if p.exists()]
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
    c, h, w = check_input_shape(list(input_shape), "the model")  # refused before a pixel is allocated
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
        pass
    else:
        if h == w:
            return np.asarray(load_image(path, h, c))
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.load()
        img = ImageOps.exif_transpose(opened).convert("L" if c == 1 else "RGB")
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
            found = sorted(
                p for p in f.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + TABLE_SUFFIXES
            )
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


def predict_files(
    predictor: Predictor, files: list[str | Path], top: int = 3, warn: Any = None
) -> Iterator[dict[str, Any]]:
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
    step = batch_size_for(info.input_shape)
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        x = np.stack([load_image_for_model(p, info.input_shape) for p in chunk])
        done_images.update(zip(chunk, describe(predictor.outputs(x), info, top), strict=True))
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
