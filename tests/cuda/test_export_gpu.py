"""Export of a GPU-trained run: the checkpoint loads on the CPU and the ONNX file passes onnxruntime's proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import Config, with_overrides
from studio.engine.checkpoint import load_checkpoint
from studio.engine.trainer import Trainer
from studio.export.run_export import export_run

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_gpu_trained_run_exports_and_passes_the_proof(tmp_path: Path, precision: str) -> None:
    run = tmp_path / "run"
    c = with_overrides(
        Config(), ['train.device="cuda"', 'model.arch="lenet"', "train.epochs=1", f'train.precision="{precision}"']
    )
    Trainer(c, run).fit()
    weights = load_checkpoint(run / "checkpoints" / "best.pt")["model"]
    assert all(t.device.type == "cpu" for t in weights.values())  # saved from the GPU, read anywhere
    report = export_run(run)
    assert Path(report.path).is_file()
    assert report.parity.passed and report.parity.samples > 0
    assert report.parity.top1_agreement is not None and report.parity.top1_agreement >= 0.99
