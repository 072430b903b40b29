"""Small real image files written with PIL, in the layouts users bring (shared by the data tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.data.digits import load_digits


def write_image(path: Path, array: np.ndarray, mode: str | None = None, fmt: str | None = None) -> Path:
    """Write one image file (format from the suffix unless `fmt`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    im.save(path, format=fmt)
    return path


def write_digit_folder(
    root: Path, per_class: int = 12, classes: tuple[int, ...] = (0, 1, 2), suffix: str = ".png", size: int | None = None
) -> dict[Path, np.ndarray]:
    """root/<digit>/<i>.png from the bundled digits; returns each file's pixels as written."""
    x, y, _ = load_digits()
    written: dict[Path, np.ndarray] = {}
    for c in classes:
        picks = np.flatnonzero(y.numpy() == c)[:per_class]
        for i in picks:
            a = x[i, 0].numpy()
            if size is not None:
                a = np.asarray(Image.fromarray(a).resize((size, size)))
            written[write_image(root / str(c) / f"{i:05d}{suffix}", a)] = a
    return written


def folder_config_toml(tmp_path: Path, root: Path, extra: str = "", name: str = "run.toml") -> Path:
    """A small, fast training config for a folder (tiny MLP, one epoch, CPU)."""
    path = tmp_path / name
    path.write_text(
        f"""seed = 0
[data]
source = "folder"
path = "{root.as_posix()}"
[model]
arch = "mlp"
hidden = [16]
[train]
epochs = 1
batch_size = 16
device = "cpu"
{extra}
""",
        encoding="utf-8",
    )
    return path
