"""Evaluation under inference mode: loss and accuracy, and the full report for `studio eval`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.data.base import DataSpec


def loss_scale(loss_name: str, spec: DataSpec) -> float:
    """Regression trains on standardised targets; this factor reports MSE and L1 in the target's units."""
    if spec.task != "regression":
        return 1.0
    s = spec.target_std
    return {"mse": s * s, "l1": s, "auto": s * s}.get(loss_name, 1.0)


def compute_loss(out: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, spec: DataSpec) -> torch.Tensor:
    """The training loss; regression compares standardised values so any target scale trains well."""
    if spec.task == "regression":
        m, s = spec.target_mean, spec.target_std
        return loss_fn((out[:, 0].float() - m) / s, (y.float() - m) / s)
    return loss_fn(out.float(), y)


@torch.inference_mode()
def predict_all(model: nn.Module, source: Any, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and targets for every sample of a source, in order, on the CPU."""
    model.eval()
    outs, ys = [], []
    order = torch.arange(len(source))
    for x, y in source.batches(order, 0, lambda: batch_size, augment=False):
        outs.append(model(x).float().cpu())
        ys.append(y.cpu())
    if not outs:
        return torch.empty(0), torch.empty(0)
    return torch.cat(outs), torch.cat(ys)


@torch.inference_mode()
def evaluate(
    model: nn.Module, source: Any, loss_fn: nn.Module, spec: DataSpec, loss_name: str = "auto", batch_size: int = 1024
) -> dict[str, float | None]:
    """Mean loss (in reporting units) and accuracy (classification) over a source; None when empty.

    Regression adds `rmse` and `mae` in the target's units and `r2`, the figures a person reads
    where classification shows accuracy.
    """
    if source is None or len(source) == 0:
        return {"loss": None, "accuracy": None}
    model.eval()
    # The sums stay on the device and are read once at the end: reading them per batch would wait
    # for the GPU each time. float64, as the Python floats they replace, so the figures are the same.
    total: torch.Tensor | float = 0.0
    correct: torch.Tensor | int = 0
    n = 0
    regression = spec.task == "regression"
    # Regression: squared and absolute errors, and the centred targets' sum and squares (for R²).
    sq: torch.Tensor | float = 0.0
    ab: torch.Tensor | float = 0.0
    dev: torch.Tensor | float = 0.0
    dev_sq: torch.Tensor | float = 0.0
    order = torch.arange(len(source))
    for x, y in source.batches(order, 0, lambda: batch_size, augment=False):
        out = model(x)
        total = total + compute_loss(out, y, loss_fn, spec).double() * len(y)
        if spec.task == "classification":
            correct = correct + (out.argmax(dim=1) == y).sum()
        elif regression:
            err = out[:, 0].double() - y.double()
            centred = y.double() - spec.target_mean
            sq = sq + (err * err).sum()
            ab = ab + err.abs().sum()
            dev = dev + centred.sum()
            dev_sq = dev_sq + (centred * centred).sum()
        n += len(y)
    acc = int(correct) / n if spec.task == "classification" else None
    result: dict[str, float | None] = {"loss": float(total) / n * loss_scale(loss_name, spec), "accuracy": acc}
    if regression:
        sq_f, dev_f = float(sq), float(dev)
        ss_tot = float(dev_sq) - dev_f * dev_f / n
        result |= {"rmse": math.sqrt(sq_f / n), "mae": float(ab) / n, "r2": 1.0 - sq_f / ss_tot if ss_tot > 0 else None}
    return result


REGRESSION_FIGURES = ("rmse", "mae", "r2")


def train_rmse(loss: float, spec: DataSpec, loss_name: str) -> dict[str, float | None]:
    """`{"rmse": ...}` of a regression's training epoch when its loss is the MSE (in the target's
    units squared), else `{}`: the running train loss is all the loop keeps of that epoch."""
    if spec.task != "regression" or loss_name not in ("auto", "mse") or not loss >= 0:
        return {}
    return {"rmse": math.sqrt(loss)}


def classification_report(out: torch.Tensor, y: torch.Tensor, labels: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, confusion matrix (rows = true class), per-class precision/recall/F1/support."""
    k = len(labels)
    pred = out.argmax(dim=1)
    cm = torch.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp = cm.diag().double()
    support = cm.sum(dim=1).double()
    predicted = cm.sum(dim=0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    f1 = torch.where(
        precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12), torch.zeros_like(tp)
    )
    total = int(cm.sum())
    per_class = {
        labels[i]: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i in range(k)
    }
    return {
        "accuracy": float(tp.sum()) / total if total else None,
        "confusion_matrix": cm.tolist(),
        "per_class": per_class,
        "labels": list(labels),
        "n": total,
    }


def regression_report(out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """MSE, RMSE and MAE in the target's units, and R²."""
    pred = out[:, 0].double()
    y = y.double()
    err = pred - y
    ss_res = float((err**2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    mse = float((err**2).mean())
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(err.abs().mean()),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else None,
        "n": len(y),
    }


# -- per-sample detail for the Evaluation tab ---------------------------------------------------


@dataclass(frozen=True)
class ClassPredictions:
    """What a classifier said about each sample: predicted class, its probability, and the truth.

    Plain numpy arrays (never tensors), so the result can cross from a worker thread to the GUI.
    """

    true: np.ndarray  # int64 [N]
    pred: np.ndarray  # int64 [N]
    confidence: np.ndarray  # float64 [N]: softmax probability of the predicted class
    probabilities: np.ndarray  # float32 [N, K]

    def __len__(self) -> int:
        return int(self.true.shape[0])

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.true

    @property
    def wrong_indices(self) -> np.ndarray:
        """Positions of the misclassified samples, the most confident mistakes first."""
        idx = np.flatnonzero(~self.correct)
        return idx[np.argsort(-self.confidence[idx], kind="stable")]

    def cell_indices(self, true_class: int, pred_class: int) -> np.ndarray:
        """Positions of the samples in one confusion-matrix cell, the most confident first.

        For an off-diagonal cell that puts the model's surest mistakes at the top, which is what a
        person looking for mislabelled or confusing samples wants to see first.
        """
        idx = np.flatnonzero((self.true == true_class) & (self.pred == pred_class))
        return idx[np.argsort(-self.confidence[idx], kind="stable")]


def class_predictions(out: torch.Tensor, y: torch.Tensor) -> ClassPredictions:
    """Per-sample predicted class and confidence from logits [N, K] and targets [N]."""
    probs = torch.softmax(out.float(), dim=1)
    conf, pred = probs.max(dim=1)
    return ClassPredictions(
        true=y.long().cpu().numpy(),
        pred=pred.cpu().numpy().astype(np.int64),
        confidence=conf.double().cpu().numpy(),
        probabilities=probs.cpu().numpy(),
    )


@dataclass(frozen=True)
class ConfidenceHistogram:
    """Counts of predictions per confidence bin, split by whether they were right."""

    edges: np.ndarray  # [bins + 1], from the lowest possible confidence (1/K) to 1
    correct: np.ndarray  # int64 [bins]
    wrong: np.ndarray  # int64 [bins]


def confidence_histogram(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10, low: float = 0.0
) -> ConfidenceHistogram:
    """Histogram of confidences over [low, 1] for correct and wrong predictions separately.

    A confidence of exactly 1.0 falls in the last bin (numpy's closed last edge), so no sample is lost.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1 (got {bins})")
    edges = np.linspace(low, 1.0, bins + 1)
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), low, 1.0)
    correct = np.asarray(correct, dtype=bool)
    right, _ = np.histogram(confidence[correct], bins=edges)
    wrong, _ = np.histogram(confidence[~correct], bins=edges)
    return ConfidenceHistogram(edges, right.astype(np.int64), wrong.astype(np.int64))


@dataclass(frozen=True)
class RegressionPoints:
    """Predicted against true values, residuals, and the least-squares line through them."""

    true: np.ndarray  # float64 [N]
    pred: np.ndarray  # float64 [N]
    slope: float
    intercept: float

    @property
    def residuals(self) -> np.ndarray:
        return self.pred - self.true


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares (slope, intercept) of y on x; a flat line through the mean when x is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) == 0:
        return 0.0, 0.0
    xm, ym = x.mean(), y.mean()
    var = float(((x - xm) ** 2).sum())
    if var == 0.0:
        return 0.0, float(ym)
    slope = float(((x - xm) * (y - ym)).sum()) / var
    return slope, float(ym - slope * xm)


def regression_points(out: torch.Tensor, y: torch.Tensor) -> RegressionPoints:
    true = y.double().cpu().numpy().reshape(-1)
    pred = out[:, 0].double().cpu().numpy()
    slope, intercept = fit_line(true, pred)
    return RegressionPoints(true, pred, slope, intercept)
