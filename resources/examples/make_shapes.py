"""Regenerate `shapes/`: 3 classes x 100 small RGB PNGs (circle, square, triangle), numpy seed 0.

The folder is what `folder.toml` trains on out of the box; it is tiny on purpose (a few hundred KB
at most), so the example runs offline in seconds. Run: python resources/examples/make_shapes.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 32
PER_CLASS = 100


def draw(kind: str, rng: np.random.Generator) -> Image.Image:
    bg = tuple(int(v) for v in rng.integers(0, 90, 3))
    fg = tuple(int(v) for v in rng.integers(120, 256, 3))
    im = Image.new("RGB", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(im)
    r = int(rng.integers(7, 13))
    cx, cy = (int(v) for v in rng.integers(r + 1, SIZE - r - 1, 2))
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return im


def main() -> None:
    root = Path(__file__).resolve().parent / "shapes"
    rng = np.random.default_rng(0)
    for kind in ("circle", "square", "triangle"):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            draw(kind, rng).save(root / kind / f"{i:03d}.png", optimize=True)


if __name__ == "__main__":
    main()
