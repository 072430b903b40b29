"""The `folder` source: both layouts, every format and mode, sizes, and the bad and odd files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from image_files import write_digit_folder, write_image
from PIL import Image

from studio.config import config_from_dict
from studio.data import image_stats, load_data
from studio.data.images import ImageFiles, load_image
from studio.errors import DataError


def folder_config(root: Path, **data: object):
    return config_from_dict({"data": {"source": "folder", "path": str(root), **data}, "train": {"batch_size": 2}})


def test_class_layout_sorted_labels_exact_pixels_and_train_only_statistics(tmp_path: Path) -> None:
    root = tmp_path / "d"
    written = write_digit_folder(root, per_class=10, classes=(2, 0, 1))
    bundle = load_data(folder_config(root))
    assert bundle.spec.labels == ("0", "1", "2")
    assert bundle.spec.input_shape == (1, 28, 28)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (24, 3, 3)
    assert bundle.warnings == []
    # Every sample is the file's exact pixels, under the label of its folder.
    for split in (bundle.train, bundle.val, bundle.test):
        for pos in range(len(split)):
            path = Path(bundle.paths[int(split.indices[pos])])
            assert torch.equal(split.x[pos, 0], torch.from_numpy(written[path]))
            assert bundle.spec.labels[int(split.y[pos])] == path.parent.name
    mean, std = image_stats(bundle.train.x)
    assert bundle.spec.mean == pytest.approx(mean) and bundle.spec.std == pytest.approx(std)
    everything = torch.cat([bundle.train.x, bundle.val.x, bundle.test.x])
    assert bundle.spec.mean != pytest.approx(image_stats(everything)[0], abs=1e-9)


def test_split_layout_uses_the_folders_and_fills_a_missing_test_split(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root / "train", per_class=10, classes=(0, 1))
    write_digit_folder(root / "valid", per_class=3, classes=(0, 1))
    bundle = load_data(folder_config(root, test_split=0.2))
    assert bundle.spec.labels == ("0", "1")
    assert len(bundle.val) == 6  # the `valid` folder, whatever val_split says
    assert len(bundle.test) == 4 and len(bundle.train) == 16  # test split off train by test_split
    val_files = {Path(bundle.paths[int(i)]).parent.parent.name for i in bundle.val.indices}
    assert val_files == {"valid"}
    write_digit_folder(root / "test", per_class=2, classes=(0, 1))
    bundle = load_data(folder_config(root, test_split=0.2))
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (20, 6, 4)


def test_split_layout_rejects_a_class_that_has_no_training_images(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root / "train", per_class=4, classes=(0, 1))
    write_digit_folder(root / "val", per_class=2, classes=(0, 7))
    with pytest.raises(DataError, match=r"'7'.*every val class needs training images"):
        load_data(folder_config(root))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".PNG"])
def test_every_format_is_read(tmp_path: Path, suffix: str) -> None:
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        for i in range(3):
            write_image(root / c / f"{i}{suffix}", rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert len(bundle.train) == 6 and bundle.spec.input_shape == (3, 12, 12)
    assert bundle.warnings == []


def _modes_folder(root: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)
    write_image(root / "a" / "rgb.png", rgb)
    write_image(root / "a" / "rgba.png", rgb, "RGBA")
    write_image(root / "a" / "palette.png", rgb, "P")
    write_image(root / "b" / "gray.png", rgb[..., 0])
    write_image(root / "b" / "gray_alpha.png", rgb[..., 0], "LA")
    write_image(root / "b" / "wide.png", (rgb[..., 0].astype(np.uint16) * 257), "I;16")


def test_modes_convert_consistently_and_channels_come_from_the_data(tmp_path: Path) -> None:
    root = tmp_path / "d"
    _modes_folder(root)
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert bundle.spec.input_shape == (3, 10, 10)  # one colour image makes the set RGB
    x = {Path(bundle.paths[int(i)]).name: bundle.train.x[p] for p, i in enumerate(bundle.train.indices)}
    assert torch.equal(x["rgba.png"], x["rgb.png"])  # alpha dropped, as torchvision's loader does
    gray = x["gray.png"]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert torch.equal(x["wide.png"], gray)  # 16-bit scaled to 8-bit, not clipped to white
    assert torch.equal(x["gray_alpha.png"], gray)
    one = load_data(folder_config(root, channels=1, val_split=0.0, test_split=0.0))
    assert one.spec.input_shape == (1, 10, 10)


def test_grayscale_only_folder_is_one_channel_and_can_be_forced_to_three(tmp_path: Path) -> None:
    root = tmp_path / "d"
    rng = np.random.default_rng(2)
    for c in ("a", "b"):
        g = rng.integers(0, 255, (9, 9), dtype=np.uint8)
        write_image(root / c / "l.png", g)
        write_image(root / c / "p.gif", g, "P")  # a palette of grays is still grayscale
    assert load_data(folder_config(root, val_split=0.0, test_split=0.0)).spec.input_shape == (1, 9, 9)
    three = load_data(folder_config(root, channels=3, val_split=0.0, test_split=0.0))
    assert three.spec.input_shape == (3, 9, 9)
    assert torch.equal(three.train.x[:, 0], three.train.x[:, 2])


def test_image_size_defaults_to_the_most_common_size_and_warns_about_the_others(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for c in ("a", "b"):
        for i in range(3):
            write_image(root / c / f"{i}.png", np.full((20, 20), 100 + i, np.uint8))
        write_image(root / c / "wide.png", np.full((10, 40), 50, np.uint8))
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert bundle.spec.input_shape == (1, 20, 20)
    assert any("2 sizes" in w and "resized to 20x20" in w for w in bundle.warnings)
    assert bundle.image_sizes == {"20x20": 6, "40x10": 2}
    small = load_data(folder_config(root, image_size=8, val_split=0.0, test_split=0.0))
    assert small.spec.input_shape == (1, 8, 8)


def test_default_size_is_capped(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for c in ("a", "b"):
        write_image(root / c / "big.jpg", np.zeros((300, 260, 3), np.uint8))
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert bundle.spec.input_shape == (3, 224, 224)
    assert any("260x300" in w and "224x224" in w for w in bundle.warnings)


def test_corrupt_zero_byte_and_truncated_files_are_skipped_with_one_warning(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=5, classes=(0, 1))
    (root / "0" / "empty.png").write_bytes(b"")
    (root / "1" / "garbage.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    good = next((root / "0").glob("*.png")).read_bytes()
    (root / "1" / "truncated.png").write_bytes(good[: len(good) // 2])
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert len(bundle.train) == 10
    skipped = [w for w in bundle.warnings if "skipped" in w]
    assert len(skipped) == 1 and "3 file(s)" in skipped[0]
    assert "empty.png" in skipped[0] and "garbage.jpg" in skipped[0] and "truncated.png" in skipped[0]


def test_non_image_and_hidden_files_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=4, classes=(0, 1))
    (root / "0" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("about the data")
    (root / ".ipynb_checkpoints").mkdir()
    write_image(root / ".ipynb_checkpoints" / "x.png", np.zeros((28, 28), np.uint8))
    write_image(root / "1" / ".hidden.png", np.zeros((28, 28), np.uint8))
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert bundle.spec.labels == ("0", "1") and len(bundle.train) == 8


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "the folder is empty"),
        ("single", "only one class ('0')"),
        ("text", "no images found (2 other file(s) ignored"),
        ("loose", "not in class subfolders"),
        ("broken", "none of the 4 image file(s) could be read"),
    ],
)
def test_unusable_folders_are_clear_errors(tmp_path: Path, case: str, message: str) -> None:
    root = tmp_path / "d"
    root.mkdir()
    if case == "single":
        write_digit_folder(root, per_class=3, classes=(0,))
    elif case == "text":
        for c in ("a", "b"):
            (root / c).mkdir()
            (root / c / "notes.txt").write_text("hello")
    elif case == "loose":
        write_image(root / "x.png", np.zeros((4, 4), np.uint8))
    elif case == "broken":
        for c in ("a", "b"):
            (root / c).mkdir()
            (root / c / "1.png").write_bytes(b"")
            (root / c / "2.png").write_bytes(b"\x89PNG nope")
    with pytest.raises(DataError) as info:
        load_data(folder_config(root))
    assert message in str(info.value)
    assert str(root) in str(info.value)


def test_a_file_path_is_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "x.png"
    write_image(f, np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="is a file"):
        load_data(folder_config(f))


def test_strong_class_imbalance_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=30, classes=(0,))
    write_digit_folder(root, per_class=3, classes=(1,))
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert any("imbalance" in w and "'0' has 30" in w and "'1' only 3" in w for w in bundle.warnings)


def test_empty_class_folder_is_ignored_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=3, classes=(0, 1))
    (root / "2").mkdir()
    bundle = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert bundle.spec.labels == ("0", "1")
    assert any("without images" in w and "'2'" in w for w in bundle.warnings)


def test_over_the_memory_budget_the_splits_decode_on_demand(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root, per_class=10, classes=(0, 1))
    fast = load_data(folder_config(root))
    lazy = load_data(folder_config(root, memory_budget_mb=0))
    assert isinstance(lazy.train.x, ImageFiles) and isinstance(fast.train.x, torch.Tensor)
    assert any("memory_budget_mb" in w for w in lazy.warnings)
    assert lazy.spec == fast.spec
    assert torch.equal(lazy.train.x.decode(), fast.train.x)
    assert torch.equal(lazy.train.y, fast.train.y)


def test_load_image_is_the_shared_conversion(tmp_path: Path) -> None:
    a = np.arange(64, dtype=np.uint8).reshape(8, 8)
    path = write_image(tmp_path / "x.png", a)
    assert load_image(path, 8, 1).tolist() == [a.tolist()]
    rgb = load_image(path, 4, 3)
    assert rgb.shape == (3, 4, 4) and (rgb[0] == rgb[1]).all()
    with Image.open(path) as im:
        expected = np.asarray(im.resize((4, 4), Image.Resampling.BILINEAR))
    assert (rgb[0] == expected).all()


def test_stray_folders_beside_the_split_folders_are_ignored_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_digit_folder(root / "train", per_class=5, classes=(0, 1))
    write_digit_folder(root / "test", per_class=2, classes=(0, 1))
    write_digit_folder(root / "extra", per_class=2, classes=(5,))
    bundle = load_data(folder_config(root))
    assert bundle.spec.labels == ("0", "1") and len(bundle.test) == 4
    assert any("'extra'" in w and "split layout" in w for w in bundle.warnings)


@pytest.mark.parametrize("odd", ["colour", "size"])
def test_large_folders_read_in_one_pass_give_what_the_careful_path_gives(
    tmp_path: Path, odd: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio.data.folder as folder

    root = tmp_path / "d"
    rng = np.random.default_rng(3)
    for c in ("a", "b"):
        for i in range(20):
            write_image(root / c / f"{i:02d}.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    for i in range(25):  # what a small header sample can miss: the most common size, or a colour image
        shape = (8, 8, 3) if odd == "colour" and i < 2 else (12, 12) if odd == "size" else (8, 8)
        write_image(root / "b" / f"odd{i:02d}.png", rng.integers(0, 255, shape, dtype=np.uint8))
    (root / "a" / "broken.png").write_bytes(b"")
    careful = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    monkeypatch.setattr(folder, "SAMPLED_PROBES", 3)
    calls = []
    real = folder.decode_images
    monkeypatch.setattr(folder, "decode_images", lambda *a: calls.append(a[1:]) or real(*a))
    quick = load_data(folder_config(root, val_split=0.0, test_split=0.0))
    assert quick.spec == careful.spec and quick.warnings == careful.warnings
    assert torch.equal(quick.train.x, careful.train.x) and torch.equal(quick.train.y, careful.train.y)
    assert quick.paths == careful.paths and quick.image_sizes == careful.image_sizes
    c, h, _ = careful.spec.input_shape
    assert calls and calls[-1][:2] == (h, c)  # the pass that counted decoded at the right shape


@pytest.mark.parametrize("budget", [2048, 0])
def test_the_data_explorer_overview_reads_folders_in_memory_and_on_disk(tmp_path: Path, budget: int) -> None:
    from studio.data.overview import data_overview

    root = tmp_path / "d"
    written = write_digit_folder(root, per_class=6, classes=(0, 1))
    write_image(root / "1" / "big.png", np.zeros((40, 40), np.uint8))
    cfg = folder_config(root, memory_budget_mb=budget)
    overview = data_overview(cfg, per_class=3)
    assert overview.image_sizes == {"28×28": 12, "40×40": 1}  # the sizes before resizing
    assert sum(sum(c) for c in overview.counts.values()) == 13
    bundle = load_data(cfg)
    originals = {tuple(a.flatten().tolist()) for a in written.values()} | {(0,) * 784}
    for images in overview.samples.values():
        assert images.shape == (3, 1, 28, 28)
        assert all(tuple(img[0].flatten().tolist()) in originals for img in images)
    assert overview.pixel_mean == bundle.spec.mean
