"""int8 copies of an exported model through `onnxruntime.quantization`, with what they cost in accuracy.

`dynamic` quantizes weights ahead of time and activations on the fly (no calibration data);
`static` also fixes activation ranges from calibration samples of the training split (QDQ format).
Either way the copy is written atomically beside the float32 file and measured on the validation
split against the float32 file, so the user sees the size saved and the accuracy lost.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from studio.export.onnx_export import (
    INPUT_NAME,
    ExportFailed,
    Progress,
    QuantizeReport,
    first_line,
    ort_session,
    run_onnx,
    write_metadata,
)
from studio.files import TEMP_SUFFIX, temp_prefix

MODES = ("dynamic", "static")
CALIBRATION_SAMPLES = 256


def quantized_path(path: str | Path) -> Path:
    """`model.onnx` -> `model.int8.onnx`, beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.int8{path.suffix or '.onnx'}")


class _Calibration:
    """The `CalibrationDataReader` protocol over a float32 array, one sample batch at a time."""

    def __init__(self, x: np.ndarray, batch_size: int = 32) -> None:
        self._batches = iter([x[i : i + batch_size] for i in range(0, len(x), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}

    def rewind(self) -> None:  # the interface asks for it; one pass over the samples is enough here
        pass


def _metric(outputs: np.ndarray, y: np.ndarray, classification: bool) -> float:
    if classification:
        return float(np.mean(outputs.argmax(axis=1) == y))
    return float(np.sqrt(np.mean((outputs.reshape(-1) - y.reshape(-1).astype(np.float64)) ** 2)))


def quantize_onnx(
    src: str | Path,
    mode: str,
    *,
    metadata: dict[str, str],
    calibration: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    dst: str | Path | None = None,
    progress: Progress | None = None,
) -> QuantizeReport:
    """Write an int8 copy of `src` (default `<stem>.int8.onnx`) and measure it on `val_x`/`val_y`."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode not in MODES:
        raise ExportFailed(f"quantization mode must be one of {', '.join(MODES)} (got {mode!r})")
    say = progress or (lambda _msg: None)
    src = Path(src)
    dst = Path(dst) if dst is not None else quantized_path(src)
    classification = metadata.get("task") == "classification"
    # Named like every temp file of ours, so the next export of this file clears one a kill left.
    workdir = tempfile.mkdtemp(prefix=temp_prefix(dst), suffix=TEMP_SUFFIX, dir=dst.parent)
    pre = Path(workdir) / "pre.onnx"
    out = Path(workdir) / "int8.onnx"
    try:
        say(f"quantizing to int8 ({mode})")
        try:
            # Shape inference and graph clean-up first, as onnxruntime's quantization guide asks.
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            if mode == "dynamic":
                quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8)
            else:
                quantize_static(
                    str(pre),
                    str(out),
                    _Calibration(calibration[:CALIBRATION_SAMPLES]),
                    quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                )
            write_metadata(out, {**metadata, "quantization": f"int8 {mode}"})
            onnx.checker.check_model(str(out))
        except Exception as exc:  # noqa: BLE001 - the quantizer raises many kinds
            raise ExportFailed(
                f"int8 {mode} quantization failed ({first_line(exc)}); the float32 file '{src}' is fine"
            ) from None
        say("measuring the int8 model on the validation split")
        try:
            float_out = run_onnx(ort_session(src), val_x)
            int8_out = run_onnx(ort_session(out), val_x)
        except Exception as exc:  # noqa: BLE001 - onnxruntime cannot run the quantized graph
            raise ExportFailed(
                f"onnxruntime cannot run the int8 {mode} model ({first_line(exc)}); the float32 file '{src}' is fine"
            ) from None
        os.replace(out, dst)
    finally:
        for leftover in Path(workdir).iterdir():
            leftover.unlink(missing_ok=True)
        os.rmdir(workdir)
    size = dst.stat().st_size
    return QuantizeReport(
        mode=mode,
        path=str(dst),
        size_bytes=size,
        size_ratio=size / max(src.stat().st_size, 1),
        metric="accuracy" if classification else "rmse",
        float_value=_metric(float_out, val_y, classification),
        int8_value=_metric(int8_out, val_y, classification),
        samples=len(val_x),
    )
