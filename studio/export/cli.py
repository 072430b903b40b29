"""`studio export` and `studio predict`: thin command-line layers over `export_run` and `predict_files`.

They take plain arguments; parsing the command line stays in `studio.cli`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from studio.errors import StudioError
from studio.export.onnx_export import ExportFailed


def _progress(message: str) -> None:
    print(f"{message}...", file=sys.stderr, flush=True)


def run_export(
    run_dir: str | Path,
    output: str | Path | None = None,
    *,
    checkpoint: str = "best",
    opset: int | None = None,
    quantize: str | None = None,
) -> int:
    """Export, prove, report on stdout; 1 (with one `error:` line) when the file fails the proof."""
    from studio.export.run_export import export_run

    try:
        report = export_run(
            Path(run_dir), output, checkpoint=checkpoint, opset=opset, quantize=quantize, progress=_progress
        )
    except ExportFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.format())
    return 0


def run_predict(model: str | Path, files: Sequence[str], *, top: int = 3) -> int:
    """One JSON line per image or CSV row on stdout; warnings (blank cells filled) go to stderr."""
    from studio.export.predict import open_predictor, predict_files

    if top < 1:
        raise StudioError(f"--top must be >= 1 (got {top})")
    predictor = open_predictor(Path(model))
    for result in predict_files(
        predictor, list(files), top=top, warn=lambda w: print(f"warning: {w}", file=sys.stderr)
    ):
        print(json.dumps(result), flush=True)
    return 0
