"""Every architecture on image and CSV data exports, passes the proof, and predicts as PyTorch does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import studio.data as data
from studio.cli import main
from studio.engine.report import load_trained
from studio.export.predict import OnnxPredictor
from studio.export.run_export import as_model_input
from tests.export.runs import tiny_digits, toml_for, train_run, write_blobs_csv, write_line_csv

IMAGE_ARCHS = ["softmax", "mlp", "lenet", "cnn", "resnet18", "mobilenet_v3_small", "vit", "linear"]
SMALL_VIT = "depth = 2\ndim = 32\nheads = 2\n"


def export_and_check(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """`studio export RUN_DIR`: exit 0, the report's proof figures, and the contract's metadata."""
    capsys.readouterr()
    assert main(["export", str(run_dir)]) == 0
    out = capsys.readouterr().out
    path = run_dir / "model.onnx"
    assert path.is_file()
    assert "onnx.checker                passed" in out
    assert "onnxruntime vs PyTorch      passed on" in out
    assert "max abs difference" in out and "session.run(['output']" in out
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    run = load_trained(run_dir)
    assert json.loads(meta["labels"]) == list(run.spec.labels)
    assert meta["task"] == run.spec.task
    assert json.loads(meta["input_shape"]) == list(run.spec.input_shape)
    assert meta["studio_version"]
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the batch axis is symbolic
    return path, out


def assert_same_predictions(run_dir: Path, path: Path) -> None:
    """onnxruntime and PyTorch agree on every validation sample, at batch 1 and at the full batch."""
    run = load_trained(run_dir)
    x = as_model_input(run.data.val.x)
    with torch.inference_mode():
        expected = run.model(x).numpy()
    predictor = OnnxPredictor(path)
    got = predictor.outputs(x.numpy())
    single = predictor.outputs(x.numpy()[:1])
    assert got.shape == expected.shape and single.shape == (1, *expected.shape[1:])
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(single, expected[:1], rtol=1e-3, atol=1e-4)
    if run.spec.task == "classification":
        assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize(
    "arch", [pytest.param(a, marks=pytest.mark.slow) if a == "resnet18" else a for a in IMAGE_ARCHS]
)
def test_image_architectures_export_and_match(
    arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # resnet18 keeps its stride-1 stem on small inputs, so it gets 8 px digits to train in seconds.
    monkeypatch.setitem(data.LOADERS, "digits", tiny_digits(150, 8) if arch == "resnet18" else tiny_digits())
    # Dropout in the mlp: the proof only passes if the model really exports in eval mode.
    dropout = "dropout = 0.5\n" if arch in ("mlp", "vit") else ""
    extra = dropout + (SMALL_VIT if arch == "vit" else "")
    run_dir = train_run(tmp_path, arch, toml_for("digits", arch, extra_model=extra))
    path, out = export_and_check(run_dir, capsys)
    assert "exporter   dynamo" in out
    assert "top-1 agreement           100.00%" in out
    assert_same_predictions(run_dir, path)


@pytest.mark.parametrize("arch", ["softmax", "mlp", "linear"])
def test_csv_classifiers_export_and_match(arch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_blobs_csv(tmp_path / "zones.csv")
    run_dir = train_run(
        tmp_path,
        arch,
        toml_for("csv", arch, path=csv, target="zone", epochs=3, lr=0.05, extra_data='blank_cells = "mean"\n'),
    )
    path, _ = export_and_check(run_dir, capsys)
    assert_same_predictions(run_dir, path)
    # Blank cells go in as NaN and the graph fills them with the training mean, as PyTorch does.
    run = load_trained(run_dir)
    x = np.array([[np.nan, 5.0], [0.0, np.nan]], dtype=np.float32)
    with torch.inference_mode():
        expected = run.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(OnnxPredictor(path).outputs(x), expected, rtol=1e-3, atol=1e-4)
    assert np.isfinite(expected).all()


@pytest.mark.parametrize("arch", ["mlp", "linear"])
def test_csv_regression_exports_and_matches(arch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_line_csv(tmp_path / "line.csv")
    run_dir = train_run(tmp_path, arch, toml_for("csv", arch, path=csv, target="y", epochs=2))
    path, out = export_and_check(run_dir, capsys)
    assert "top-1" not in out  # regression has no classes to agree on
    assert_same_predictions(run_dir, path)
