"""Fine-tuning pretrained weights: the head alone first (batch norm training), then everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import studio.data as data
from studio.config import Config, ModelConfig, with_overrides
from studio.engine.callbacks import Callback
from studio.engine.fine_tune import norm_parameter_names
from studio.engine.trainer import Trainer
from studio.models import build_model
from tests.export.runs import tiny_digits

LOAD = tiny_digits(160, 8)  # 8 px digits: resnet18 trains a few steps in a second


class Snapshots(Callback):
    """Copies of the weights and the optimizer's rates at fit start and at each epoch's end."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, torch.Tensor]] = {}
        self.rates: dict[str, list[float]] = {}

    def _take(self, trainer: Any, when: str) -> None:
        self.at[when] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        self.rates[when] = [g["lr"] for g in trainer.optimizer.param_groups]

    def on_fit_start(self, trainer: Any, event: Any) -> None:
        self._take(trainer, "start")

    def on_epoch_end(self, trainer: Any, event: Any) -> None:
        self._take(trainer, f"epoch{event.epoch}")


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A resnet18 trained a few steps on the digits and saved as a state dict: the 'pretrained' weights."""
    monkeypatch.setitem(data.LOADERS, "digits", LOAD)
    bundle = LOAD(Config())
    torch.manual_seed(1)
    model = build_model(ModelConfig(arch="resnet18"), bundle.spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = bundle.train.x[:32].float() / 255
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x), bundle.train.y[:32])
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "digits-resnet18.pth"
    torch.save(model.net.state_dict(), path)
    return path


def config(weights: Path, *overrides: str) -> Config:
    return with_overrides(
        Config(),
        [
            'train.device="cpu"',
            'model.arch="resnet18"',
            f'model.weights="{weights.as_posix()}"',
            "train.epochs=2",
            "train.batch_size=32",
            "train.lr=0.01",
            *overrides,
        ],
    )


def split(state: dict[str, torch.Tensor], model_norms: set[str]) -> tuple[list[str], list[str], list[str]]:
    """(head, frozen backbone, norm) parameter names of the resnet, in the StudioModel's naming."""
    head = [k for k in state if k.startswith("net.fc.")]
    norms = [k for k in state if k in model_norms]
    frozen = [k for k in state if k.startswith("net.") and k.endswith("weight") and k not in norms and k not in head]
    return head, frozen, norms


def test_the_backbone_starts_from_the_file_stays_frozen_then_trains(weights: Path, tmp_path: Path) -> None:
    saved = torch.load(weights, weights_only=True)
    snaps = Snapshots()
    trainer = Trainer(config(weights), tmp_path / "run", callbacks=[snaps])
    summary = trainer.fit()
    assert summary["status"] == "completed"
    assert trainer.model is not None
    head, frozen, norms = split(snaps.at["start"], norm_parameter_names(trainer.model))
    assert head and frozen and norms
    start, one, two = snaps.at["start"], snaps.at["epoch1"], snaps.at["epoch2"]
    # The backbone starts from the file.
    for key, value in saved.items():
        assert torch.equal(start[f"net.{key}"], value), key
    # Phase 1: the head trains, every other weight is exactly as loaded, batch norm keeps training.
    assert any(not torch.equal(start[k], one[k]) for k in head)
    for key in frozen:
        assert torch.equal(start[key], one[key]), key
    assert not torch.equal(start["net.bn1.running_mean"], one["net.bn1.running_mean"])
    assert any(not torch.equal(start[k], one[k]) for k in norms)
    # Phase 2: the whole model trains, the backbone at a tenth of the head's rate.
    changed = [k for k in frozen if not torch.equal(one[k], two[k])]
    assert len(changed) == len(frozen)
    head_rate, backbone_rate = snaps.rates["epoch2"][0], snaps.rates["epoch2"][-1]
    assert backbone_rate == pytest.approx(head_rate * 0.1)
    assert all(p.requires_grad for p in trainer.model.parameters())


def test_a_resumed_run_keeps_its_phase(weights: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    c = config(weights, "train.freeze_epochs=2")
    Trainer(c.replace_value("train.epochs", 1), run).fit()
    snaps = Snapshots()
    trainer = Trainer(c, run, resume=True, callbacks=[snaps])
    trainer.fit()
    assert trainer.model is not None
    _, frozen, _ = split(snaps.at["start"], norm_parameter_names(trainer.model))
    for key in frozen:  # epoch 2 is still inside freeze_epochs: the resumed run keeps the backbone frozen
        assert torch.equal(snaps.at["start"][key], snaps.at["epoch2"][key]), key


def test_without_pretrained_weights_nothing_is_frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(data.LOADERS, "digits", LOAD)
    snaps = Snapshots()
    c = with_overrides(Config(), ['train.device="cpu"', 'model.arch="lenet"', "train.epochs=1"])
    trainer = Trainer(c, tmp_path / "run", callbacks=[snaps])
    trainer.fit()
    assert trainer.model is not None and all(p.requires_grad for p in trainer.model.parameters())
    assert len(snaps.rates["start"]) == 2  # the plain decay / no-decay groups, no backbone rate


def test_under_ddp_the_backbone_is_frozen_by_a_zero_rate(weights: Path) -> None:
    from types import SimpleNamespace

    from studio.engine.fine_tune import FineTune
    from studio.engine.optim import build_optimizer
    from studio.models import head_name

    cfg = config(weights)
    model = build_model(cfg.model, LOAD(cfg).spec)
    optimizer = build_optimizer(model, cfg.train, head_name(model, cfg.model))
    said: list[str] = []
    trainer = SimpleNamespace(
        model=model,
        optimizer=optimizer,
        config=cfg,
        state=SimpleNamespace(epoch=0),
        dist=SimpleNamespace(active=True),
        message=said.append,
    )
    tune = FineTune()
    tune.on_fit_start(trainer, None)  # type: ignore[arg-type]
    assert all(p.requires_grad for p in model.parameters())  # DDP sees every parameter's gradient
    assert [g.get("lr_scale") for g in optimizer.param_groups][-1] == 0.0
    tune.on_epoch_start(trainer, SimpleNamespace(epoch=2))  # type: ignore[arg-type]
    assert [g.get("lr_scale") for g in optimizer.param_groups][-1] == pytest.approx(0.1)
    assert len(said) == 2
