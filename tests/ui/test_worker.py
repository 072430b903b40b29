"""The worker bridge on its own: signals, throttling, errors, and the thread's clean end."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QObject, QThread

from studio.config import Config, config_from_dict
from studio.engine.control import TrainingControl
from studio.engine.events import EpochEnd, Message, StepEnd
from studio.ui.worker import RunOutcome, TrainingWorker, start_training
from tests.ui.metrics_reading import step_records

pytestmark = pytest.mark.usefixtures("qapp")


class Recorder(QObject):
    """Collects every signal a worker sends, in order. Its slots are methods of a QObject that lives
    on the GUI thread, so the connections are queued exactly like the main window's."""

    def __init__(self, worker: TrainingWorker) -> None:
        super().__init__()
        self.events: list[tuple[str, Any, float]] = []
        self.threads: set[Any] = set()
        worker.started.connect(self.on_started)
        worker.fit_started.connect(self.on_fit_started)
        worker.step_ended.connect(self.on_step_ended)
        worker.epoch_ended.connect(self.on_epoch_ended)
        worker.samples_predicted.connect(self.on_samples_predicted)
        worker.message.connect(self.on_message)
        worker.errored.connect(self.on_errored)
        worker.finished.connect(self.on_finished)

    def _add(self, name: str, payload: Any = None) -> None:
        self.threads.add(QThread.currentThread())
        self.events.append((name, payload, time.perf_counter()))

    def on_started(self) -> None:
        self._add("started")

    def on_fit_started(self, e: Any) -> None:
        self._add("fit_started", e)

    def on_step_ended(self, e: Any) -> None:
        self._add("step_ended", e)

    def on_epoch_ended(self, e: Any) -> None:
        self._add("epoch_ended", e)

    def on_samples_predicted(self, e: Any) -> None:
        self._add("samples_predicted", e)

    def on_message(self, e: Any) -> None:
        self._add("message", e)

    def on_errored(self, e: Any) -> None:
        self._add("errored", e)

    def on_finished(self, e: Any) -> None:
        self._add("finished", e)

    def of(self, name: str) -> list[Any]:
        return [payload for n, payload, _ in self.events if n == name]


def run_worker(qtbot: Any, cfg: Config, run_dir: Path, control: TrainingControl | None = None) -> tuple[Any, Any]:
    holder: dict[str, Any] = {}

    def connect(worker: TrainingWorker) -> None:
        holder["rec"] = Recorder(worker)

    thread, worker = start_training(cfg, run_dir, control or TrainingControl(), connect=connect)
    qtbot.waitUntil(thread.isFinished, timeout=60000)
    assert thread.wait(5000)
    qtbot.waitUntil(lambda: bool(holder["rec"].of("finished")), timeout=5000)
    return holder["rec"], worker


def test_a_run_sends_every_step_batched_and_finishes_last(qtbot: Any, tmp_path: Path) -> None:
    cfg = Config().replace_value("train.epochs", 2).replace_value("train.log_every", 1)
    rec, _ = run_worker(qtbot, cfg, tmp_path / "run")
    names = [n for n, _, _ in rec.events]
    assert names[0] == "started" and names[-1] == "finished"
    assert names.count("finished") == 1 and "errored" not in names
    outcome: RunOutcome = rec.of("finished")[0]
    assert outcome.status == "completed" and outcome.summary["epochs_completed"] == 2
    # Batches carry every logged step, oldest first, and no tensors.
    steps = [e for batch in rec.of("step_ended") for e in batch]
    assert [e.step for e in steps] == [r["step"] for r in step_records(tmp_path / "run")]
    assert all(isinstance(e, StepEnd) and isinstance(e.loss, float) for e in steps)
    assert len(rec.of("epoch_ended")) == 2
    # Throttled: 200 logged steps arrive in far fewer emissions (~20 a second at most, plus epoch ends).
    emissions = rec.of("step_ended")
    duration = rec.events[-1][2] - rec.events[0][2]
    assert len(emissions) < len(steps)
    assert len(emissions) <= 20 * duration + 2 * 2 + 2
    # The same lines the CLI prints reach the log.
    texts = [m.text for m in rec.of("message")]
    assert any(t.startswith("epoch 2/2 | train loss") for t in texts)
    assert any(t.startswith("completed: 2 epoch(s)") for t in texts)
    # The validation-samples grid of the last epoch arrives as plain data (numpy and tuples), before finished.
    grids = rec.of("samples_predicted")
    assert grids and grids[-1].epoch == 2 and names.index("samples_predicted") < names.index("finished")
    last = grids[-1]
    assert isinstance(last.images, np.ndarray) and last.images.dtype == np.uint8 and last.images.shape[0] == 24
    assert all(isinstance(v, int) for v in last.true + last.pred) and len(last.labels) == 10
    # Slots ran on the GUI thread (the connections were queued across threads).
    assert rec.threads == {QThread.currentThread()}


def test_an_engine_error_is_reported_then_finished(qtbot: Any, tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("x,y\n1,2\n", encoding="utf-8")
    raw = Config().to_dict()
    raw["data"].update(source="csv", path=str(csv))
    cfg = config_from_dict(raw)
    rec, _ = run_worker(qtbot, cfg, tmp_path / "run")
    names = [n for n, _, _ in rec.events]
    assert names.index("errored") < names.index("finished") == len(names) - 1
    error = rec.of("errored")[0]
    assert error.kind == "input" and "label" in error.message
    assert rec.of("finished")[0].status == "failed"


def test_stop_from_the_gui_thread_ends_the_run(qtbot: Any, tmp_path: Path) -> None:
    control = TrainingControl()
    control.stop()  # asked before the first batch: the loop stops at once and still saves
    rec, _ = run_worker(qtbot, Config(), tmp_path / "run", control)
    outcome = rec.of("finished")[0]
    assert outcome.status == "stopped"
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_throttle_batches_fast_steps_and_flushes_changes() -> None:
    worker = TrainingWorker(Config(), "unused", TrainingControl(), step_interval=10.0)
    sent: list[list[Any]] = []
    worker.step_ended.connect(sent.append)  # same thread: a direct call, easy to count

    def step(i: int, changed: Any = None) -> StepEnd:
        return StepEnd(
            epoch=1,
            step=i,
            loss=1.0,
            accuracy=None,
            lr=0.1,
            batch_size=8,
            time=0.0,
            epoch_progress=i / 100,
            samples_per_s=1.0,
            changed=changed,
        )

    worker.on_step_end(None, step(1))  # the first one goes out at once
    for i in range(2, 50):
        worker.on_step_end(None, step(i))
    assert [len(b) for b in sent] == [1]
    worker.on_step_end(None, step(50, {"lr": [0.1, 0.01]}))  # a live change is shown without delay
    assert [len(b) for b in sent] == [1, 49]
    worker.on_step_end(None, step(51))
    worker.on_epoch_end(None, EpochEnd(1, 1, 51, 0.0, {"train_loss": 1.0}, None, False))  # flushes what is pending
    assert [len(b) for b in sent] == [1, 49, 1]
    assert [e.step for b in sent for e in b] == list(range(1, 52))


def test_engine_messages_reach_the_log_as_they_are(qtbot: Any, tmp_path: Path) -> None:
    """The worker forwards the engine's `Message`s: a warning keeps its level, no text prefix is parsed back."""
    cfg = Config().replace_value("train.epochs", 1).replace_value("train.batch_size", 8192)
    rec, _ = run_worker(qtbot, cfg, tmp_path / "run")
    messages = rec.of("message")
    assert messages and all(isinstance(m, Message) for m in messages)
    warning = next(m for m in messages if "larger than the" in m.text)
    assert warning.level == "warning" and warning.text.startswith("batch size 8192")
    assert not any(m.text.startswith(("warning: ", "error: ")) for m in messages)
    assert any(m.level == "info" and m.text.startswith("epoch 1/1 | train loss") for m in messages)


def test_a_run_whose_owner_let_go_keeps_running_and_stops_at_exit(qtbot: Any, tmp_path: Path) -> None:
    """A script that drops the thread and worker (or ends) must neither destroy a running QThread
    nor lose the run: the module keeps both, and the exit hook stops the run at a step and saves it."""
    import gc

    from studio.ui.worker import running_runs, stop_running_runs

    run = tmp_path / "run"
    control = TrainingControl()
    thread, worker = start_training(Config().replace_value("train.epochs", 50), run, control)
    del thread, worker
    gc.collect()
    qtbot.waitUntil(lambda: bool(step_records(run)), timeout=60000)  # it trains on, unowned
    assert len(running_runs()) == 1
    assert stop_running_runs(60.0) and running_runs() == []
    assert control.stop_requested
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "stopped" and (run / "checkpoints" / "last.pt").is_file()
