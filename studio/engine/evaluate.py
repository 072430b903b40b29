"""Evaluation under inference mode: loss and accuracy, and the full report for `studio eval`."""

from __future__ import annotations

from typing import Any

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
def evaluate(model: nn.Module, source: Any, loss_fn: nn.Module, spec: DataSpec, loss_name: str = "auto",
             batch_size: int = 1024) -> dict[str, float | None]:
    """Mean loss (in reporting units) and accuracy (classification) over a source; None when empty."""
    if source is None or len(source) == 0:
        return {"loss": None, "accuracy": None}
    model.eval()
    total, correct, n = 0.0, 0, 0
    order = torch.arange(len(source))
    for x, y in source.batches(order, 0, lambda: batch_size, augment=False):
        out = model(x)
        total += float(compute_loss(out, y, loss_fn, spec)) * len(y)
        if spec.task == "classification":
            correct += int((out.argmax(dim=1) == y).sum())
        n += len(y)
    acc = correct / n if spec.task == "classification" else None
    return {"loss": total / n * loss_scale(loss_name, spec), "accuracy": acc}


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
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12),
                     torch.zeros_like(tp))
    total = int(cm.sum())
    per_class = {labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i in range(k)}
    return {"accuracy": float(tp.sum()) / total if total else None, "confusion_matrix": cm.tolist(),
            "per_class": per_class, "labels": list(labels), "n": total}


def regression_report(out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """MSE, MAE and R² in the target's units."""
    pred = out[:, 0].double()
    y = y.double()
    err = pred - y
    ss_res = float((err ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"mse": float((err ** 2).mean()), "mae": float(err.abs().mean()),
            "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else None, "n": int(len(y))}
