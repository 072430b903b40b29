"""Learning-rate range test, the fastai way: `find_lr(config)` and `studio lr-find CONFIG.toml`.

Snapshot the weights, train a short run while the rate rises exponentially from `start_lr` to
`end_lr`, stop once the (smoothed) loss passes 4x its best, and put the weights back exactly. The
suggestion is a pure function of the recorded `(lrs, losses)`, so it can be tested on any curve and
recomputed by the GUI without training again.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from studio.config import Config
from studio.data import DataBundle
from studio.data.base import DataSpec
from studio.errors import ConfigError, StudioError

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
    raw_losses: list[float]
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
        seg = seg[:next(i for i, v in enumerate(seg) if not math.isfinite(v))]
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


def _snapshot(module: nn.Module | torch.optim.Optimizer) -> dict[str, Any]:
    return copy.deepcopy(module.state_dict())


def lr_range_test(model: nn.Module, optimizer: torch.optim.Optimizer,
                  batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
                  loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                  start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
                  on_point: Callable[[LRFinderPoint], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, smoothing: float = SMOOTHING) -> LRFinderResult:
    """Run the range test on `model`; its weights and the optimizer's state are restored afterwards.

    `batches` yields `(x, y)` for as many steps as needed; `loss_of(output, y)` is the training loss.
    The restore happens in a `finally`, so an error or a stop also leaves the model as it was.
    """
    rates = lr_schedule(start_lr, end_lr, num_steps)
    model_state, opt_state = _snapshot(model), _snapshot(optimizer)
    lrs: list[float] = []
    raw: list[float] = []
    avg, best = 0.0, math.inf
    reason = f"reached the end rate {end_lr:g}"
    was_training = model.training
    try:
        model.train()
        for i, lr in enumerate(rates):
            if should_stop is not None and should_stop():
                reason = "stopped by the user"
                break
            try:
                x, y = next(batches)
            except StopIteration:
                reason = "ran out of training batches"
                break
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_of(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())  # a device sync per step; the test is ~100 steps long
            if not math.isfinite(value):
                reason = f"the loss became non-finite at lr {lr:.3g}"
                break
            avg = smoothing * avg + (1 - smoothing) * value
            smooth = avg / (1 - smoothing ** (i + 1))
            lrs.append(lr)
            raw.append(value)
            best = min(best, smooth)
            if on_point is not None:
                on_point(LRFinderPoint(i + 1, num_steps, lr, smooth, value))
            if i > 0 and smooth > DIVERGE_FACTOR * best:
                reason = f"the loss passed {DIVERGE_FACTOR:g}x its best at lr {lr:.3g}"
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(opt_state)
        optimizer.zero_grad(set_to_none=True)
        model.train(was_training)
    smoothed = smooth_losses(raw)
    return LRFinderResult(lrs, smoothed, raw, suggest_lr(lrs, smoothed), reason)


def _endless_batches(source: Any, seed: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled training batches, epoch after epoch, in the trainer's own order."""
    from studio.data.batches import epoch_order

    epoch = 1
    while True:
        n_before = 0
        for xb, yb in source.batches(epoch_order(len(source), seed, epoch), 0, lambda: batch_size):
            n_before += 1
            yield xb, yb
        if n_before == 0:
            return
        epoch += 1


def find_lr(config: Config, data: DataBundle | None = None, *, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_steps: int = 100, on_point: Callable[[LRFinderPoint], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> LRFinderResult:
    """Range-test the configured model, optimizer and data from a fresh initialisation.

    Builds the same pieces the trainer builds (seeded the same way), so the curve describes the run
    that `studio train` would start. The global RNG state is put back afterwards too.
    """
    from studio.data import load_data
    from studio.data.augment import build_augment
    from studio.data.batches import make_batches
    from studio.engine.device import resolve_device
    from studio.engine.evaluate import compute_loss
    from studio.engine.optim import build_loss, build_optimizer
    from studio.engine.trainer import seed_everything
    from studio.models import build_model
    from studio.models.memory import check_fits

    with torch.random.fork_rng(devices=[]):
        seed_everything(config.seed)
        bundle = data or load_data(config)
        spec: DataSpec = bundle.spec
        if len(bundle.train) == 0:
            raise StudioError("lr-find: the training split is empty")
        device = resolve_device(config.train.device)
        check_fits(config, spec, device)  # refuse, with the estimate, what the kernel would kill
        torch.manual_seed(config.seed)
        model = build_model(config.model, spec).to(device)
        optimizer = build_optimizer(model, config.train)
        loss_fn = build_loss(config.train.loss, spec.task)
        source = make_batches(bundle.train, device, build_augment(config, spec, device), config.data.num_workers)
        batches = _endless_batches(source, config.seed, config.train.batch_size)
        return lr_range_test(model, optimizer, batches, lambda out, y: compute_loss(out, y, loss_fn, spec),
                             start_lr=start_lr, end_lr=end_lr, num_steps=num_steps, on_point=on_point,
                             should_stop=should_stop)


def run_lr_find_cli(args: argparse.Namespace) -> int:
    """`studio lr-find CONFIG.toml [--set K=V]`: print the curve's outline and the suggested rate."""
    from studio.config import load_config

    config = load_config(args.config, getattr(args, "overrides", []))
    steps = getattr(args, "steps", None) or 100
    start = getattr(args, "start_lr", None) or 1e-7
    end = getattr(args, "end_lr", None) or 10.0
    print(f"lr-find: {config.data.source} / {config.model.arch} / {config.train.optimizer}, "
          f"batch size {config.train.batch_size}, lr {start:g} -> {end:g} over up to {steps} steps",
          file=sys.stderr)

    def show(p: LRFinderPoint) -> None:
        if p.step == 1 or p.step % 10 == 0:
            print(f"  step {p.step:4d}  lr {p.lr:9.3e}  loss {p.loss:.4f}", file=sys.stderr)

    result = find_lr(config, start_lr=start, end_lr=end, num_steps=steps, on_point=show)
    print(f"stopped: {result.reason}", file=sys.stderr)
    if result.suggestion is None:
        print("error: no suggested lr: the loss never fell over the range; try a lower start rate "
              "(--start-lr) or check the data", file=sys.stderr)
        return 1
    i = result.suggestion_index
    assert i is not None
    print(f"suggested lr: {result.suggestion:.3g} (loss {result.losses[i]:.4f}, falling; "
          f"lowest loss {min(result.losses):.4f} at lr {result.min_loss_lr:.3g})")
    return 0
