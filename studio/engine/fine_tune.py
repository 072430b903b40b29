"""Fine-tuning pretrained weights the way fastai's `fine_tune` does, as a callback on the loop.

With `[model] weights` set, the first `[train] freeze_epochs` epochs train the new head alone:
every other parameter is frozen (`requires_grad = False`, so the optimizer leaves it exactly as
loaded), except the normalisation layers, which keep training and stay in train mode so their
running statistics follow the new data (fastai's `train_bn=True`: statistics from ImageNet are the
first thing that does not fit a small folder). After that the whole model trains, the backbone at
`[train] backbone_lr_scale` times the rate of the head (discriminative learning rates; the
optimizer's backbone groups carry that `lr_scale` from the start, see `optim.param_groups`).

The phase follows from the epoch in progress alone, so a resumed run, even from the middle of an
epoch, continues in the phase it was saved in. Under DDP the backbone is frozen by a zero rate
instead of `requires_grad` (DDP waits for a gradient of every parameter it wrapped).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from studio.engine.callbacks import Callback, TrainerView
from studio.engine.events import EpochStart

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)


def norm_parameter_names(model: nn.Module) -> set[str]:
    """The parameters of normalisation layers: they train even while the backbone is frozen."""
    return {
        f"{module_name}.{name}" if module_name else name
        for module_name, module in model.named_modules()
        if isinstance(module, NORMS)
        for name, _ in module.named_parameters(recurse=False)
    }


class FineTune(Callback):
    """Freeze the backbone (normalisation layers aside) for the first epochs, then train it all."""

    def __init__(self) -> None:
        self.head: str | None = None  # the head's module name; None: not a fine-tuning run
        self.frozen: bool | None = None  # the phase applied last

    def on_fit_start(self, trainer: TrainerView, event: Any) -> None:
        from studio.models import head_name

        model = trainer.model
        self.head = head_name(model, trainer.config.model) if model is not None else None
        if self.head is not None:
            self._apply(trainer, trainer.state.epoch + 1)

    def on_epoch_start(self, trainer: TrainerView, event: EpochStart) -> None:
        if self.head is not None:
            self._apply(trainer, event.epoch)

    def _apply(self, trainer: TrainerView, epoch: int) -> None:
        frozen = epoch <= trainer.config.train.freeze_epochs
        if frozen == self.frozen:
            return
        self.frozen = frozen
        model = trainer.model
        assert model is not None and self.head is not None
        scale = trainer.config.train.backbone_lr_scale
        # DDP expects a gradient for every parameter it wrapped, so there the backbone is frozen by a
        # zero rate instead (its batch norm then waits for phase 2 too): the update is exactly zero.
        distributed = bool(getattr(getattr(trainer, "dist", None), "active", False))
        for group in trainer.optimizer.param_groups:
            if "lr_scale" in group:  # the backbone's groups (optim.param_groups)
                group["lr_scale"] = 0.0 if frozen and distributed else scale
        if not distributed:
            norms = norm_parameter_names(model)
            head = self.head + "."
            for name, p in model.named_parameters():
                p.requires_grad_(not frozen or name.startswith(head) or name in norms)
        if frozen:
            text = (
                f"fine-tuning: the new head trains alone for {trainer.config.train.freeze_epochs} epoch(s); "
                "the backbone is frozen (its batch norm keeps training)"
            )
        else:
            text = f"fine-tuning: the whole model trains now, the backbone at {scale:g} x the rate"
        trainer.message(text)
