"""The training loop: contract records, exact resume, live control, stops and failures."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from studio.config import Config, with_overrides
from studio.engine.callbacks import Callback
from studio.engine.checkpoint import load_checkpoint
from studio.engine.control import TrainingControl
from studio.engine.early_stopping import EarlyStopping
from studio.engine.optim import param_groups
from studio.engine.schedule import lr_factor
from studio.engine.trainer import Trainer, TrainingFailed

RECORD_KEYS = {"kind", "split", "epoch", "step", "loss", "accuracy", "lr", "batch_size", "time"}


def cfg(*overrides: str) -> Config:
    return with_overrides(Config(), ['train.device="cpu"', *overrides])


def records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


class At(Callback):
    """Runs `action(trainer, event)` once, at the first step record at or after `step`."""

    def __init__(self, step: int, action) -> None:
        self.step, self.action, self.done = step, action, False

    def on_step_end(self, trainer: Trainer, event: Any) -> None:
        if not self.done and event.step >= self.step:
            self.done = True
            self.action(trainer, event)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_digits_mlp_meets_the_bar_and_the_contract(tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = Trainer(cfg("train.epochs=3"), run).fit()
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["metrics"]["val_accuracy"] >= 0.90
    assert summary["metrics"]["test_accuracy"] >= 0.90
    assert summary["best"]["epoch"] in (1, 2, 3) and summary["error"] is None
    for name in ("config.toml", "metrics.jsonl", "summary.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    recs = records(run)
    for r in recs:
        assert RECORD_KEYS <= r.keys()
        assert r["kind"] in ("step", "epoch") and r["split"] in ("train", "val", "test")
        assert isinstance(r["epoch"], int) and r["epoch"] >= 1 and isinstance(r["step"], int)
        assert isinstance(r["loss"], float) and isinstance(r["lr"], float) and isinstance(r["batch_size"], int)
        assert r["accuracy"] is None or 0.0 <= r["accuracy"] <= 1.0
    for epoch in (1, 2, 3):
        assert {r["split"] for r in recs if r["kind"] == "epoch" and r["epoch"] == epoch} >= {"train", "val"}
    steps = [r["step"] for r in recs if r["kind"] == "step"]
    assert steps == sorted(steps) and steps[-1] == 300
    assert max(b - a for a, b in zip([0, *steps], steps, strict=False)) <= 50
    saved = json.loads((run / "summary.json").read_text())
    assert set(saved["metrics"]) == {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
    }


def test_resume_is_bit_exact(tmp_path: Path) -> None:
    # Dropout and flips draw random numbers every batch: resume must restore those RNGs too.
    c = cfg("model.dropout=0.2", "augment.flip=true", "train.epochs=4", "data.val_split=0.5")
    Trainer(c, tmp_path / "full").fit()
    Trainer(c.replace_value("train.epochs", 2), tmp_path / "part").fit()
    Trainer(c, tmp_path / "part", resume=True).fit()
    assert same_weights(tmp_path / "full", tmp_path / "part")

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("time", "samples_per_s")}

    assert [strip(r) for r in records(tmp_path / "full")] == [strip(r) for r in records(tmp_path / "part")]


def test_stop_mid_epoch_saves_and_resumes_exactly(tmp_path: Path) -> None:
    c = cfg("train.epochs=3", "data.val_split=0.5")
    Trainer(c, tmp_path / "full").fit()
    stopped = Trainer(c, tmp_path / "part", callbacks=[At(70, lambda t, e: t.control.stop())]).fit()
    assert stopped["status"] == "stopped" and stopped["epochs_completed"] == 1
    state = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and state["pos"] > 0 and state["step"] == 70
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["status"] == "stopped"
    assert Trainer(c, tmp_path / "part", resume=True).fit()["status"] == "completed"
    assert same_weights(tmp_path / "full", tmp_path / "part")


def test_ctrl_c_saves_last_and_resume_finishes(tmp_path: Path) -> None:
    c = cfg("train.epochs=2", "data.val_split=0.5")
    Trainer(c, tmp_path / "full").fit()

    def interrupt(t: Trainer, e: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(c, tmp_path / "part", callbacks=[At(60, interrupt)]).fit()
    summary = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert summary["status"] == "stopped" and "Ctrl-C" in summary["reason"]
    assert load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")["step"] == 60
    Trainer(c, tmp_path / "part", resume=True).fit()
    assert same_weights(tmp_path / "full", tmp_path / "part")


def test_live_lr_and_batch_size_changes_are_applied_and_recorded(tmp_path: Path) -> None:
    def change(t: Trainer, e: Any) -> None:
        t.control.set_lr(0.0123)
        t.control.set_batch_size(32)

    run = tmp_path / "run"
    Trainer(cfg("train.epochs=1"), run, callbacks=[At(20, change)]).fit()
    steps = [r for r in records(run) if r["kind"] == "step"]
    after = [r for r in steps if r["step"] > 20]
    assert after[0]["step"] == 21 and after[0]["lr"] == 0.0123 and after[0]["batch_size"] == 32
    assert after[0]["changed"] == {"lr": [0.001, 0.0123], "batch_size": [64, 32]}
    assert all(r["lr"] == 0.0123 and r["batch_size"] == 32 for r in after)
    assert all(r["lr"] == 0.001 and r["batch_size"] == 64 for r in steps if r["step"] <= 20)
    # 20 steps of 64, then the rest of the 6,400 samples in batches of 32.
    assert steps[-1]["step"] == 20 + math.ceil((6400 - 20 * 64) / 32)


def test_live_lr_becomes_the_schedules_base(tmp_path: Path) -> None:
    run = tmp_path / "run"
    c = cfg("train.epochs=2", 'train.schedule="cosine"', "data.val_split=0.5")
    Trainer(c, run, callbacks=[At(60, lambda t, e: t.control.set_lr(0.01))]).fit()
    r = next(r for r in records(run) if r["kind"] == "step" and r["step"] == 61)
    progress = (61 * 64) / 3200  # epochs of progress at step 61 (3,200 training samples)
    assert r["lr"] == pytest.approx(0.01 * lr_factor("cosine", progress, 2), rel=1e-3)


def test_control_from_another_thread_pauses_and_stops(tmp_path: Path) -> None:
    control = TrainingControl()
    seen: list[int] = []

    class Count(Callback):
        def on_step_end(self, trainer: Trainer, event: Any) -> None:
            seen.append(event.step)

    c = cfg("train.epochs=50", "train.batch_size=16", "model.hidden=[512, 512]", "train.log_every=1")
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(Trainer(c, tmp_path / "r", [Count()], control).fit()))
    worker.start()
    deadline = time.monotonic() + 120  # hang guards only: each wait below ends on its event
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen
    control.pause()
    assert control.wait_until_held(60)  # the loop reached its pause at a batch boundary
    frozen = len(seen)
    time.sleep(0.5)
    assert len(seen) == frozen and control.held  # nothing trains while paused
    control.resume()
    while len(seen) == frozen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(seen) > frozen and not control.held
    control.stop()
    steps_at_stop = len(seen)
    worker.join(60)
    assert not worker.is_alive()
    # It stopped at the next batch boundary: at most the step in flight when Stop came was finished.
    assert len(seen) - steps_at_stop <= 1
    assert result["status"] == "stopped"


def test_non_finite_loss_fails_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    blow_up = At(110, lambda t, e: t.control.set_lr(1e12))  # epoch 2 (100 steps an epoch)
    c = cfg("train.epochs=3", 'train.optimizer="sgd"', "data.val_split=0.1")
    with pytest.raises(TrainingFailed, match=r"non-finite .* at step \d+.*lower learning rate"):
        Trainer(c, run, callbacks=[blow_up]).fit()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "lower learning rate" in summary["error"]
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_target_loss_and_early_stopping(tmp_path: Path) -> None:
    summary = Trainer(cfg("train.epochs=20", "train.target_loss=0.35"), tmp_path / "t").fit()
    assert summary["status"] == "early_stopped" and "reached the target 0.35" in summary["reason"]
    assert summary["epochs_completed"] < 20 and summary["metrics"]["test_accuracy"] is not None

    es = EarlyStopping(patience=2, min_delta=0.01)
    assert es.update(1.0, 1) == (False, None)
    assert es.update(0.995, 2) == (False, None)  # not enough of an improvement
    stop, reason = es.update(0.999, 3)
    assert stop and "not improved for 2 epochs" in reason and "epoch 1" in reason
    restored = EarlyStopping(2)
    restored.load_state_dict(es.state_dict())
    assert restored.state_dict() == es.state_dict()


def test_early_stopping_ends_a_run_that_stops_improving(tmp_path: Path) -> None:
    # A rate this high makes val loss bounce: patience 1 must end the run early, with its reason.
    c = cfg("train.epochs=30", "train.patience=1", "train.lr=0.05", 'data.source="linear"', 'model.arch="linear"')
    summary = Trainer(c, tmp_path / "r").fit()
    assert summary["status"] == "early_stopped" and "has not improved" in summary["reason"]


def test_gradient_accumulation_and_clipping(tmp_path: Path) -> None:
    summary = Trainer(cfg("train.epochs=1", "train.accumulate=4", "train.clip_grad_norm=1.0"), tmp_path / "r").fit()
    assert summary["step"] == 25  # 100 batches, one optimizer step per 4
    assert summary["metrics"]["val_accuracy"] > 0.8


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_each_optimizer_learns(tmp_path: Path, optimizer: str) -> None:
    lr = "0.05" if optimizer == "sgd" else "0.001"
    s = Trainer(
        cfg(
            "train.epochs=1",
            f'train.optimizer="{optimizer}"',
            f"train.lr={lr}",
            "train.weight_decay=0.01",
            "train.nesterov=true",
        ),
        tmp_path / "r",
    ).fit()
    assert s["metrics"]["val_accuracy"] > 0.85


def test_weight_decay_spares_biases() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    decay, no_decay = param_groups(net, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert len(no_decay["params"]) == 4  # two biases, the norm's weight and bias


def test_schedules() -> None:
    assert lr_factor("none", 3.0, 5) == 1.0
    assert lr_factor("step", 10.0, 30, step_size=10, gamma=0.1) == pytest.approx(0.1)
    assert lr_factor("cosine", 0.0, 10) == 1.0 and lr_factor("cosine", 10.0, 10) == pytest.approx(0.0)
    assert lr_factor("onecycle", 3.0, 10) == pytest.approx(1.0)
    assert lr_factor("onecycle", 0.0, 10) == pytest.approx(1 / 25)
    assert lr_factor("none", 0.5, 10, warmup_epochs=1.0) == pytest.approx(0.55)


def test_regression_learns_the_line(tmp_path: Path) -> None:
    c = cfg('data.source="linear"', 'model.arch="linear"', 'train.optimizer="sgd"', "train.lr=0.01", "train.epochs=100")
    s = Trainer(c, tmp_path / "r").fit()
    assert s["status"] == "completed" and s["metrics"]["train_accuracy"] is None
    model = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["model"]
    from studio.engine.report import load_trained

    trained = load_trained(tmp_path / "r", "last")
    with torch.no_grad():
        pred = trained.model(torch.tensor([[1.5], [3.5], [4.8]]))[:, 0]
    assert torch.allclose(pred, torch.tensor([4.0, 8.0, 10.6]), atol=0.2)
    assert "output_scale.std" in model


def test_mixed_precision_without_cuda_warns(tmp_path: Path) -> None:
    messages: list[str] = []

    class Log(Callback):
        def on_message(self, trainer: Trainer, event: Any) -> None:
            messages.append(event.text)

    Trainer(
        cfg("train.epochs=1", 'train.precision="bf16"', 'data.source="linear"', 'model.arch="linear"'),
        tmp_path / "r",
        [Log()],
    ).fit()
    assert any("needs CUDA" in m for m in messages)


def test_a_lone_last_sample_joins_the_last_batch(tmp_path: Path) -> None:
    from studio.data import load_data
    from studio.data.batches import cut_size
    from studio.resources import resource_path

    assert [cut_size(4, r) for r in (10, 6, 5, 2, 1)] == [4, 4, 5, 2, 1]
    # 75 training rows in batches of 37 would leave one row alone, which breaks BatchNorm in training.
    c = cfg(
        'data.source="csv"',
        f'data.path="{resource_path("examples", "iris.csv")}"',
        'data.target="species"',
        "data.val_split=0.2",
        "data.test_split=0.3",
        "train.batch_size=37",
        "train.epochs=2",
        "train.log_every=1",
        "model.hidden=[8]",
    )
    assert len(load_data(c).train) == 75
    seen: list[int] = []

    class Sizes(Callback):
        def on_step_end(self, trainer: Trainer, event: Any) -> None:
            seen.append(event.step)

    summary = Trainer(c, tmp_path / "r", [Sizes()]).fit()
    assert summary["status"] == "completed" and summary["step"] == 4 and seen == [1, 2, 3, 4]
