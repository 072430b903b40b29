"""LR finder: the suggestion lies in the descending part, weights come back exactly, the steps are the run's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from studio.cli import main
from studio.config import load_config
from studio.engine.callbacks import Callback
from studio.engine.lr_finder import SMOOTHING, LRFinderPoint, find_lr, lr_schedule, smooth_losses, suggest_lr
from studio.engine.records import StepRecord
from studio.engine.run_dir import read_metrics
from studio.engine.trainer import Trainer
from studio.errors import ConfigError


def _synthetic_curve(n: int = 100) -> tuple[list[float], list[float]]:
    """Flat, then falling, then blowing up: the shape every range test draws."""
    lrs = lr_schedule(1e-6, 1.0, n)
    x = np.log10(lrs)  # -6 .. 0
    loss = 2.3 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -1.3, (x + 1.3) ** 2 * 6, 0.0)
    return lrs, loss.tolist()


def _descending_part(losses: list[float]) -> tuple[int, int]:
    low = int(np.argmin(losses))
    start = max(i for i in range(low) if losses[i] >= losses[0] - 0.05 * (losses[0] - losses[low]))
    return start, low


def test_schedule_is_exponential() -> None:
    lrs = lr_schedule(1e-4, 1.0, 5)
    np.testing.assert_allclose(lrs, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    with pytest.raises(ConfigError):
        lr_schedule(1.0, 0.1, 10)
    with pytest.raises(ConfigError):
        lr_schedule(1e-3, 1.0, 1)


def test_suggestion_lies_in_the_descending_part() -> None:
    lrs, losses = _synthetic_curve()
    i = suggest_lr(lrs, losses)
    assert i is not None
    start, low = _descending_part(losses)
    assert start < i < low
    # Falling at that point, and the rate is between the plateau's end and the minimum's rate.
    assert losses[i + 1] < losses[i] < losses[i - 1]
    assert lrs[start] < lrs[i] < lrs[low]


def test_suggestion_ignores_noise_on_the_plateau() -> None:
    lrs, losses = _synthetic_curve()
    rng = np.random.default_rng(0)
    noisy = (np.array(losses) + rng.normal(0, 0.004, len(losses))).tolist()
    i = suggest_lr(lrs, noisy)
    assert i is not None and 1e-4 < lrs[i] < 1e-2  # the true fall is centred on 1e-3


def test_no_suggestion_when_the_loss_never_falls() -> None:
    lrs = lr_schedule(1e-6, 1.0, 50)
    assert suggest_lr(lrs, [2.3] * 50) is None
    assert suggest_lr(lrs, [2.3 + 0.01 * i for i in range(50)]) is None
    assert suggest_lr(lrs[:5], [2.3, 2.0, 1.5, 1.0, 0.5]) is None  # too short to say
    with pytest.raises(ValueError):
        suggest_lr(lrs, [1.0])


def test_suggestion_is_a_pure_function() -> None:
    lrs, losses = _synthetic_curve()
    before = (list(lrs), list(losses))
    assert suggest_lr(lrs, losses) == suggest_lr(lrs, losses)
    assert (lrs, losses) == before


class Toy(Callback):
    """A small run to range-test (the digits, a 16-unit MLP, Adam at 1e-3), and a hold on its trainer.

    At the fit's start, before the finder snapshots anything, it gives the optimizer some state
    (so restoring it is a real test), puts the model in eval mode and notes both.
    """

    config = load_config("examples/digits.toml", ["model.hidden=[16]", "train.batch_size=32", 'train.device="cpu"'])

    def __init__(self, warm_up: bool = True) -> None:
        self.warm_up = warm_up
        self.trainer: Any = None
        self.weights: dict[str, torch.Tensor] = {}
        self.moments: dict[Any, dict[str, Any]] = {}

    def on_fit_start(self, trainer: Any, event: Any) -> None:
        self.trainer = trainer
        model, opt = trainer.model, trainer.optimizer
        if self.warm_up:
            x, y = trainer.bundle.train.x[:32].float().div(255.0), trainer.bundle.train.y[:32]
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            model.eval()
        self.weights = {k: v.clone() for k, v in model.state_dict().items()}
        self.moments = {
            k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()}
            for k, s in opt.state_dict()["state"].items()
        }


def test_weights_and_optimizer_state_are_restored_exactly() -> None:
    toy = Toy()
    points: list[LRFinderPoint] = []
    result = find_lr(toy.config, start_lr=1e-5, end_lr=10.0, num_steps=60, on_point=points.append, callbacks=[toy])
    model, opt = toy.trainer.model, toy.trainer.optimizer
    assert toy.moments  # the optimizer had state to restore
    assert len(result.lrs) >= 10 and len(points) == len(result.lrs)
    for k, v in model.state_dict().items():
        assert torch.equal(v, toy.weights[k]), k
    for k, s in opt.state_dict()["state"].items():
        for name, t in s.items():
            assert torch.equal(torch.as_tensor(t), torch.as_tensor(toy.moments[k][name])), (k, name)
    assert opt.param_groups[0]["lr"] == 1e-3
    assert not model.training  # the mode it was in
    assert result.lrs == sorted(result.lrs)


def test_stops_when_the_loss_passes_four_times_its_best() -> None:
    result = find_lr(Toy.config, start_lr=1e-4, end_lr=1e4, num_steps=200)
    assert len(result.lrs) < 200
    if "non-finite" in result.reason:
        return
    assert "4x its best" in result.reason
    # Recompute the running average the stop check uses: only the last point passes 4x its best.
    avg, ema = 0.0, []
    for i, v in enumerate(result.raw_losses):
        avg = SMOOTHING * avg + (1 - SMOOTHING) * v
        ema.append(avg / (1 - SMOOTHING ** (i + 1)))
    assert ema[-1] > 4 * min(ema)
    assert all(v <= 4 * min(ema[: i + 1]) for i, v in enumerate(ema[:-1]))


def test_smoothing_is_centred_and_keeps_length() -> None:
    raw = [0.0] * 10 + [10.0] + [0.0] * 10
    smooth = smooth_losses(raw, 5)
    assert len(smooth) == len(raw)
    assert max(range(len(smooth)), key=smooth.__getitem__) == 10  # no lag: the peak stays put
    assert smooth[9] == smooth[11]
    assert smooth_losses([1.0, 2.0, 3.0], 9) == pytest.approx(
        [1.0 * 0 + (5 * 1 + 4 * 2 + 3 * 3) / 12, (4 * 1 + 5 * 2 + 4 * 3) / 13, (3 * 1 + 4 * 2 + 5 * 3) / 12]
    )


def test_a_stop_request_ends_early_and_still_restores() -> None:
    toy = Toy(warm_up=False)
    seen: list[int] = []
    result = find_lr(
        toy.config,
        num_steps=100,
        on_point=lambda p: seen.append(p.step),
        should_stop=lambda: len(seen) >= 5,
        callbacks=[toy],
    )
    weights = toy.weights
    model = toy.trainer.model
    assert len(result.lrs) == 5 and result.reason == "stopped by the user"
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


class StepWeights(Callback):
    """The weights after each of the first `n` steps; with `rates`, also turns the rate knob like a user."""

    def __init__(self, n: int, rates: list[float] | None = None) -> None:
        self.n, self.rates = n, rates
        self.after: list[dict[str, torch.Tensor]] = []
        self.devices: list[str] = []

    def on_fit_start(self, trainer: Any, event: Any) -> None:
        self.devices.append(event.device)

    def on_step_end(self, trainer: Any, record: Any) -> None:
        if len(self.after) < self.n:
            self.after.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        if self.rates is not None and record.step < self.n:
            trainer.control.set_lr(self.rates[record.step])  # applies from the next step
        elif self.rates is not None:
            trainer.control.stop()


def test_lr_find_takes_the_steps_studio_train_takes(tmp_path: Path) -> None:
    """bf16, accumulation 4 and clipping: the finder's steps are `studio train`'s steps at the finder's rates."""
    config = load_config(
        "examples/digits.toml",
        ['train.precision="bf16"', "train.accumulate=4", "train.clip_grad_norm=1.0", "model.hidden=[32]"],
    )
    finder_steps, messages = StepWeights(6), []
    result = find_lr(
        config, start_lr=1e-4, end_lr=1.0, num_steps=30, callbacks=[finder_steps], on_message=messages.append
    )
    assert len(result.lrs) >= 6 and len(finder_steps.after) == 6

    # The same run trained by `studio train`'s loop, every step logged, its rate set live after each step.
    plain = config.replace_value("train.lr", result.lrs[0]).replace_value("train.log_every", 1)
    train_steps = StepWeights(6, rates=result.lrs)
    Trainer(plain, tmp_path / "run", callbacks=[train_steps]).fit()
    for step, (a, b) in enumerate(zip(finder_steps.after, train_steps.after, strict=True), start=1):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"the weights differ after step {step}"
    # Accumulation is the run's: 4 batches a step, so the first step record sits 4 batches into the epoch.
    first = next(r for r in read_metrics(tmp_path / "run") if isinstance(r, StepRecord))
    assert first.epoch_progress == pytest.approx(4 * 64 / 6400)
    # On the CPU bf16 falls back to fp32, and the finder says so as training does.
    fallback = [m for m in messages if "mixed precision (bf16) needs CUDA" in m.text]
    assert bool(fallback) == (finder_steps.devices[0] == "cpu") and all(m.level == "warning" for m in fallback)


@pytest.mark.slow
def test_digits_mlp_with_adam_suggests_a_usable_rate() -> None:
    cfg = load_config("examples/digits.toml")
    assert cfg.model.arch == "mlp" and cfg.train.optimizer == "adam"
    rng_before = torch.get_rng_state()
    result = find_lr(cfg)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the test draws from its own RNG
    assert result.suggestion is not None and 1e-4 <= result.suggestion <= 1e-1
    i = result.suggestion_index
    low = int(np.argmin(result.losses))
    assert i is not None and i < low and result.losses[i] < result.losses[0]
    assert math.isfinite(result.min_loss_lr or math.nan)


@pytest.mark.slow
def test_cli_prints_the_suggested_lr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lr-find", "examples/digits.toml", "--set", "model.hidden=[32]", "--steps", "80"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "suggested lr" in line)
    value = float(line.split("suggested lr:")[1].split()[0])
    assert 1e-4 <= value <= 1e-1


def test_cli_bad_input_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lr-find", str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err.startswith("error: config file")
    assert main(["lr-find", "examples/digits.toml", "--start-lr", "1", "--end-lr", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "error: lr-find needs 0 < start lr < end lr" in err and "Traceback" not in err
