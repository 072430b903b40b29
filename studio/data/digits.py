"""The bundled offline default: 8,000 real MNIST digits (MIT licence, see resources/)."""

from __future__ import annotations

import numpy as np
import torch

from studio.resources import resource_path


def load_digits() -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Return images uint8 [8000, 1, 28, 28], labels int64 [8000] and the class names."""
    with np.load(resource_path("mnist-8k.npz")) as npz:
        images = torch.from_numpy(npz["images"]).unsqueeze(1).contiguous()
        labels = torch.from_numpy(npz["labels"].astype(np.int64))
    return images, labels, tuple(str(i) for i in range(10))
