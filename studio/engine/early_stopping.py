"""Early stopping on validation loss; the decision returns `(stop, reason)` for the user to read."""

from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Stop after `patience` epochs without the loss improving by more than `min_delta`."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0

    def update(self, loss: float, epoch: int) -> tuple[bool, str | None]:
        if loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = loss, epoch, 0
            return False, None
        self.bad_epochs += 1
        if self.patience and self.bad_epochs >= self.patience:
            return True, (
                f"val loss has not improved for {self.bad_epochs} epochs "
                f"(best {self.best:.4g} at epoch {self.best_epoch})"
            )
        return False, None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
