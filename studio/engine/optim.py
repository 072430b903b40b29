"""Optimizers, with weight decay on weights only (never biases or norm parameters)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from studio.config import TrainConfig


def param_groups(
    model: nn.Module, weight_decay: float, head: str | None = None, backbone_lr_scale: float = 1.0
) -> list[dict[str, Any]]:
    """Two groups: matrices and kernels decay; biases, norm scales and 1-D params do not.

    With `head` (a module name: fine-tuning pretrained weights), the head's two groups come first
    and the rest's two follow with `lr_scale = backbone_lr_scale`: the loop multiplies each group's
    rate by its `lr_scale` (discriminative learning rates).
    """
    if head is None:
        return _decay_groups(list(model.named_parameters()), weight_decay)
    prefix = head + "."
    named = list(model.named_parameters())
    heads = _decay_groups([(n, p) for n, p in named if n.startswith(prefix)], weight_decay)
    body = _decay_groups([(n, p) for n, p in named if not n.startswith(prefix)], weight_decay)
    for group in body:
        group["lr_scale"] = backbone_lr_scale
    return heads + body


def _decay_groups(named: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in named:
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: TrainConfig, head: str | None = None) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, head, cfg.backbone_lr_scale)
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
