"""`studio export` and `studio predict`: thin command-line layers over `export_run` and `predict_files`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.errors import StudioError
from studio.export.onnx_export import ExportFailed


def _progress(message: str) -> None:
    print(f"{message}...", file=sys.stderr, flush=True)


def run_export(args: argparse.Namespace) -> int:
    """Export, prove, report on stdout; 1 (with one `error:` line) when the file fails the proof."""
    from studio.export.run_export import export_run

    try:
        report = export_run(Path(args.run_dir), args.output, checkpoint=args.checkpoint, opset=args.opset,
                            quantize=getattr(args, "quantize", None), progress=_progress)
    except ExportFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.format())
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """One JSON line per image or CSV row on stdout; warnings (blank cells filled) go to stderr."""
    from studio.export.predict import open_predictor, predict_files

    if args.top < 1:
        raise StudioError(f"--top must be >= 1 (got {args.top})")
    predictor = open_predictor(Path(args.model))
    for result in predict_files(predictor, args.files, top=args.top,
                                warn=lambda w: print(f"warning: {w}", file=sys.stderr)):
        print(json.dumps(result), flush=True)
    return 0
