"""How much a network shrinks an image before its first block: the stem, chosen by image size.

A stride-1 stem on a 64 px image (the CIFAR recipe) costs 16x what the ImageNet stem costs, and
a 28 px digit through the ImageNet stem is 7 px before the first block. So the stem's stride
follows the size: small inputs keep every pixel, mid-sized ones are halved, large ones get the
full ImageNet stem (/4). The first block then sees at most about 48 px a side until the image
passes 192 px, and the cost per image grows with the pixels instead of jumping 16x at a threshold.
"""

from __future__ import annotations

SMALL_MAX = 48  # px, longest side: up to here the stem keeps every pixel (stride 1)
LARGE_MIN = 96  # px: from here the full ImageNet stem (/4); in between, /2


def stem_stride(size: int) -> int:
    """1, 2 or 4: how much the stem shrinks an image whose longest side is `size` px."""
    if size <= SMALL_MAX:
        return 1
    return 2 if size < LARGE_MIN else 4
