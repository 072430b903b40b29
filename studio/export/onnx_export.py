"""ONNX export with its own proof: `export_onnx(model, example, path)` writes a file only if it works.

The file is written beside `path` under a temporary name, checked by `onnx.checker`, run in
onnxruntime (CPU) against the PyTorch model on real samples, and only then moved to `path` with
`os.replace`. A file that fails the proof never appears where the user asked for one.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import torch
from torch import nn

from studio import __version__
from studio.engine.run_dir import RunDir
from studio.errors import StudioError
from studio.files import TEMP_SUFFIX, temp_prefix, write_error

INPUT_NAME = "input"
OUTPUT_NAME = "output"
PROOF_SAMPLES = 256
RTOL = 1e-3
ATOL = 1e-4
# Below 9 the TorchScript exporter lacks ops every model here uses (Flatten on any axis, Gemm broadcasting).
MIN_OPSET = 9

Progress = Callable[[str], None]


class ExportFailed(Exception):
    """The model could not be exported, or the exported file did not match PyTorch; nothing was written."""


class ExportOptionError(StudioError):
    """An export option the user gave is out of range (an opset the installed onnx cannot write)."""


@dataclass(frozen=True)
class ParityCheck:
    """onnxruntime against PyTorch on the same real samples."""

    samples: int
    max_abs_diff: float
    tolerance_used: float  # worst |diff| / (atol + rtol * |value|): at most 1 passes
    top1_agreement: float | None  # classification only
    rtol: float
    atol: float
    passed: bool
    sample_source: str  # where the samples came from, e.g. "validation split"


@dataclass(frozen=True)
class QuantizeReport:
    """An int8 copy of the exported model: its size and what it costs in accuracy."""

    mode: str  # dynamic | static
    path: str
    size_bytes: int
    size_ratio: float  # int8 size / float32 size
    metric: str  # "accuracy" (classification) or "rmse" (regression)
    float_value: float
    int8_value: float
    samples: int

    @property
    def change(self) -> float:
        return self.int8_value - self.float_value


@dataclass(frozen=True)
class ExportReport:
    """What the user sees after an export: the file, its interface, the exporter and the proof."""

    path: str
    size_bytes: int
    opset: int
    exporter: str  # "dynamo" or "torchscript"
    input_spec: dict[str, Any]
    output_spec: dict[str, Any]
    parity: ParityCheck
    metadata: dict[str, str]
    seconds: float
    notes: tuple[str, ...] = ()  # e.g. why the dynamo exporter was not used
    quantized: QuantizeReport | None = None
    snippet: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["notes"] = list(self.notes)
        if self.quantized is not None:
            out["quantized"]["change"] = self.quantized.change
        return out

    def format(self) -> str:
        """The report as plain text, for the terminal and the GUI."""
        p = self.parity
        lines = [
            f"exported {self.path}",
            f"  size       {_size(self.size_bytes)}",
            f"  exporter   {self.exporter} (torch.onnx.export, dynamo={self.exporter == 'dynamo'}), opset {self.opset}",
            f"  input      {_spec_text(self.input_spec)}",
            f"  output     {_spec_text(self.output_spec)}",
            f"  task       {self.metadata.get('task', '?')}"
            + (
                f", {len(json.loads(self.metadata['labels']))} labels"
                if self.metadata.get("labels", "[]") != "[]"
                else ""
            ),
            "checks",
            "  onnx.checker                passed",
            f"  onnxruntime vs PyTorch      {'passed' if p.passed else 'FAILED'} on {p.samples} samples "
            f"from the {p.sample_source}",
            f"    max abs difference        {p.max_abs_diff:.3g} (allowed: atol {p.atol:g} + rtol {p.rtol:g} x |value|)",
            f"    worst value uses          {p.tolerance_used * 100:.3g}% of its allowed difference",
        ]
        if p.top1_agreement is not None:
            lines.append(f"    top-1 agreement           {p.top1_agreement * 100:.2f}%")
        lines += [f"note: {note}" for note in self.notes]
        q = self.quantized
        if q is not None:
            unit = "%" if q.metric == "accuracy" else ""
            scale = 100.0 if q.metric == "accuracy" else 1.0
            lines += [
                f"int8 ({q.mode} quantization) {q.path}",
                f"  size       {_size(q.size_bytes)} ({q.size_ratio:.2f}x the float32 file)",
                f"  {q.metric:<10} {q.float_value * scale:.4g}{unit} -> {q.int8_value * scale:.4g}{unit} "
                f"({q.change * scale:+.3g}{unit}) on {q.samples} validation samples",
            ]
        lines += ["", "run it with onnxruntime:", self.snippet]
        return "\n".join(lines)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _spec_text(spec: dict[str, Any]) -> str:
    shape = ", ".join(str(d) for d in spec["shape"])
    return f"'{spec['name']}' {spec['dtype']} [{shape}]" + (f": {spec['meaning']}" if spec.get("meaning") else "")


# -- metadata ---------------------------------------------------------------------------------


def model_metadata(spec: Any, extra: dict[str, Any] | None = None) -> dict[str, str]:
    """metadata_props for a `DataSpec` (contract: labels, task, input_shape, studio_version), as strings."""
    meta: dict[str, str] = {
        "labels": json.dumps(list(spec.labels)),
        "task": spec.task,
        "input_shape": json.dumps(list(spec.input_shape)),
        "studio_version": __version__,
        "kind": spec.kind,
        "source": spec.source,
    }
    if spec.kind == "image":
        meta["input_range"] = "pixels in [0, 1], NCHW"
    else:
        meta["feature_names"] = json.dumps(list(spec.feature_names))
        meta["input_range"] = "raw feature values (NaN = blank, filled with the training mean)"
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    return meta


def run_snippet(path: str | Path, meta: dict[str, str]) -> str:
    """About ten lines of Python that run the file with onnxruntime, for the report."""
    shape = json.loads(meta.get("input_shape", "[]"))
    lines = [
        "import json",
        "import numpy as np",
        "import onnxruntime as ort",
        *(["from PIL import Image"] if meta.get("kind") == "image" else []),
        f"session = ort.InferenceSession({str(path)!r}, providers=['CPUExecutionProvider'])",
        "meta = session.get_modelmeta().custom_metadata_map",
    ]
    if meta.get("kind") == "image" and len(shape) == 3:
        c, h, w = shape
        mode, layout = ("L", "[None, None]") if c == 1 else ("RGB", ".transpose(2, 0, 1)[None]")
        lines += [
            f"img = Image.open('image.png').convert({mode!r}).resize(({w}, {h}))",
            f"x = (np.asarray(img, dtype=np.float32) / 255.0){layout}  # [1, {c}, {h}, {w}], pixels in [0, 1]",
        ]
    else:
        names = json.loads(meta.get("feature_names", "[]")) or [f"f{i}" for i in range(shape[0] if shape else 1)]
        lines.append(
            f"x = np.array([[{', '.join('0.0' for _ in names)}]], dtype=np.float32)  # raw values of {', '.join(names)}"
        )
    lines.append("out = session.run(['output'], {'input': x})[0]")
    if meta.get("task") == "classification":
        lines.append("print(json.loads(meta['labels'])[int(out[0].argmax())])")
    else:
        lines.append("print(float(out[0, 0]))")
    return "\n".join(lines)


# -- the export --------------------------------------------------------------------------------


def _export_dynamo(model: nn.Module, x: torch.Tensor, dst: Path, opset: int | None) -> None:
    batch = torch.export.Dim("batch")
    # The exporter prints its stages; they would corrupt the CLI's stdout, so they are captured.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (x,),
            None,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        if program is None:
            raise RuntimeError("torch.onnx.export returned no program")
        program.save(str(dst), external_data=False)


def _export_torchscript(model: nn.Module, x: torch.Tensor, dst: Path, opset: int | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated; it is only the fallback
        torch.onnx.export(
            model,
            (x,),
            str(dst),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset or 17,
            dynamo=False,
            do_constant_folding=True,
        )


EXPORTERS: dict[str, Callable[[nn.Module, torch.Tensor, Path, int | None], None]] = {
    "dynamo": _export_dynamo,
    "torchscript": _export_torchscript,
}


def check_opset(opset: int | None) -> None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not MIN_OPSET <= opset <= newest:
        raise ExportOptionError(f"--opset must be between {MIN_OPSET} and {newest} (got {opset})")


def write_metadata(path: Path, meta: dict[str, str]) -> int:
    """Set metadata_props, keep the file self-contained; returns the default-domain opset."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "studio"
    proto.producer_version = __version__
    proto.doc_string = (
        f"studio {meta.get('task', '')} model; input '{INPUT_NAME}': "
        f"{meta.get('input_range', 'raw values')}; output '{OUTPUT_NAME}': "
        + ("logits" if meta.get("task") == "classification" else "prediction in target units")
    )
    onnx.save(proto, str(path))
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def run_onnx(session: Any, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Outputs of an onnxruntime session over `x`, in batches."""
    outs = [session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,), dtype=np.float32)


def ort_session(path: str | Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def compare_outputs(
    reference: np.ndarray,
    candidate: np.ndarray,
    classification: bool,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    sample_source: str = "validation split",
) -> ParityCheck:
    """Max abs/relative difference and top-1 agreement; passes when every value is within tolerance."""
    ref = reference.astype(np.float64)
    got = candidate.astype(np.float64)
    if ref.shape != got.shape:
        return ParityCheck(
            len(ref), float("inf"), float("inf"), 0.0 if classification else None, rtol, atol, False, sample_source
        )
    both_nan = np.isnan(ref) & np.isnan(got)
    diff = np.where(both_nan, 0.0, np.abs(ref - got))
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only is a mismatch
    allowed = atol + rtol * np.abs(np.nan_to_num(ref))
    used = diff / allowed
    passed = bool(np.all(diff <= allowed))
    top1 = None
    if classification and len(ref):
        top1 = float(np.mean(ref.argmax(axis=1) == got.argmax(axis=1)))
    return ParityCheck(
        len(ref), float(diff.max(initial=0.0)), float(used.max(initial=0.0)), top1, rtol, atol, passed, sample_source
    )


def _io_spec(session: Any, meta: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    def spec(arg: Any, meaning: str) -> dict[str, Any]:
        shape = [d if isinstance(d, int) else str(d or "batch") for d in arg.shape]
        return {
            "name": arg.name,
            "dtype": arg.type.replace("tensor(", "").rstrip(")"),
            "shape": shape,
            "meaning": meaning,
        }

    classification = meta.get("task") == "classification"
    return (
        spec(session.get_inputs()[0], meta.get("input_range", "")),
        spec(
            session.get_outputs()[0],
            "logits (softmax gives probabilities)" if classification else "prediction in the target's units",
        ),
    )


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    metadata: dict[str, str] | None = None,
    opset: int | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    sample_source: str = "validation split",
    exporters: tuple[str, ...] = ("dynamo", "torchscript"),
    progress: Progress | None = None,
) -> ExportReport:
    """Export `model` (in eval mode) to `path` and prove the file matches PyTorch on `example`.

    `example` holds real raw inputs (float32, the first axis is the batch); up to 256 of them are
    run through both PyTorch and onnxruntime. The dynamo exporter is tried first, then the
    TorchScript one; the first file that passes `onnx.checker` and the parity check is moved to
    `path`. Raises `ExportFailed` (and leaves `path` as it was) when none does.
    """
    import onnx

    check_opset(opset)
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    path = Path(path)
    if path.is_dir():
        raise ExportOptionError(f"'{path}' is a folder; give a file name such as {path / RunDir.ONNX}")
    if example.ndim < 2 or example.shape[0] == 0:
        raise ExportFailed("there are no samples to check the exported model against")
    samples = example[:PROOF_SAMPLES].float().contiguous()
    # Batch 2 at trace time: a batch of 1 would let the exporter fold the batch axis to a constant.
    trace_x = samples[:2] if len(samples) >= 2 else samples.repeat(2, *([1] * (samples.ndim - 1)))
    meta = dict(metadata or {})
    classification = meta.get("task", "classification") == "classification"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportOptionError(f"cannot create the folder '{path.parent}' ({exc.strerror})") from None

    was_training = model.training
    model.eval()
    failures: list[str] = []
    try:
        with torch.inference_mode():
            reference = model(samples).float().numpy()
        for name in exporters:
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
            except OSError as exc:
                raise write_error(exc, path) from None
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                say(f"exporting with the {name} exporter")
                try:
                    EXPORTERS[name](model, trace_x, tmp, opset)
                except Exception as exc:  # noqa: BLE001 - any exporter failure means: try the next one
                    if _is_storage_error(exc):  # a full disk fails every exporter alike: say so instead
                        raise write_error(exc, path) from None
                    failures.append(f"the {name} exporter failed: {first_line(exc)}")
                    continue
                try:
                    opset_used = write_metadata(tmp, meta)
                except OSError as exc:
                    raise write_error(exc, path) from None
                say("checking the graph (onnx.checker)")
                try:
                    onnx.checker.check_model(str(tmp), full_check=True)
                except Exception as exc:  # noqa: BLE001 - onnx raises several kinds
                    failures.append(f"the {name} exporter's file fails onnx.checker: {first_line(exc)}")
                    continue
                say(f"comparing onnxruntime with PyTorch on {len(samples)} samples")
                try:
                    session = ort_session(tmp)
                    got = run_onnx(session, samples.numpy())
                except Exception as exc:  # noqa: BLE001 - onnxruntime cannot load or run it
                    failures.append(f"onnxruntime cannot run the {name} exporter's file: {first_line(exc)}")
                    continue
                parity = compare_outputs(
                    reference, got, classification, rtol=rtol, atol=atol, sample_source=sample_source
                )
                if not parity.passed:
                    agree = (
                        f", top-1 agreement {parity.top1_agreement * 100:.1f}%"
                        if parity.top1_agreement is not None
                        else ""
                    )
                    failures.append(
                        f"the {name} exporter's file differs from PyTorch beyond rtol {rtol:g} / "
                        f"atol {atol:g}: max abs difference {parity.max_abs_diff:.3g} on "
                        f"{parity.samples} samples{agree}"
                    )
                    continue
                input_spec, output_spec = _io_spec(session, meta)
                del session  # Windows cannot replace a file onnxruntime holds open
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise write_error(exc, path) from None
                return ExportReport(
                    path=str(path),
                    size_bytes=path.stat().st_size,
                    opset=opset_used,
                    exporter=name,
                    input_spec=input_spec,
                    output_spec=output_spec,
                    parity=parity,
                    metadata=meta,
                    seconds=time.perf_counter() - started,
                    notes=tuple(failures),
                    snippet=run_snippet(path, meta),
                )
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        model.train(was_training)
    raise ExportFailed(f"no valid ONNX file could be made, so '{path}' was not written: " + "; ".join(failures))


def _is_storage_error(exc: BaseException) -> TypeGuard[OSError]:
    return isinstance(exc, OSError) and exc.errno in (
        errno.ENOSPC,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        getattr(errno, "EDQUOT", -1),
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__
