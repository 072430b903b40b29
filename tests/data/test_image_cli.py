"""Robustness through the command line: odd image folders train with a warning or end in one `error:` line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from image_files import folder_config_toml, write_digit_folder, write_image
from PIL import Image

from studio.cli import main


def _train(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str], *sets: str, run: str = "run"
) -> tuple[int, str]:
    cfg = folder_config_toml(tmp_path, root)
    args = ["train", str(cfg), "--run-dir", str(tmp_path / run), "--quiet"]
    for item in sets:
        args += ["--set", item]
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_corrupt_and_zero_byte_images_among_good_ones_train_with_a_warning(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=8, classes=(0, 1))
    (root / "0" / "zero.png").write_bytes(b"")
    (root / "1" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    code, err = _train(tmp_path, root, capsys)
    assert code == 0
    assert "warning:" in err and "skipped 2 file(s)" in err and "zero.png" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"


def test_text_files_are_ignored_and_a_folder_of_only_text_is_an_error(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=6, classes=(0, 1))
    (root / "0" / "labels.txt").write_text("zero")
    (root / "1" / "notes.csv").write_text("a,b\n1,2\n")
    assert _train(tmp_path, root, capsys)[0] == 0
    text_only = tmp_path / "t"
    for c in ("a", "b"):
        (text_only / c).mkdir(parents=True)
        (text_only / c / "readme.txt").write_text("hi")
    code, err = _train(tmp_path, text_only, capsys, run="run2")
    assert code == 2 and "no images found" in _one_error(err)


def test_single_class_is_an_error(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=6, classes=(4,))
    code, err = _train(tmp_path, root, capsys)
    assert code == 2 and "only one class ('4')" in _one_error(err)


def test_empty_folder_is_an_error(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    root.mkdir()
    code, err = _train(tmp_path, root, capsys)
    assert code == 2 and "empty" in _one_error(err)


def test_mixed_sizes_and_modes_train_with_a_warning(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    modes = ["L", "RGB", "RGBA", "P", "LA", "1"]
    for c in ("a", "b"):
        for i, mode in enumerate(modes):
            size = (16, 16) if i % 2 else (24 + i, 20)
            write_image(root / c / f"{i}.png", rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8), mode)
        write_image(root / c / "photo.jpg", rng.integers(0, 255, (30, 30, 3), dtype=np.uint8))
    code, err = _train(tmp_path, root, capsys)
    assert code == 0 and "resized to 16x16" in err
    with Image.open(next(root.glob("a/1.png"))) as im:
        assert im.mode == "RGB"


def test_batch_size_larger_than_the_data_set_trains_with_a_warning(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=5, classes=(0, 1))
    code, err = _train(tmp_path, root, capsys, "train.batch_size=500", "train.epochs=2")
    assert code == 0 and "batch size 500 is larger than the 10 training samples" in err
    records = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "step"] == [1, 2]  # one batch an epoch


def test_a_folder_over_the_memory_budget_trains_through_dataloader_workers(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=6, classes=(0, 1, 2))
    code, err = _train(tmp_path, root, capsys, "data.memory_budget_mb=0", "data.num_workers=2")
    assert code == 0 and "decoded while training (2 workers)" in err
    assert main(["eval", str(tmp_path / "run")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3 and report["labels"] == ["0", "1", "2"]


def test_resnet18_trains_on_small_images_and_refuses_unsafe_weights(tmp_path, capsys) -> None:
    import torch

    root = tmp_path / "d"
    write_digit_folder(root, per_class=4, classes=(0, 1), size=12)
    code, err = _train(tmp_path, root, capsys, 'model.arch="resnet18"', "train.batch_size=4")
    assert code == 0, err
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"conv1.weight": torch.zeros(1), "note": Path("x")}, unsafe)
    code, err = _train(
        tmp_path, root, capsys, 'model.arch="resnet18"', f'model.weights="{unsafe.as_posix()}"', run="run2"
    )
    assert code == 2 and "cannot load safely" in _one_error(err)


@pytest.mark.parametrize("name", ["folder", "mnist", "fashion-mnist", "cifar10"])
def test_image_example_configs_load(name: str) -> None:
    from studio.config import load_config

    cfg = load_config(f"examples/{name}.toml")
    assert cfg.data.source == name


def test_the_folder_example_trains_on_its_bundled_shapes(tmp_path, capsys) -> None:
    code = main(
        ["train", "examples/folder.toml", "--run-dir", str(tmp_path / "run"), "--quiet", "--set", "train.epochs=1"]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1
