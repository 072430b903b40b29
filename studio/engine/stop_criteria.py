"""Every rule that ends a run before its last epoch, each answering `(stop, reason)`.

As Lightning's `EarlyStopping._evaluate_stopping_criteria`: the loop asks, the rule answers with
a decision and a sentence the user reads in the log and in summary.json. Where the loop asks
decides how the run ends: a user's stop between steps or after an epoch ends it "stopped",
patience or the target loss after an epoch "early_stopped", a non-finite loss "failed".
"""

from __future__ import annotations

import math
from collections.abc import Callable

from studio.config import TrainConfig
from studio.engine.control import TrainingControl
from studio.engine.early_stopping import EarlyStopping

Decision = tuple[bool, str | None]
GO_ON: Decision = (False, None)


class TrainingFailed(Exception):
    """Training could not go on (a non-finite loss); the message says why and what to try."""


class StopCriteria:
    """The stop rules of one run: its config's patience and target loss, and the user's stop."""

    def __init__(self, train: TrainConfig, control: TrainingControl) -> None:
        self.patience = train.patience
        self.target_loss = train.target_loss
        self.control = control

    def user_stop(self) -> Decision:
        """Stop pressed, Ctrl-C in the GUI, or a tool on the loop that has what it needs (the LR finder)."""
        return (True, "stopped by the user") if self.control.stop_requested else GO_ON

    def non_finite(self, window_loss: float, first_bad_step: Callable[[], int | None], lr: float) -> Decision:
        """A nan or inf in the log window's loss: going on would train on garbage."""
        if math.isfinite(window_loss):
            return GO_ON
        return True, (
            f"the loss became non-finite (nan or inf) at step {first_bad_step()} (lr {lr:g}); "
            "try a lower learning rate. The last good checkpoint is kept"
        )

    def epoch_end(self, early: EarlyStopping, watched: float, which: str, epoch: int) -> Decision:
        """Patience, then the target loss, on the epoch's watched loss (`which`: "val" or "train").

        Patience counts only when it is on, so a run resumed with patience turned on counts from there.
        """
        if self.patience:
            stop, reason = early.update(watched, epoch)
            if stop:
                return stop, reason
        if self.target_loss > 0 and watched <= self.target_loss:
            return True, f"{which} loss {watched:.4g} reached the target {self.target_loss:g}"
        return GO_ON
