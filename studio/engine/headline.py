"""One headline number per run: the weights its test figures, `studio eval` and export all use.

A run that validated has a best checkpoint (the epoch with the lowest watched loss); its test
record, its end message, `studio eval` and `studio export` all use it, and say so. A run without
one (no epoch finished, or no run directory) uses its last weights.
"""

from __future__ import annotations

import copy

from torch import nn

from studio.engine.checkpoint import load_checkpoint
from studio.engine.run_dir import RunDir
from studio.errors import CheckpointError


def headline_checkpoint(files: RunDir | None) -> str:
    """`best` when the run has a best checkpoint, else `last`."""
    return "best" if files is not None and files.has_checkpoint("best") else "last"


def headline_model(model: nn.Module, files: RunDir | None) -> tuple[nn.Module, str]:
    """(model, which): a copy holding the best checkpoint's weights, or `model` itself for `last`.

    The copy leaves the training model's weights as they are (a resumed run continues from last);
    a best.pt that cannot be read gives the last weights, named as such.
    """
    which = headline_checkpoint(files)
    if which == "last" or files is None:
        return model, "last"
    best = copy.deepcopy(model)
    try:
        best.load_state_dict(load_checkpoint(files.checkpoint("best"))["model"], strict=True)
    except (CheckpointError, KeyError, RuntimeError):  # a damaged best.pt: the last weights still give a number
        return model, "last"
    return best, "best"
