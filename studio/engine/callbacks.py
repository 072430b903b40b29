"""Callbacks: implement only the hooks you need; the trainer calls whoever has them.

A hook is `on_<event>(trainer, payload)` for a name in `events.EVENTS`. The trainer a hook gets is
a `TrainerView`: what a callback may read (and the control object it may steer the run with).
This module knows the trainer only through that view, so it never imports the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from studio.engine.events import EVENTS

if TYPE_CHECKING:  # for the annotations only: importing this module must not load torch (the GUI paints first)
    import torch

    from studio.config import Config
    from studio.data.base import DataBundle, DataSpec
    from studio.engine.control import TrainingControl
    from studio.engine.loop_state import LoopState


class TrainerView(Protocol):
    """The part of a `Trainer` callbacks see. `model` is None until the fit has built it."""

    config: Config
    control: TrainingControl  # stop, pause, live changes: the same object the GUI steers with
    state: LoopState  # where the run is (read only)
    run_dir: Path | None

    @property
    def model(self) -> torch.nn.Module | None: ...

    @property
    def optimizer(self) -> torch.optim.Optimizer: ...

    @property
    def bundle(self) -> DataBundle: ...

    @property
    def spec(self) -> DataSpec: ...

    @property
    def device(self) -> torch.device: ...

    def message(self, text: str, level: str = "info") -> None: ...


class Callback:
    """Base class; hooks are `on_<event>(trainer, payload)` for each name in `EVENTS`."""

    def on_fit_start(self, trainer: TrainerView, event: Any) -> None: ...
    def on_epoch_start(self, trainer: TrainerView, event: Any) -> None: ...
    def on_step_end(self, trainer: TrainerView, event: Any) -> None: ...
    def on_validation_end(self, trainer: TrainerView, event: Any) -> None: ...
    def on_epoch_end(self, trainer: TrainerView, event: Any) -> None: ...
    def on_fit_end(self, trainer: TrainerView, event: Any) -> None: ...
    def on_message(self, trainer: TrainerView, event: Any) -> None: ...


def call(callbacks: list[Any], trainer: TrainerView, name: str, event: Any) -> None:
    """Call `on_<name>` on every callback that has it."""
    assert name in EVENTS, name
    for cb in callbacks:
        hook = getattr(cb, f"on_{name}", None)
        if hook is not None:
            hook(trainer, event)
