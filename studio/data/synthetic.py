"""The textbook line-fit walkthrough: y = 2x + 1 + N(0, 0.5), 100 points with x evenly in [0, 5]."""

from __future__ import annotations

import numpy as np
import torch


def make_line(seed: int, n: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Return features float32 [n, 1] and targets float32 [n]; numpy's legacy seeding, as tutorials do."""
    x = np.linspace(0.0, 5.0, n)
    y = 2.0 * x + 1.0 + np.random.RandomState(seed).normal(0.0, 0.5, n)
    return torch.tensor(x, dtype=torch.float32).unsqueeze(1), torch.tensor(y, dtype=torch.float32)
