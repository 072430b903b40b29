"""One optimizer step's forward and backward passes, and, under DDP, the sums of every rank's share.

The trainer calls these between its `StepInFlight` and its commit; they change no loop state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from studio.engine.distributed import Dist, shard
from studio.engine.evaluate import compute_loss
from studio.engine.loop_state import EpochMetrics, LoopState, RunningSums, StepInFlight
from studio.engine.records import StepRecord
from studio.engine.training_setup import TrainingSetup


def forward_backward(
    setup: TrainingSetup,
    net: torch.nn.Module,
    step: StepInFlight,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    accumulate: int,
    ctx: Dist,
) -> None:
    """Forward and backward over up to `accumulate` batches; the gradients add up in the parameters.

    Under DDP `batches` are the global batches; each rank trains its shard (`distributed.shard`).
    DDP averages the ranks' gradients, so each rank's mean loss is weighted by its share of the
    global batch: the average is then the gradient of the global batch's mean loss, even for
    unequal shards (the epoch's last batch).
    """
    while step.batches < accumulate and step.pos < step.n:
        x, y = next(batches)
        taken = int(y.shape[0])
        x, y = shard(x, y, ctx)
        with setup.autocast():
            out = net(x)
        loss = compute_loss(out, y, setup.loss_fn, setup.spec)
        if int(y.shape[0]) == 0:  # fewer samples left than ranks (after a live batch-size change): no share,
            loss = out.sum() * 0.0  # but DDP's backward must still run on every rank
        weight = int(y.shape[0]) * ctx.world_size / taken if ctx.active else 1.0
        setup.scaler.scale(loss * weight / accumulate if ctx.active else loss / accumulate).backward()
        step.add_batch(loss, out, y, setup.classify, taken=taken)


def reduce_step(step: StepInFlight, ctx: Dist, device: torch.device, extra: list[float]) -> list[float]:
    """Replace the step's loss, hits and count by their sums over every rank, in one all-reduce with `extra`.

    `extra` rides along (rank 0's live control, `ControlExchange.pack`); its sums come back.
    """
    if not ctx.active:
        return extra
    assert step.loss is not None
    hits = 0.0 if step.correct is None else step.correct
    loss, correct, count, *rest = ctx.all_sum([step.loss, hits, step.count, *extra], device)
    step.loss, step.count = loss, int(count)
    if step.correct is not None:
        step.correct = correct
    return [float(v) for v in rest]


def step_record(
    step: StepInFlight,
    state: LoopState,
    sums: RunningSums,
    setup: TrainingSetup,
    window_loss: float,
    elapsed: float,
    window_s: float,
    world_size: int | None,
) -> StepRecord:
    """The record of a logged step: the log window's mean loss and accuracy, the rate, speed and memory."""
    cuda = setup.device.type == "cuda"
    return StepRecord(
        epoch=step.epoch,
        step=state.step,
        loss=window_loss / max(sums.win_n, 1) * setup.loss_scale,
        accuracy=float(sums.win_correct) / max(sums.win_n, 1) if setup.classify else None,
        lr=step.lr,
        batch_size=state.batch_size,
        time=round(elapsed, 4),
        epoch_progress=step.pos / step.n,
        samples_per_s=round(sums.win_n / max(window_s, 1e-9), 1),
        grad_norm=float(step.grad_norm) if step.grad_norm is not None else None,
        cuda_memory_allocated=torch.cuda.memory_allocated(setup.device) if cuda else None,
        cuda_memory_reserved=torch.cuda.memory_reserved(setup.device) if cuda else None,
        changed=dict(step.changed) or None,
        world_size=world_size,
    )


def epoch_train_metrics(sums: RunningSums, state: LoopState, setup: TrainingSetup, loss_name: str) -> EpochMetrics:
    """The epoch's training loss and accuracy from the meter's sums (and RMSE for an MSE regression)."""
    loss_sum, correct, count = sums.epoch_totals()
    if count == 0:  # a checkpoint from before the sums were saved, resumed at the epoch's end
        last = state.last_metrics
        return {"loss": last.get("train_loss"), "accuracy": last.get("train_accuracy")}
    loss = float(loss_sum) / count * setup.loss_scale
    metrics: EpochMetrics = {"loss": loss, "accuracy": float(correct) / count if setup.classify else None}
    if setup.spec.task == "regression" and loss_name in ("auto", "mse") and loss >= 0:
        metrics["rmse"] = math.sqrt(loss)  # the MSE loss is in the target's units squared
    return metrics
