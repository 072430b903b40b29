"""The records of metrics.jsonl, typed: a `StepRecord` every few steps, an `EpochRecord` per split and epoch.

One shape from end to end: the loop builds a `StepRecord` once, sends that very object as the
`step_end` event (`events.StepEnd` is the same class), `MetricsFile` writes it as one JSON line, and
`read_metrics` gives the same type back, so a live view and a reopened run consume one shape.

A record also reads like the JSON line it is written as: `r["loss"]`, `r.get("changed")`,
`"changed" in r`, `dict(r)`. The keys are CONTRACT.md's, the values what the line holds (a
non-finite float is `None`, as JSON has no NaN), and a key the line leaves out (no live change,
no CUDA) is absent, so code and tests written against the JSON lines read records unchanged.

Reading is for files from anywhere (older studios, a killed run, a hand-edited file):
`record_from_json` returns None for a line that is no record (another kind, no epoch or step, a
step record without its loss, rate, batch size or time) and drops an optional field whose value
has the wrong type, so a bad line costs that line, never the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

SPLITS = ("train", "val", "test")
# The keys every record's line carries, in the order they are written (CONTRACT.md).
CONTRACT_KEYS = ("kind", "split", "epoch", "step", "loss", "accuracy", "lr", "batch_size", "time")


def _json_value(value: Any) -> Any:
    """A field as JSON holds it: non-finite floats become null (the engine writes `allow_nan=False`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


class _JsonLine(Mapping[str, Any]):
    """Read-only access to a record by the keys of its JSON line."""

    kind: ClassVar[str]
    _ALWAYS: ClassVar[tuple[str, ...]] = CONTRACT_KEYS
    _OPTIONAL: ClassVar[tuple[str, ...]] = ()  # written only when not None

    def __getitem__(self, key: str) -> Any:
        if key in self._ALWAYS or (key in self._OPTIONAL and getattr(self, key) is not None):
            return _json_value(getattr(self, key))
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from self._ALWAYS
        yield from (key for key in self._OPTIONAL if getattr(self, key) is not None)

    def __len__(self) -> int:
        return len(self._ALWAYS) + sum(getattr(self, key) is not None for key in self._OPTIONAL)


@dataclass(frozen=True)
class StepRecord(_JsonLine):
    """A training step as logged: the mean loss and accuracy since the previous step record.

    Plain Python values only, so it crosses threads (the GUI's worker) and is written as JSON.
    """

    kind: ClassVar[str] = "step"
    split: ClassVar[str] = "train"
    _OPTIONAL: ClassVar[tuple[str, ...]] = (
        "epoch_progress",
        "samples_per_s",
        "grad_norm",
        "cuda_memory_allocated",
        "cuda_memory_reserved",
        "changed",
        "world_size",
    )

    epoch: int  # 1-based
    step: int  # global optimizer step
    loss: float  # in the target's units for regression; NaN where the file held null
    accuracy: float | None
    lr: float
    batch_size: int
    time: float  # seconds of training since the run began
    epoch_progress: float | None = None  # fraction of this epoch's samples seen, 0..1 (None in older files)
    samples_per_s: float | None = None
    grad_norm: float | None = None  # global L2 norm before clipping
    cuda_memory_allocated: int | None = None  # bytes, on a CUDA device
    cuda_memory_reserved: int | None = None
    changed: dict[str, Any] | None = None  # live changes applied at this step: {"lr": [old, new]}
    world_size: int | None = None  # processes of a distributed run

    @property
    def epoch_float(self) -> float:
        """Position in epochs, e.g. 1.5 is halfway through epoch 2 (the plots' x axis).

        A record of an older file, which does not say how far into its epoch it was, sits at the
        epoch's end.
        """
        progress = 1.0 if self.epoch_progress is None else self.epoch_progress
        return self.epoch - 1 + progress


@dataclass(frozen=True)
class EpochRecord(_JsonLine):
    """One split's loss and accuracy at the end of an epoch (test: once, at the end of the run).

    Regression adds RMSE and MAE in the target's units and R² (val and test; train from its MSE
    loss). The test record names the checkpoint its figures come from (`best` when the run has one).
    """

    kind: ClassVar[str] = "epoch"
    _OPTIONAL: ClassVar[tuple[str, ...]] = ("world_size", "rmse", "mae", "r2", "checkpoint")

    split: str  # train | val | test
    epoch: int
    step: int
    loss: float | None
    accuracy: float | None
    lr: float | None = None  # None only in files that left it out
    batch_size: int | None = None
    time: float | None = None
    world_size: int | None = None
    rmse: float | None = None  # regression, in the target's units
    mae: float | None = None
    r2: float | None = None
    checkpoint: str | None = None  # test: "best" | "last", the weights the figures come from


Record = StepRecord | EpochRecord


def epoch_record(
    split: str,
    epoch: int,
    step: int,
    metrics: Mapping[str, float | None],
    lr: float | None,
    batch_size: int | None,
    time: float | None,
    checkpoint: str | None = None,
    world_size: int | None = None,
) -> EpochRecord:
    """The record of one split's epoch figures: loss, accuracy, and a regression's RMSE, MAE and R²."""
    return EpochRecord(
        split=split,
        epoch=epoch,
        step=step,
        loss=metrics.get("loss"),
        accuracy=metrics.get("accuracy"),
        lr=lr,
        batch_size=batch_size,
        time=time,
        rmse=metrics.get("rmse"),
        mae=metrics.get("mae"),
        r2=metrics.get("r2"),
        checkpoint=checkpoint,
        world_size=world_size,
    )


def record_to_json(record: Record) -> dict[str, Any]:
    """The JSON object of one metrics.jsonl line, keys in the contract's order."""
    return dict(record)


# -- reading untrusted lines ----------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return None


def _count(value: Any) -> int | None:
    """A whole number: an int, or a float that holds one (some writers turn every number into a float)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _changes(value: Any) -> dict[str, Any] | None:
    """`{"lr": [old, new], ...}`; entries of any other shape are dropped."""
    if not isinstance(value, dict):
        return None
    kept = {
        key: [old, new]
        for key, pair in value.items()
        if isinstance(key, str) and isinstance(pair, list) and len(pair) == 2
        for old, new in [pair]
        if _number(old) is not None and _number(new) is not None
    }
    return kept or None


def record_from_json(obj: Any) -> Record | None:
    """The record a parsed JSON line holds, or None when it is no record (see the module doc)."""
    if not isinstance(obj, dict):
        return None
    epoch, step = _count(obj.get("epoch")), _count(obj.get("step"))
    if epoch is None or step is None or epoch < 1 or step < 0:
        return None
    world_size = _count(obj.get("world_size"))
    if obj.get("kind") == "epoch":
        split = obj.get("split")
        if split not in SPLITS:
            return None
        return EpochRecord(
            split=split,
            epoch=epoch,
            step=step,
            loss=_number(obj.get("loss")),
            accuracy=_number(obj.get("accuracy")),
            lr=_number(obj.get("lr")),
            batch_size=_count(obj.get("batch_size")),
            time=_number(obj.get("time")),
            world_size=world_size,
            rmse=_number(obj.get("rmse")),
            mae=_number(obj.get("mae")),
            r2=_number(obj.get("r2")),
            checkpoint=obj["checkpoint"] if obj.get("checkpoint") in ("best", "last") else None,
        )
    if obj.get("kind") != "step":
        return None
    # A step record's loss is null when it was not finite; its other figures were always written.
    loss = math.nan if obj.get("loss") is None else _number(obj.get("loss"))
    lr, batch_size, time = _number(obj.get("lr")), _count(obj.get("batch_size")), _number(obj.get("time"))
    if loss is None or lr is None or batch_size is None or time is None:
        return None
    progress = _number(obj.get("epoch_progress"))
    return StepRecord(
        epoch=epoch,
        step=step,
        loss=loss,
        accuracy=_number(obj.get("accuracy")),
        lr=lr,
        batch_size=batch_size,
        time=time,
        epoch_progress=progress if progress is not None and 0.0 <= progress <= 1.0 else None,
        samples_per_s=_number(obj.get("samples_per_s")),
        grad_norm=_number(obj.get("grad_norm")),
        cuda_memory_allocated=_count(obj.get("cuda_memory_allocated")),
        cuda_memory_reserved=_count(obj.get("cuda_memory_reserved")),
        changed=_changes(obj.get("changed")),
        world_size=world_size,
    )
