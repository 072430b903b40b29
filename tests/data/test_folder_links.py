"""Image folders with links and unreadable parts: every file counts once, under its own class and split.

A folder reached twice (a symlink loop, a class folder that links to another, a split folder that
is another split) would multiply samples, give one class's images another's label and put the same
file in train and test; a folder that cannot be listed would silently lose its images.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from image_files import folder_config_toml, write_image

from studio.cli import main
from studio.config import config_from_dict
from studio.data import load_data
from studio.data.folder import list_folder
from studio.errors import DataError


def noise_folder(root: Path, classes: tuple[str, ...] = ("a", "b"), per_class: int = 5) -> list[Path]:
    """root/<class>/<i>.png of random noise (nothing to learn), each file distinct."""
    rng = np.random.default_rng(0)
    return [
        write_image(root / c / f"{i}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
        for c in classes
        for i in range(per_class)
    ]


def folder_config(root: Path, **data: object):
    return config_from_dict({"data": {"source": "folder", "path": str(root), **data}, "train": {"batch_size": 2}})


def split_files(bundle) -> dict[str, list[tuple[Path, str]]]:
    """Per split, (real file, class name) of every sample."""
    out = {}
    for name in ("train", "val", "test"):
        split = getattr(bundle, name)
        out[name] = [
            (Path(os.path.realpath(bundle.paths[int(i)])), bundle.spec.labels[int(y)])
            for i, y in zip(split.indices, split.y, strict=True)
        ]
    return out


def assert_each_file_once_under_its_class(bundle, files: list[Path], class_of=lambda p: p.parent.name) -> None:
    samples = [s for part in split_files(bundle).values() for s in part]
    counts = Counter(path for path, _ in samples)
    assert all(n == 1 for n in counts.values()), [p for p, n in counts.items() if n > 1][:3]
    assert set(counts) == {Path(os.path.realpath(f)) for f in files}
    for path, label in samples:
        assert label == class_of(path), (path, label)


def test_a_symlink_loop_neither_multiplies_nor_relabels_the_images(tmp_path: Path) -> None:
    root = tmp_path / "d"
    files = noise_folder(root)
    os.symlink(".", root / "a" / "self")
    os.symlink("..", root / "b" / "up")
    bundle = load_data(folder_config(root))
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 10
    assert_each_file_once_under_its_class(bundle, files)
    parts = split_files(bundle)
    assert not {p for p, _ in parts["train"]} & {p for p, _ in parts["val"] + parts["test"]}
    [warning] = [w for w in bundle.warnings if "link" in w]
    assert "a/self" in warning and "b/up" in warning and "loop" in warning


def test_a_file_reached_through_two_symlinked_paths_counts_once(tmp_path: Path) -> None:
    root = tmp_path / "d"
    files = noise_folder(root)
    outside = tmp_path / "more-b"  # a class folder may legitimately link to images kept elsewhere
    extra = [write_image(outside / f"x{i}.png", np.full((8, 8), 40 * i, np.uint8)) for i in range(3)]
    os.symlink(outside, root / "b" / "elsewhere")
    os.symlink(outside, root / "b" / "elsewhere-again")
    os.symlink(root / "a" / "0.png", root / "a" / "copy-of-0.png")
    os.symlink("../a/1.png", root / "b" / "stolen.png")  # class a's file must not also count as b
    os.link(root / "a" / "2.png", root / "b" / "hard-linked.png")
    bundle = load_data(folder_config(root))
    assert_each_file_once_under_its_class(
        bundle, files + extra, class_of=lambda p: "b" if p.parent == outside else p.parent.name
    )
    text = "\n".join(bundle.warnings)
    for shown in ("b/elsewhere-again", "a/copy-of-0.png", "b/stolen.png", "b/hard-linked.png"):
        assert shown in text, text


def test_a_class_folder_that_links_to_another_is_skipped_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "d"
    files = noise_folder(root, classes=("a", "c"))
    os.symlink("a", root / "b")
    bundle = load_data(folder_config(root))
    assert bundle.spec.labels == ("a", "c")
    assert_each_file_once_under_its_class(bundle, files)
    assert any("b (leads to a, already read)" in w for w in bundle.warnings), bundle.warnings
    assert not any("without images" in w for w in bundle.warnings), bundle.warnings
    # With only that pair, the one real class is an error that says why the other one is missing.
    solo = tmp_path / "solo"
    noise_folder(solo, classes=("a",))
    os.symlink("a", solo / "b")
    with pytest.raises(DataError, match=r"only one class \('a'\).*b \(leads to a, already read\)"):
        list_folder(solo)


def test_split_layout_never_puts_one_file_in_two_splits(tmp_path: Path) -> None:
    root = tmp_path / "d"
    train = noise_folder(root / "train", per_class=8)
    rng = np.random.default_rng(1)
    test = [write_image(root / "test" / c / "t.png", rng.integers(0, 256, (8, 8), dtype=np.uint8)) for c in "ab"]
    os.symlink("../../train/a/0.png", root / "test" / "a" / "leak.png")
    os.link(root / "train" / "b" / "0.png", root / "test" / "b" / "leak.png")
    os.symlink("../train/b", root / "test" / "c")  # a test class that is train's folder
    os.symlink("train", root / "val")  # the whole val split would be the training set
    bundle = load_data(folder_config(root, val_split=0.25))
    parts = split_files(bundle)
    seen = [{p for p, _ in parts[s]} for s in ("train", "val", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert {p for p, _ in parts["test"]} == {Path(os.path.realpath(p)) for p in test}
    assert len(bundle.val) == 4  # split off train by val_split, the `val` link being ignored
    assert_each_file_once_under_its_class(bundle, train + test)
    text = "\n".join(bundle.warnings)
    assert "same folder as 'train'" in text and "test/a/leak.png" in text and "test/b/leak.png" in text
    assert "test/c (leads to train/b, already read)" in text, text


def _deny_listing_of(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    """os.scandir refuses folders whose mode forbids reading, as the kernel does for a user.

    The suite may run as root, who can list a chmod-000 folder; this makes the listing fail for
    everyone, as it does on a user's machine.
    """
    real_scandir = os.scandir
    denied = {os.path.realpath(f) for f in folders}

    def scandir(path=".", *args, **kwargs):
        if os.path.realpath(os.fspath(path)) in denied and not os.stat(path).st_mode & stat.S_IRUSR:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.fixture
def locked_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "d"
    noise_folder(root, per_class=6)
    locked = root / "a" / "more"
    write_image(locked / "hidden-away.png", np.zeros((8, 8), np.uint8))
    _deny_listing_of(monkeypatch, locked)
    locked.chmod(0)
    yield root
    locked.chmod(0o755)


def test_an_unreadable_subfolder_is_reported(locked_folder: Path) -> None:
    bundle = load_data(folder_config(locked_folder))
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 12
    [warning] = [w for w in bundle.warnings if "could not be read" in w]
    assert "a/more (Permission denied)" in warning


def test_an_unreadable_class_folder_is_reported_not_called_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "d"
    noise_folder(root, classes=("a", "b", "c"))
    _deny_listing_of(monkeypatch, root / "c")
    (root / "c").chmod(0)
    try:
        bundle = load_data(folder_config(root))
    finally:
        (root / "c").chmod(0o755)
    assert bundle.spec.labels == ("a", "b")
    assert any("c (Permission denied)" in w for w in bundle.warnings), bundle.warnings
    assert not any("without images" in w for w in bundle.warnings), bundle.warnings


def test_the_skipped_links_and_folders_reach_the_command_line(
    locked_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.symlink("..", locked_folder / "b" / "up")
    cfg = folder_config_toml(tmp_path, locked_folder)
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert any("a/more (Permission denied)" in w for w in warnings), err
    assert any("b/up (a loop" in w for w in warnings), err
    assert "Traceback" not in err


def test_a_plain_folder_reads_as_before(tmp_path: Path) -> None:
    root = tmp_path / "d"
    files = noise_folder(root)
    write_image(root / "b" / "deeper" / "x.png", np.ones((8, 8), np.uint8))
    listing = list_folder(root)
    assert listing.warnings == []
    assert [Path(p).relative_to(root).as_posix() for p, _ in listing.files["all"]] == [
        f"a/{i}.png" for i in range(5)
    ] + [f"b/{i}.png" for i in range(5)] + ["b/deeper/x.png"]
    assert torch.equal(torch.tensor([c for _, c in listing.files["all"]]), torch.tensor([0] * 5 + [1] * 6))
    assert len(files) == 10
