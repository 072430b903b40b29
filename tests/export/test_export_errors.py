"""Bad runs and broken files end in one clear `error:` line (exit 2); a failed proof leaves no file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import studio.export.onnx_export as onnx_export
from studio.cli import main
from studio.engine.checkpoint import checkpoint_path
from tests.export.runs import toml_for, train_run, write_line_csv


@pytest.fixture
def line_run(tmp_path: Path) -> Path:
    csv = write_line_csv(tmp_path / "line.csv")
    return train_run(tmp_path, "line", toml_for("csv", "linear", path=csv, target="y", epochs=2))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_run_without_checkpoint(tmp_path: Path, line_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(line_run / "config.toml", bare / "config.toml")
    for argv in (["export", str(bare)], ["predict", str(bare), str(tmp_path / "line.csv")]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and out == ""
        assert_one_error_line(err, "no checkpoint yet")
    assert not (bare / "model.onnx").exists()
    code, _, err = run_cli(["export", str(tmp_path / "missing")], capsys)
    assert code == 2
    assert_one_error_line(err, "not found")


def test_truncated_checkpoint(line_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for which in ("best", "last"):
        path = checkpoint_path(line_run, which)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    for which in ("best", "last"):
        code, out, err = run_cli(["export", str(line_run), "--checkpoint", which], capsys)
        assert code == 2 and out == ""
        assert_one_error_line(err, "truncated or corrupt", f"{which}.pt")
    assert not (line_run / "model.onnx").exists()


class _WritesMarker:
    """Unpickling this calls open(marker, "w"): the file appearing would mean code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_with_pickle_payload_is_refused(
    line_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "payload-ran"
    good = torch.load(checkpoint_path(line_run, "best"), weights_only=True)
    evil = {**good, "model": good["model"], "payload": _WritesMarker(marker)}
    for which in ("best", "last"):
        torch.save(evil, checkpoint_path(line_run, which))
    # The payload is live: an unsafe load of the same kind of file does run it.
    probe_marker, probe = tmp_path / "probe-ran", tmp_path / "probe.pt"
    torch.save({"payload": _WritesMarker(probe_marker)}, probe)
    torch.load(probe, weights_only=False)
    assert probe_marker.exists()
    assert not marker.exists()
    for argv in (["export", str(line_run)], ["predict", str(line_run), str(tmp_path / "line.csv")]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and out == ""
        assert_one_error_line(err, "refusing to load it")
        assert not marker.exists()
    assert not (line_run / "model.onnx").exists()


def test_broken_onnx_file_and_bad_inputs(line_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf at all")
    code, _, err = run_cli(["predict", str(broken), str(tmp_path / "line.csv")], capsys)
    assert code == 2
    assert_one_error_line(err, "broken.onnx", "not a model onnxruntime can run")

    assert run_cli(["export", str(line_run)], capsys)[0] == 0
    onnx_path = line_run / "model.onnx"
    (tmp_path / "other.csv").write_text("height\n1.0\n", encoding="utf-8")
    code, _, err = run_cli(["predict", str(onnx_path), str(tmp_path / "other.csv")], capsys)
    assert code == 2
    assert_one_error_line(err, "missing feature column(s) x")
    code, _, err = run_cli(["predict", str(onnx_path), str(tmp_path / "nowhere.csv")], capsys)
    assert code == 2
    assert_one_error_line(err, "nowhere.csv: file not found")
    (tmp_path / "digit.png").write_bytes(b"\x89PNG not really")
    code, _, err = run_cli(["predict", str(onnx_path), str(tmp_path / "digit.png")], capsys)
    assert code == 2
    assert_one_error_line(err, "takes CSV feature rows")
    code, _, err = run_cli(["predict", str(onnx_path), str(tmp_path / "line.csv"), "--top", "0"], capsys)
    assert code == 2
    assert_one_error_line(err, "--top must be >= 1")
    code, _, err = run_cli(["export", str(line_run), "--opset", "3"], capsys)
    assert code == 2
    assert_one_error_line(err, "--opset must be between")


def test_failed_proof_leaves_no_file(
    line_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = line_run / "deploy" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(b"the user's previous file")
    real_run = onnx_export.run_onnx

    def drifting(session, x, batch_size=64):  # an onnxruntime result 1% off PyTorch
        return real_run(session, x, batch_size) * np.float32(1.01) + np.float32(0.01)

    monkeypatch.setattr(onnx_export, "run_onnx", drifting)
    code, out, err = run_cli(["export", str(line_run), "-o", str(target)], capsys)
    assert code == 1 and out == ""
    assert_one_error_line(
        err, "differs from PyTorch beyond rtol 0.001 / atol 0.0001", "was not written", "dynamo", "torchscript"
    )
    assert target.read_bytes() == b"the user's previous file"  # untouched, and no temp files beside it
    assert sorted(os.listdir(target.parent)) == ["model.onnx"]


def test_torchscript_fallback_is_reported(
    line_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated dynamo failure")

    monkeypatch.setitem(onnx_export.EXPORTERS, "dynamo", broken)
    code, out, _ = run_cli(["export", str(line_run)], capsys)
    assert code == 0
    assert "exporter   torchscript (torch.onnx.export, dynamo=False)" in out
    assert "note: the dynamo exporter failed: RuntimeError: simulated dynamo failure" in out
    assert "onnxruntime vs PyTorch      passed" in out


def test_image_reading_follows_the_model_input_shape(tmp_path: Path) -> None:
    from PIL import Image

    from studio.errors import DataError
    from studio.export.predict import load_image_for_model

    rgb = np.zeros((56, 40, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red: luma 0.299 * 255 = 76
    Image.fromarray(rgb).save(tmp_path / "red.png")
    gray = load_image_for_model(tmp_path / "red.png", (1, 28, 28))
    assert gray.shape == (1, 28, 28) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, 76 / 255, atol=1 / 255)
    color = load_image_for_model(tmp_path / "red.png", [3, 16, 16])
    assert color.shape == (3, 16, 16)
    np.testing.assert_allclose(color[0], 1.0)
    np.testing.assert_allclose(color[1:], 0.0)
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"fake\.png: not an image that can be read"):
        load_image_for_model(tmp_path / "fake.png", (1, 28, 28))
    with pytest.raises(DataError, match="takes feature rows"):
        load_image_for_model(tmp_path / "red.png", (2,))


def test_export_when_the_training_data_changed_or_is_gone(
    line_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "line.csv"
    # A new column since training: the proof cannot use these rows, so it runs on synthetic inputs.
    lines = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join([lines[0] + ",z"] + [ln + ",1.0" for ln in lines[1:]]) + "\n", encoding="utf-8")
    code, out, _ = run_cli(["export", str(line_run)], capsys)
    assert code == 0
    assert "passed on 64 samples from the synthetic inputs" in out
    assert "note: the data no longer matches the run" in out
    csv.unlink()
    code, out, err = run_cli(["export", str(line_run), "-o", str(tmp_path / "again.onnx")], capsys)
    assert code == 2 and out == ""
    assert_one_error_line(err, "line.csv' does not exist")
    assert not (tmp_path / "again.onnx").exists()
