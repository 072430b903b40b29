"""What a linear model learned, in the data's own units, and the line a one-feature fit draws.

The studio's `linear` model standardises its inputs and (regression) its target inside the
network, so its raw weight is not the slope a person expects. `linear_parameters` reads the
whole model as the affine map it is, from raw features to raw outputs: the tutorial's line fit
reports slope ≈ 2 and intercept ≈ 1. `fitted_line` gives the Evaluation view the data points
and the model's curve for a one-feature regression (any architecture).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.data.base import DataSpec

LINE_POINTS = 200  # points of the drawn curve: a straight line needs 2, an MLP's curve more


@torch.inference_mode()
def linear_parameters(model: nn.Module, spec: DataSpec, arch: str) -> dict[str, Any] | None:
    """The learned weights and intercept of a `linear` model on tabular data, in raw units; else None.

    Regression: `{"weights": {feature: w}, "intercept": b}` (and `"slope"` for one feature), so
    that prediction = intercept + sum(w * feature). Classification: the same per class, of the
    logits. Computed from the model's outputs at 0 and at each unit vector, in float64.
    """
    if arch != "linear" or spec.kind != "tabular" or not spec.input_shape:
        return None
    n = spec.input_shape[0]
    probe = copy.deepcopy(model).double().eval().cpu()
    x = torch.cat([torch.zeros(1, n, dtype=torch.float64), torch.eye(n, dtype=torch.float64)])
    out = probe(x)  # [1 + F, K]
    intercept = out[0]
    weights = out[1:] - intercept  # [F, K]
    names = spec.feature_names or tuple(f"x{i}" for i in range(n))
    if spec.task == "regression":
        w = {name: float(weights[i, 0]) for i, name in enumerate(names)}
        result: dict[str, Any] = {"weights": w, "intercept": float(intercept[0])}
        if n == 1:
            result["slope"] = w[names[0]]
        return result
    return {
        "weights": {
            label: {name: float(weights[i, k]) for i, name in enumerate(names)} for k, label in enumerate(spec.labels)
        },
        "intercept": {label: float(intercept[k]) for k, label in enumerate(spec.labels)},
    }


@dataclass(frozen=True)
class FittedLine:
    """A one-feature regression: the data points and the model's prediction across their range.

    Plain numpy arrays, so the object crosses from a worker thread to the GUI.
    """

    feature: str  # the x axis's name
    x: np.ndarray  # float64 [N]: the samples' feature values (NaN-free)
    y: np.ndarray  # float64 [N]: their targets
    line_x: np.ndarray  # float64 [LINE_POINTS], from the smallest x to the largest
    line_y: np.ndarray  # float64 [LINE_POINTS]: the model's prediction there


@torch.inference_mode()
def fitted_line(model: nn.Module, spec: DataSpec, x: torch.Tensor, y: torch.Tensor) -> FittedLine | None:
    """The data and the model's line for a regression on one feature; None for anything else."""
    if spec.task != "regression" or spec.kind != "tabular" or spec.input_shape != (1,) or len(y) == 0:
        return None
    xs = x.double().reshape(-1).cpu().numpy()
    ys = y.double().reshape(-1).cpu().numpy()
    keep = np.isfinite(xs)
    xs, ys = xs[keep], ys[keep]
    if len(xs) == 0:
        return None
    grid = np.linspace(float(xs.min()), float(xs.max()), LINE_POINTS)
    model.eval()
    pred = model(torch.from_numpy(grid).float().reshape(-1, 1)).double().reshape(-1).cpu().numpy()
    name = spec.feature_names[0] if spec.feature_names else "x"
    return FittedLine(name, xs, ys, grid, pred)
