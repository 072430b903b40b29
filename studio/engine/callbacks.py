"""Callbacks: implement only the hooks you need; the trainer calls whoever has them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.engine.events import EVENTS

if TYPE_CHECKING:
    from studio.engine.trainer import Trainer


class Callback:
    """Base class; hooks are `on_<event>(trainer, payload)` for each name in `EVENTS`."""

    def on_fit_start(self, trainer: "Trainer", event: Any) -> None: ...
    def on_epoch_start(self, trainer: "Trainer", event: Any) -> None: ...
    def on_step_end(self, trainer: "Trainer", event: Any) -> None: ...
    def on_validation_end(self, trainer: "Trainer", event: Any) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", event: Any) -> None: ...
    def on_fit_end(self, trainer: "Trainer", event: Any) -> None: ...
    def on_message(self, trainer: "Trainer", event: Any) -> None: ...


def call(callbacks: list[Any], trainer: "Trainer", name: str, event: Any) -> None:
    """Call `on_<name>` on every callback that has it."""
    assert name in EVENTS, name
    for cb in callbacks:
        hook = getattr(cb, f"on_{name}", None)
        if hook is not None:
            hook(trainer, event)
