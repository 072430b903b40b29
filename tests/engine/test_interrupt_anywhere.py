"""Ctrl-C wherever it lands (forward, backward, inside the optimizer step, the records, validation, a save)
leaves a `last.pt` from which the resumed run equals the uninterrupted one, bit for bit on the CPU.

Each case raises KeyboardInterrupt from inside the loop at a chosen call, deterministically: from a
model hook, an optimizer step hook, or a wrapped file write. One case sends a real SIGINT from
inside the optimizer step, which the loop must hold back until the step is complete.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from studio.config import Config, with_overrides
from studio.data import DataBundle, load_data
from studio.engine import checkpoint as ckpt
from studio.engine import run_dir as run_dir_module
from studio.engine.callbacks import Callback
from studio.engine.checkpoint import load_checkpoint
from studio.engine.trainer import Trainer

# 800 training samples in batches of 32: 25 steps an epoch, a step record every 5 steps. Dropout and
# flips draw random numbers every batch, so a resume that restores the wrong RNG state shows.
BASE = [
    'train.device="cpu"',
    "train.epochs=2",
    "train.batch_size=32",
    "train.log_every=5",
    "data.val_split=0.8",
    "data.test_split=0.1",
    "model.dropout=0.2",
    "augment.flip=true",
]


def make_config(*extra: str) -> Config:
    return with_overrides(Config(), [*BASE, *extra])


@pytest.fixture(scope="module")
def bundle() -> DataBundle:
    return load_data(make_config())


@pytest.fixture(scope="module")
def references(bundle: DataBundle, tmp_path_factory: pytest.TempPathFactory) -> Callable[[tuple[str, ...]], Path]:
    """The uninterrupted run for a config, trained once per module."""
    done: dict[tuple[str, ...], Path] = {}

    def get(extra: tuple[str, ...]) -> Path:
        if extra not in done:
            run = tmp_path_factory.mktemp("reference") / "run"
            Trainer(make_config(*extra), run, data=bundle).fit()
            done[extra] = run
        return done[extra]

    return get


def stripped_records(run: Path) -> list[dict[str, Any]]:
    drop = ("time", "samples_per_s")
    return [{k: v for k, v in r.items() if k not in drop} for r in run_dir_module.read_metrics(run)]


def assert_same_run(reference: Path, resumed: Path) -> None:
    for which in ("last", "best"):
        a = load_checkpoint(reference / "checkpoints" / f"{which}.pt")
        b = load_checkpoint(resumed / "checkpoints" / f"{which}.pt")
        assert a["model"].keys() == b["model"].keys()
        for key in a["model"]:
            assert torch.equal(a["model"][key], b["model"][key]), f"{which}.pt {key} differs"
        assert (a["epoch"], a["pos"], a["step"]) == (b["epoch"], b["pos"], b["step"])
    assert stripped_records(resumed) == stripped_records(reference)
    sa = json.loads((reference / "summary.json").read_text())
    sb = json.loads((resumed / "summary.json").read_text())
    assert sb["status"] == "completed"
    assert (sa["metrics"], sa["best"], sa["step"]) == (sb["metrics"], sb["best"], sb["step"])


class Inject(Callback):
    """Installs `install(trainer)` once the trainer has built its model and optimizer."""

    def __init__(self, install: Callable[[Trainer], None]) -> None:
        self.install = install

    def on_fit_start(self, trainer: Trainer, event: Any) -> None:
        self.install(trainer)


def interrupt() -> None:
    raise KeyboardInterrupt


def nth(n: int, action: Callable[[], None] = interrupt) -> Callable[[], None]:
    """A function that does `action` on its n-th call (1-based) and nothing on the others."""
    calls = [0]

    def tick() -> None:
        calls[0] += 1
        if calls[0] == n:
            action()

    return tick


def on_forward(n: int, training: bool = True) -> Callable[[Trainer], None]:
    def install(t: Trainer) -> None:
        tick = nth(n)
        t.model.register_forward_pre_hook(lambda m, args: tick() if m.training == training else None)

    return install


def on_backward(n: int) -> Callable[[Trainer], None]:
    def install(t: Trainer) -> None:
        tick = nth(n)
        first_linear = next(m for m in t.model.modules() if isinstance(m, torch.nn.Linear))
        first_linear.weight.register_hook(lambda grad: tick())

    return install


def before_update(n: int, action: Callable[[], None] | None = None) -> Callable[[Trainer], None]:
    def install(t: Trainer) -> None:
        tick = nth(n, action) if action else nth(n)
        t.optimizer.register_step_pre_hook(lambda opt, args, kwargs: tick())

    return install


def after_update(n: int) -> Callable[[Trainer], None]:
    def install(t: Trainer) -> None:
        tick = nth(n)
        t.optimizer.register_step_post_hook(lambda opt, args, kwargs: tick())

    return install


def sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def interrupted_then_resumed(
    tmp_path: Path, bundle: DataBundle, extra: tuple[str, ...], install: Callable[[Trainer], None] | None = None
) -> Path:
    run = tmp_path / "run"
    c = make_config(*extra)
    with pytest.raises(KeyboardInterrupt):
        Trainer(c, run, callbacks=[Inject(install)] if install else [], data=bundle).fit()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped" and "Ctrl-C" in summary["reason"]
    Trainer(c, run, resume=True, data=bundle).fit()
    return run


CASES = {
    "forward of the first step": ((), on_forward(1)),
    "forward mid-epoch": ((), on_forward(13)),
    "backward mid-epoch": ((), on_backward(13)),
    "optimizer step, before the update": ((), before_update(13)),
    "optimizer step, after the update": ((), after_update(13)),
    "optimizer step, before the update of a logged step": ((), before_update(10)),
    "optimizer step, after the update of a logged step": ((), after_update(10)),
    "optimizer step, after the epoch's last update": ((), after_update(25)),
    "validation": ((), on_forward(1, training=False)),
    "second epoch, after the update": ((), after_update(38)),
    "second micro-batch's backward (accumulate 2)": (("train.accumulate=2",), on_backward(14)),
    "optimizer step, after the update (accumulate 2)": (("train.accumulate=2",), after_update(7)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_interrupt_anywhere_resumes_bit_exact(
    case: str, tmp_path: Path, bundle: DataBundle, references: Callable[[tuple[str, ...]], Path]
) -> None:
    extra, install = CASES[case]
    run = interrupted_then_resumed(tmp_path, bundle, extra, install)
    assert_same_run(references(extra), run)


def test_interrupt_before_an_update_saves_the_step_before(tmp_path: Path, bundle: DataBundle) -> None:
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_config(), run, callbacks=[Inject(before_update(13))], data=bundle).fit()
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (state["epoch"], state["pos"], state["step"]) == (0, 12 * 32, 12)


def test_interrupt_after_an_update_saves_that_step(tmp_path: Path, bundle: DataBundle) -> None:
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_config(), run, callbacks=[Inject(after_update(13))], data=bundle).fit()
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (state["epoch"], state["pos"], state["step"]) == (0, 13 * 32, 13)


def test_a_real_ctrl_c_inside_the_step_waits_for_the_step_to_finish(
    tmp_path: Path, bundle: DataBundle, references: Callable[[tuple[str, ...]], Path]
) -> None:
    # SIGINT arrives before the update: the loop holds it until the step's update and bookkeeping
    # are done, so the checkpoint holds step 13 rather than a torn or repeated one.
    run = interrupted_then_resumed(tmp_path, bundle, (), before_update(13, sigint))
    assert_same_run(references(()), run)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # fit() put the handler back


def test_a_real_ctrl_c_lands_on_step_13(tmp_path: Path, bundle: DataBundle) -> None:
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_config(), run, callbacks=[Inject(before_update(13, sigint))], data=bundle).fit()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 13


def failing_writes(kind: str, n: int, after: bool) -> Callable[[Any, dict[str, Any]], None]:
    """`MetricsFile.write` that raises KeyboardInterrupt at the n-th record of a kind, before or after writing it."""
    original = run_dir_module.MetricsFile.write
    seen = [0]

    def write(metrics: Any, record: dict[str, Any]) -> None:
        hit = False
        if record.get("kind") == kind and record.get("split") != "test":
            seen[0] += 1
            hit = seen[0] == n
        if hit and not after:
            raise KeyboardInterrupt
        original(metrics, record)
        if hit:
            raise KeyboardInterrupt

    return write


@pytest.mark.parametrize(
    ("kind", "n", "after"), [("step", 3, False), ("step", 3, True), ("epoch", 1, False), ("epoch", 2, True)]
)
def test_interrupt_while_writing_a_record_resumes_bit_exact(
    kind: str,
    n: int,
    after: bool,
    tmp_path: Path,
    bundle: DataBundle,
    references: Callable[[tuple[str, ...]], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_dir_module.MetricsFile, "write", failing_writes(kind, n, after))
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_config(), run, data=bundle).fit()
    monkeypatch.undo()
    Trainer(make_config(), run, resume=True, data=bundle).fit()
    assert_same_run(references(()), run)


def test_interrupt_during_the_epoch_end_checkpoint_resumes_bit_exact(
    tmp_path: Path, bundle: DataBundle, references: Callable[[tuple[str, ...]], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ckpt.save_checkpoint
    calls = [0]

    def save_once_interrupted(path: Path, state: dict[str, Any]) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise KeyboardInterrupt
        original(path, state)

    monkeypatch.setattr(ckpt, "save_checkpoint", save_once_interrupted)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_config(), run, data=bundle).fit()
    monkeypatch.undo()
    Trainer(make_config(), run, resume=True, data=bundle).fit()
    assert_same_run(references(()), run)
