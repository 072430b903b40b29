"""What must hold: the line fit through ONNX, and held-out digits through onnxruntime.

The full held-out check (lenet, >= 0.955) trains on all the digits for a few epochs, so it is
marked slow; a small version of the same pipeline runs with the fast tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

import studio.data as data
from studio.cli import main
from studio.data.digits import load_digits
from studio.engine.report import load_trained
from tests.export.runs import tiny_digits, toml_for, train_run, write_line_csv


def onnx_predict(path: Path, x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Run the file the way a deployer would: raw inputs in, class names from the `labels` metadata."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels = json.loads(session.get_modelmeta().custom_metadata_map["labels"])
    out = session.run(["output"], {"input": x.astype(np.float32)})[0]
    return out, labels


def heldout_accuracy(path: Path, images: np.ndarray, targets: np.ndarray) -> float:
    """uint8 digits [N, 28, 28] as pixels / 255, NCHW; a prediction counts when its class name is the digit."""
    out, labels = onnx_predict(path, images[:, None].astype(np.float32) / 255.0)
    names = [labels[i] for i in out.argmax(axis=1)]
    return float(np.mean([name == str(t) for name, t in zip(names, targets, strict=True)]))


def write_digit_pngs(root: Path, images: np.ndarray, targets: np.ndarray) -> Path:
    for i, (img, t) in enumerate(zip(images, targets, strict=True)):
        folder = root / str(int(t))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    return root


def test_line_fit_through_onnx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_line_csv(tmp_path / "line.csv")
    # The walkthrough fits all 100 points, so nothing is held out.
    toml = toml_for(
        "csv",
        "linear",
        path=csv,
        target="y",
        epochs=100,
        lr=0.01,
        optimizer="sgd",
        extra_data="val_split = 0.0\ntest_split = 0.0\n",
    )
    run_dir = train_run(tmp_path, "line", toml)
    assert main(["export", str(run_dir)]) == 0
    (tmp_path / "query.csv").write_text("x\n1.5\n3.5\n4.8\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(run_dir / "model.onnx"), str(tmp_path / "query.csv")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["row"] for r in rows] == [1, 2, 3]
    xs = np.array([1.5, 3.5, 4.8])
    predicted = np.array([r["prediction"] for r in rows])
    direct, _ = onnx_predict(run_dir / "model.onnx", xs[:, None])
    np.testing.assert_allclose(direct[:, 0], predicted, rtol=1e-6)
    miss = np.abs(predicted - (2 * xs + 1))
    assert miss.max() <= 0.12, f"line fit: predictions {predicted.round(4).tolist()}, miss {miss.round(4).tolist()}"
    # The report's snippet feeds x = 0 and prints the intercept the model learned.
    zero, _ = onnx_predict(run_dir / "model.onnx", np.zeros((1, 1)))
    assert float(run_report_snippet(run_dir, tmp_path, monkeypatch, capsys)) == pytest.approx(float(zero[0, 0]))


def test_digit_pngs_predict_like_onnxruntime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The small version: a lenet on 1,500 digits, then digits it never saw, as PNGs and as arrays."""
    monkeypatch.setitem(data.LOADERS, "digits", tiny_digits(1500, 28))
    run_dir = train_run(tmp_path, "lenet", toml_for("digits", "lenet", epochs=2, lr=0.003))
    assert main(["export", str(run_dir)]) == 0
    images, targets, _ = load_digits()
    held_x, held_y = images[7000:, 0].numpy(), targets[7000:].numpy()
    # The report's snippet runs as printed and names the digit in image.png.
    Image.fromarray(held_x[0]).save(tmp_path / "image.png")
    out, labels = onnx_predict(run_dir / "model.onnx", held_x[:1, None].astype(np.float32) / 255.0)
    assert run_report_snippet(run_dir, tmp_path, monkeypatch, capsys) == labels[int(out[0].argmax())]
    accuracy = heldout_accuracy(run_dir / "model.onnx", held_x, held_y)
    assert accuracy >= 0.8, f"lenet on 1,500 digits, 2 epochs: held-out accuracy {accuracy:.4f}"
    # `studio predict` on the same digits written as PNGs gives the same classes as onnxruntime.
    pngs = write_digit_pngs(tmp_path / "pngs", held_x[:40], held_y[:40])
    capsys.readouterr()
    assert main(["predict", str(run_dir / "model.onnx"), str(pngs), "--top", "3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 40 and all(len(r["top"]) == 3 and r["top"][0][0] == r["label"] for r in rows)
    out, labels = onnx_predict(run_dir / "model.onnx", held_x[:40, None].astype(np.float32) / 255.0)
    by_file = {Path(r["file"]).name: r for r in rows}
    for i in range(40):
        row = by_file[f"{i:05d}.png"]
        assert row["label"] == labels[int(out[i].argmax())]
        probs = np.exp(out[i] - out[i].max()) / np.exp(out[i] - out[i].max()).sum()
        assert abs(row["probability"] - probs.max()) < 1e-5


def run_report_snippet(
    run_dir: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """Execute the report's snippet as a user would paste it, in a folder holding its image.png."""
    from studio.engine.report import load_trained as _load
    from studio.export.onnx_export import model_metadata, run_snippet

    snippet = run_snippet(run_dir / "model.onnx", model_metadata(_load(run_dir).spec))
    assert len(snippet.splitlines()) <= 10
    monkeypatch.chdir(workdir)
    capsys.readouterr()
    exec(compile(snippet, "snippet.py", "exec"), {})
    return capsys.readouterr().out.strip()


@pytest.mark.slow
def test_heldout_digits_lenet_digits_source(tmp_path: Path) -> None:
    """lenet on the bundled digits source; its test split was never trained or selected on."""
    run_dir = train_run(tmp_path, "lenet", toml_for("digits", "lenet", epochs=8, lr=0.002))
    assert main(["export", str(run_dir)]) == 0
    test = load_trained(run_dir).data.test
    accuracy = heldout_accuracy(run_dir / "model.onnx", test.x[:, 0].numpy(), test.y.numpy())
    assert accuracy >= 0.955, f"lenet, digits source, 8 epochs: held-out accuracy {accuracy:.4f} on {len(test)} digits"


@pytest.mark.slow
def test_heldout_digits_lenet_png_folder(tmp_path: Path) -> None:
    """The issue's check: lenet trained on the digits written as a PNG folder, run on digits it never saw."""
    images, targets, _ = load_digits()
    x, y = images[:, 0].numpy(), targets.numpy()
    root = write_digit_pngs(tmp_path / "digits", x[:7000], y[:7000])
    run_dir = train_run(tmp_path, "lenet", toml_for("folder", "lenet", path=root, epochs=8, lr=0.002))
    assert main(["export", str(run_dir)]) == 0
    accuracy = heldout_accuracy(run_dir / "model.onnx", x[7000:], y[7000:])
    assert accuracy >= 0.955, f"lenet, PNG folder, 8 epochs: held-out accuracy {accuracy:.4f} on 1000 digits"
