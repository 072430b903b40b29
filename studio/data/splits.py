"""Train/val/test splits from the run's seed, stratified for classification."""

from __future__ import annotations

import torch


def split_indices(
    n: int, val_frac: float, test_frac: float, seed: int, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (train, val, test) index tensors; with `labels`, each class is split in proportion."""
    gen = torch.Generator().manual_seed(seed)
    if labels is None:
        groups = [torch.arange(n)]
    else:
        groups = [torch.nonzero(labels == c, as_tuple=True)[0] for c in torch.unique(labels)]
    train, val, test = [], [], []
    for group in groups:
        perm = group[torch.randperm(len(group), generator=gen)]
        n_test = round(len(perm) * test_frac)
        n_val = round(len(perm) * val_frac)
        test.append(perm[:n_test])
        val.append(perm[n_test : n_test + n_val])
        train.append(perm[n_test + n_val :])
    # Sorting keeps the source order inside each split, so the split is independent of class order.
    train_idx, val_idx, test_idx = (torch.sort(torch.cat(parts)).values for parts in (train, val, test))
    return train_idx, val_idx, test_idx
