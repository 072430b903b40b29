"""Learning-rate range test, the fastai way: `find_lr(config)` and `studio lr-find CONFIG.toml`.

`LRFinder` is a callback on the training loop (fastai's `LRFinder` in `callback/schedule.py`):
it snapshots the weights when the fit starts, gives each optimizer step a rate rising
exponentially from `start_lr` to `end_lr`, stops the fit once the (smoothed) loss passes 4x its
best, and puts the weights back exactly when the fit ends. The steps are the run's own
`Trainer` steps, so mixed precision, gradient accumulation and clipping are those of
`studio train` with the same config. The suggestion is a pure function of the recorded
`(lrs, losses)`, so it can be tested on any curve and recomputed by the GUI without training again.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from studio.config import Config
from studio.data import DataBundle
from studio.engine.callbacks import Callback, TrainerView
from studio.engine.control import TrainingControl
from studio.engine.estimates import ExponentialMean
from studio.engine.events import Message
from studio.engine.records import StepRecord
from studio.engine.trainer import Trainer, TrainingFailed
from studio.errors import ConfigError

DIVERGE_FACTOR = 4.0  # stop when the smoothed loss passes this multiple of its best (fastai's value)
# The stop check uses an exponential moving average of the loss, debiased like fastai's AvgSmoothLoss.
SMOOTHING = 0.9
# The recorded curve is smoothed afterwards with a centred window instead: any running average lags,
# and with the rate rising a decade every ~12 steps, fastai's 0.98 (a ~50-step memory) draws the fall
# of the loss about a decade of lr too late, which drags the suggestion low. A centred window has no lag.
SMOOTH_WINDOW = 9


@dataclass(frozen=True)
class LRFinderPoint:
    """One step of the range test: a progress event of plain scalars."""

    step: int
    num_steps: int
    lr: float
    loss: float  # running average (what the stop check uses)
    raw_loss: float


@dataclass(frozen=True)
class LRFinderResult:
    """The recorded curve, the suggested rate and why the test ended."""

    lrs: list[float]
    losses: list[float]  # `smooth_losses(raw_losses)`: what the suggestion and the plot use
    raw_losses: list[float]  # each step's loss as `studio train` logs it (the target's units for regression)
    suggestion_index: int | None
    reason: str

    @property
    def suggestion(self) -> float | None:
        return self.lrs[self.suggestion_index] if self.suggestion_index is not None else None

    @property
    def min_loss_lr(self) -> float | None:
        """The rate at the lowest smoothed loss (too high to train at: it is about to diverge)."""
        if not self.losses:
            return None
        return self.lrs[min(range(len(self.losses)), key=self.losses.__getitem__)]


def lr_schedule(start_lr: float, end_lr: float, num_steps: int) -> list[float]:
    """`num_steps` rates rising exponentially from `start_lr` to `end_lr` (both included)."""
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"lr-find needs 0 < start lr < end lr (got {start_lr:g} and {end_lr:g})")
    if num_steps < 2:
        raise ConfigError(f"lr-find needs at least 2 steps (got {num_steps})")
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (num_steps - 1)) for i in range(num_steps)]


def suggest_lr(lrs: Sequence[float], losses: Sequence[float]) -> int | None:
    """Index of the suggested rate: halfway (in log-lr) along the descending part of the curve.

    Drops the first 10% of points (the loss has not started to move) and the last 5 (divergence).
    The descending part runs from the last point still on the starting plateau (within 5% of the
    total fall) to the lowest loss. The lowest point itself is too high a rate (the loss is about to
    blow up); halfway down, the loss falls fast and the rate is a safe distance from divergence.
    This is fastai's "valley" idea, but the valley is bounded by the plateau and the minimum instead
    of a longest falling subsequence, which can start in the noise of a long flat plateau.
    None when the loss never really fell.
    """
    n = len(losses)
    if n != len(lrs):
        raise ValueError(f"lrs and losses differ in length ({len(lrs)} and {n})")
    lo, hi = n // 10, n - 5
    seg = [float(v) for v in losses[lo:hi]]
    if any(not math.isfinite(v) for v in seg):
        seg = seg[: next(i for i, v in enumerate(seg) if not math.isfinite(v))]
    if len(seg) < 4:
        return None
    low = min(range(len(seg)), key=seg.__getitem__)
    drop = seg[0] - seg[low]
    if drop <= 0.02 * abs(seg[0]):  # flat or rising from the start: nothing to suggest
        return None
    plateau = seg[0] - 0.05 * drop
    start = max([i for i in range(low) if seg[i] >= plateau], default=0)
    if low - start < 2:
        return None
    idx = start + max(1, round((low - start) / 2))
    return lo + min(idx, low - 1)


def smooth_losses(raw: Sequence[float], window: int = SMOOTH_WINDOW) -> list[float]:
    """Centred triangular moving average (no lag); the window narrows at both ends of the curve."""
    values = [float(v) for v in raw]
    n, half = len(values), max(window // 2, 0)
    out = []
    for i in range(n):
        total = weight = 0.0
        for j in range(max(0, i - half), min(n, i + half + 1)):
            w = half + 1 - abs(i - j)
            total += w * values[j]
            weight += w
        out.append(total / weight)
    return out


class LRFinder(Callback):
    """The range test as a callback: pass it to a `Trainer` as a callback and as its `schedule`.

    The loop asks it for each step's rate; it records each step's logged loss (every step is a log
    point: `find_lr` sets `log_every` to 1), stops the fit through the trainer's control object,
    and restores the model and optimizer state it saw when the fit started.
    """

    def __init__(
        self,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_steps: int = 100,
        *,
        on_point: Callable[[LRFinderPoint], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        smoothing: float = SMOOTHING,
    ) -> None:
        self.rates = lr_schedule(start_lr, end_lr, num_steps)
        self.on_point = on_point
        self.should_stop = should_stop
        self.smoothing = smoothing
        self.lrs: list[float] = []
        self.raw: list[float] = []
        self.reason = "ran out of training batches"  # unless a stop rule below says otherwise
        self._mean, self._best = ExponentialMean(smoothing), math.inf
        self._saved: tuple[dict[str, Any], dict[str, Any], bool] | None = None  # model, optimizer, training mode

    def __call__(self, step: int, progress: float, base_lr: float) -> float:
        """The `Schedule` of the fit: step n (1-based) of the test trains at the n-th rate."""
        return self.rates[min(step, len(self.rates)) - 1]

    def on_fit_start(self, trainer: TrainerView, event: Any) -> None:
        model = trainer.model
        assert model is not None
        self._saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(trainer.optimizer.state_dict()), model.training)
        if self.should_stop is not None and self.should_stop():  # stopped before the first step
            self.reason = "stopped by the user"
            trainer.control.stop()

    def on_step_end(self, trainer: TrainerView, record: StepRecord) -> None:
        i, value = len(self.raw), record.loss
        smooth = self._mean.add(value)
        self.lrs.append(record.lr)
        self.raw.append(value)
        self._best = min(self._best, smooth)
        if self.on_point is not None:
            self.on_point(LRFinderPoint(i + 1, len(self.rates), record.lr, smooth, value))
        stop: str | None = None
        if i > 0 and smooth > DIVERGE_FACTOR * self._best:
            stop = f"the loss passed {DIVERGE_FACTOR:g}x its best at lr {record.lr:.3g}"
        elif len(self.raw) >= len(self.rates):
            stop = f"reached the end rate {self.rates[-1]:g}"
        elif self.should_stop is not None and self.should_stop():
            stop = "stopped by the user"
        if stop is not None:
            self.reason = stop
            trainer.control.stop()  # the loop ends at the next step boundary, as for a user's stop

    def on_fit_end(self, trainer: TrainerView, event: Any) -> None:
        model = trainer.model
        if self._saved is None or model is None:
            return
        weights, optimizer_state, training = self._saved
        model.load_state_dict(weights)
        trainer.optimizer.load_state_dict(optimizer_state)
        trainer.optimizer.zero_grad(set_to_none=True)
        model.train(training)

    def diverged(self) -> None:
        """The fit failed on a non-finite loss: the step after the last recorded one blew up."""
        self.reason = f"the loss became non-finite at lr {self.rates[min(len(self.raw), len(self.rates) - 1)]:.3g}"

    def result(self) -> LRFinderResult:
        smoothed = smooth_losses(self.raw)
        return LRFinderResult(list(self.lrs), smoothed, list(self.raw), suggest_lr(self.lrs, smoothed), self.reason)


class _Messages(Callback):
    def __init__(self, receive: Callable[[Message], None]) -> None:
        self.receive = receive

    def on_message(self, trainer: TrainerView, event: Message) -> None:
        self.receive(event)


def range_test_config(config: Config, num_steps: int) -> Config:
    """The run's config for the test: every step logged, nothing that ends the fit but the test itself.

    Enough epochs for `num_steps` steps (an epoch has at least one), no patience or target loss.
    The rate schedule is the test's own; everything else (data, model, optimizer, precision,
    accumulation, clipping, device) is the run's.
    """
    overrides = {
        "train.log_every": 1,
        "train.patience": 0,
        "train.target_loss": 0.0,
        "train.epochs": min(max(num_steps, 1), 100000),
    }
    for key, value in overrides.items():
        config = config.replace_value(key, value)
    return config


def find_lr(
    config: Config,
    data: DataBundle | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    on_point: Callable[[LRFinderPoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_message: Callable[[Message], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> LRFinderResult:
    """Range-test the configured run from its fresh initialisation, on the `Trainer`'s own steps.

    Nothing is written (the trainer runs without a run directory) and the global torch RNG state
    is put back afterwards. `on_message` receives the trainer's messages (a mixed precision that
    falls back to fp32, a batch larger than the data); `callbacks` run on the same fit, before the
    finder's own hooks.
    """
    finder = LRFinder(start_lr, end_lr, num_steps, on_point=on_point, should_stop=should_stop)
    extra = [_Messages(on_message)] if on_message is not None else []
    trainer = Trainer(
        range_test_config(config, num_steps),
        None,
        callbacks=[*callbacks, *extra, finder],
        control=TrainingControl(),
        data=data,
        schedule=finder,
    )
    with torch.random.fork_rng(devices=[]):
        try:
            trainer.fit()
        except TrainingFailed:
            finder.diverged()
    return finder.result()
