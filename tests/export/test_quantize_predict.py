"""int8 copies report their size and accuracy; `predict` picks the right model and reads CSV rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from studio.cli import main
from studio.engine.checkpoint import checkpoint_path
from studio.export.predict import CheckpointPredictor, OnnxPredictor, open_predictor
from tests.export.runs import toml_for, train_run, write_blobs_csv


@pytest.fixture
def blobs_run(tmp_path: Path) -> Path:
    csv = write_blobs_csv(tmp_path / "zones.csv", n=300)
    return train_run(
        tmp_path,
        "zones",
        toml_for(
            "csv", "mlp", path=csv, target="zone", epochs=3, lr=0.05, extra_data='blank_cells = "mean"\n', hidden="[32]"
        ),
    )


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_quantized_copy_reports_size_and_accuracy(
    mode: str, blobs_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["export", str(blobs_run), "--quantize", mode]) == 0
    out = capsys.readouterr().out
    int8 = blobs_run / "model.int8.onnx"
    assert int8.is_file() and (blobs_run / "model.onnx").is_file()
    assert f"int8 ({mode} quantization)" in out and "x the float32 file" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("accuracy"))
    assert "on 30 validation samples" in line
    meta = {p.key: p.value for p in onnx.load(str(int8)).metadata_props}
    assert json.loads(meta["labels"]) == ["north", "south", "west"] and meta["quantization"] == f"int8 {mode}"
    # The int8 file still predicts the well-separated zones.
    predictor = OnnxPredictor(int8)
    x = np.array([[0.0, 5.0], [0.0, -5.0], [-5.0, 0.0]], dtype=np.float32)
    assert predictor.outputs(x).argmax(1).tolist() == [0, 1, 2]
    assert not [f for f in os.listdir(blobs_run) if f.startswith(".")]  # no temp files left


def test_predict_csv_rows_and_model_choice(blobs_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("height,width,comment\n5.1,0.2,a\n-4.8,,b\n0.3,-5.2,c\n", encoding="utf-8")
    # Not exported yet: the checkpoint predicts.
    assert isinstance(open_predictor(blobs_run), CheckpointPredictor)
    capsys.readouterr()
    assert main(["predict", str(blobs_run), str(rows), "--top", "2"]) == 0
    from_checkpoint = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in from_checkpoint] == ["north", "south", "west"]
    assert [r["row"] for r in from_checkpoint] == [1, 2, 3]
    assert all(len(r["top"]) == 2 and 0.5 < r["probability"] <= 1 for r in from_checkpoint)

    assert main(["export", str(blobs_run)]) == 0
    assert isinstance(open_predictor(blobs_run), OnnxPredictor)
    capsys.readouterr()
    assert main(["predict", str(blobs_run), str(rows), "--top", "2"]) == 0
    captured = capsys.readouterr()
    from_onnx = [json.loads(ln) for ln in captured.out.splitlines()]
    assert [r["label"] for r in from_onnx] == ["north", "south", "west"]
    for a, b in zip(from_checkpoint, from_onnx, strict=True):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)
    assert "blank cell(s) will be filled with the training mean" in captured.err

    # Training that goes on after the export makes model.onnx stale: the checkpoint is used again.
    later = (blobs_run / "model.onnx").stat().st_mtime + 10
    os.utime(checkpoint_path(blobs_run, "last"), (later, later))
    assert isinstance(open_predictor(blobs_run), CheckpointPredictor)
