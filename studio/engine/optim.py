"""Optimizers, with weight decay on weights only (never biases or norm parameters)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from studio.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: matrices and kernels decay; biases, norm scales and 1-D params do not."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def build_loss(name: str, task: str) -> nn.Module:
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    if task == "classification" and name != "cross_entropy":
        from studio.errors import ConfigError

        raise ConfigError(f"[train] loss '{name}' is for regression; classification uses cross_entropy")
    if task == "regression" and name == "cross_entropy":
        from studio.errors import ConfigError

        raise ConfigError("[train] loss 'cross_entropy' is for classification; regression uses mse, l1 or huber")
    return {"cross_entropy": nn.CrossEntropyLoss(), "mse": nn.MSELoss(), "l1": nn.L1Loss(), "huber": nn.HuberLoss()}[
        name
    ]
