"""One record model: the step event is the record on disk; reading metrics.jsonl is safe on any file."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import pytest

from studio.config import Config, with_overrides
from studio.engine.callbacks import Callback
from studio.engine.events import RunStatus, StepEnd
from studio.engine.locking import RUN_LOCK_NAME
from studio.engine.records import CONTRACT_KEYS, EpochRecord, StepRecord, record_from_json, record_to_json
from studio.engine.run_dir import RunDir, read_metrics
from studio.engine.trainer import Trainer
from studio.errors import CheckpointError

STUDIO = Path(__file__).resolve().parents[2] / "studio"

STEP = StepRecord(
    epoch=2,
    step=130,
    loss=0.25,
    accuracy=0.9,
    lr=1e-3,
    batch_size=64,
    time=12.5,
    epoch_progress=0.3,
    samples_per_s=5120.5,
    grad_norm=1.75,
    changed={"lr": [1e-3, 1e-2]},
)
EPOCH = EpochRecord(split="val", epoch=2, step=200, loss=0.3, accuracy=None, lr=1e-3, batch_size=64, time=20.0)


def test_the_step_event_is_the_step_record() -> None:
    assert StepEnd is StepRecord
    assert STEP.epoch_float == pytest.approx(1.3)


def test_a_record_reads_like_its_json_line() -> None:
    line = record_to_json(STEP)
    assert list(line)[: len(CONTRACT_KEYS)] == list(CONTRACT_KEYS)
    assert line["kind"] == "step" and line["split"] == "train" and line["changed"] == {"lr": [1e-3, 1e-2]}
    assert STEP["loss"] == 0.25 and STEP.get("changed") == {"lr": [1e-3, 1e-2]} and dict(STEP) == line
    # A key the line leaves out is absent, not None: "no live change" reads as before.
    plain = StepRecord(epoch=1, step=10, loss=1.0, accuracy=None, lr=0.1, batch_size=8, time=0.5)
    assert "changed" not in plain and plain.get("changed") is None and "cuda_memory_allocated" not in plain.keys()
    with pytest.raises(KeyError):
        plain["changed"]
    assert plain["accuracy"] is None  # a contract key is always there, null or not
    assert EPOCH["kind"] == "epoch" and EPOCH["split"] == "val" and set(CONTRACT_KEYS) <= EPOCH.keys()
    # JSON has no NaN: a non-finite value reads as the null the file holds.
    diverged = EpochRecord(split="val", epoch=1, step=5, loss=math.inf, accuracy=0.1)
    assert diverged["loss"] is None and json.dumps(record_to_json(diverged), allow_nan=False)


@pytest.mark.parametrize(
    "record",
    [
        STEP,
        EPOCH,
        StepRecord(
            epoch=1,
            step=1,
            loss=2.0,
            accuracy=None,
            lr=0.1,
            batch_size=1,
            time=0.0,
            cuda_memory_allocated=1 << 30,
            cuda_memory_reserved=2 << 30,
            world_size=2,
        ),
    ],
)
def test_records_survive_a_round_trip_through_json(record: Any) -> None:
    assert record_from_json(json.loads(json.dumps(record_to_json(record)))) == record


def test_older_files_and_untrusted_lines(tmp_path: Path) -> None:
    lines = [
        # An older studio: no epoch_progress, samples_per_s or grad_norm.
        '{"kind": "step", "split": "train", "epoch": 1, "step": 10, "loss": 2.0, "accuracy": 0.1, "lr": 0.001, '
        '"batch_size": 64, "time": 1.0}',
        # A minimal epoch record; the figures it lacks read as None.
        '{"kind": "epoch", "split": "train", "epoch": 1, "step": 10, "loss": 1.5, "accuracy": null}',
        '{"kind": "step", "split": "train", "epoch": 1, "step": 20, "loss": null, "accuracy": null, "lr": 0.1, '
        '"batch_size": 64.0, "time": 2, "grad_norm": "big", "changed": {"lr": [1, 2], "batch_size": "x"}, '
        '"epoch_progress": 7, "samples_per_s": NaN}',
        # Not records: skipped.
        "[1, 2, 3]",
        '"text"',
        '{"kind": "step"}',
        '{"kind": "epoch", "split": "train", "epoch": "1", "step": 1}',
        '{"kind": "epoch", "split": "holdout", "epoch": 1, "step": 1}',
        '{"kind": "epoch", "split": "val", "epoch": true, "step": 1}',
        '{"kind": "epoch", "split": "val", "epoch": -1, "step": 1}',
        '{"kind": "step", "split": "train", "epoch": 1, "step": 3, "loss": "low", "lr": 0.1, "batch_size": 8, '
        '"time": 0}',
        '{"kind": "step", "split": "train", "epoch": 1, "step": 3, "loss": 1e999, "lr": 0.1, "batch_size": 8}',
        '{"kind": "epoch", "split": "val", "epoch": 1, "step": 1, "loss": ' + "9" * 400 + "}",
        "[" * 100_000,
        '{"kind": "epoch", "split": "val", "epoch": 2, "st',  # the torn last line of a killed run
    ]
    run = tmp_path / "run"
    run.mkdir()
    (run / RunDir.METRICS).write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe not utf-8\n")
    records = read_metrics(run)
    assert [type(r).__name__ for r in records] == ["StepRecord", "EpochRecord", "StepRecord", "EpochRecord"]
    old, minimal, odd, huge = records
    assert isinstance(old, StepRecord) and old.epoch_progress is None and old.epoch_float == 1.0
    assert "samples_per_s" not in old and old.grad_norm is None
    assert isinstance(minimal, EpochRecord) and minimal.lr is None and minimal["lr"] is None
    assert isinstance(odd, StepRecord) and math.isnan(odd.loss) and odd["loss"] is None
    assert odd.batch_size == 64 and odd.time == 2.0 and odd.grad_norm is None and odd.epoch_progress is None
    assert odd.changed == {"lr": [1, 2]} and odd.samples_per_s is not None and math.isnan(odd.samples_per_s)
    assert isinstance(huge, EpochRecord) and huge.loss is None
    assert read_metrics(tmp_path / "missing") == []


def test_the_live_events_are_the_records_on_disk(tmp_path: Path) -> None:
    class Steps(Callback):
        def __init__(self) -> None:
            self.events: list[Any] = []

        def on_step_end(self, trainer: Any, event: Any) -> None:
            self.events.append(event)

    steps = Steps()
    config = with_overrides(
        Config(), ['train.device="cpu"', "train.epochs=1", "data.val_split=0.8", "train.batch_size=32"]
    )
    summary = Trainer(config, tmp_path / "run", callbacks=[steps]).fit()
    on_disk = [r for r in read_metrics(tmp_path / "run") if isinstance(r, StepRecord)]
    assert steps.events and steps.events == on_disk
    assert all(0 < e.epoch_progress <= 1 for e in on_disk)
    epochs = [r for r in read_metrics(tmp_path / "run") if isinstance(r, EpochRecord)]
    assert [(r.split, r.epoch) for r in epochs] == [("train", 1), ("val", 1), ("test", 1)]
    assert summary["status"] == RunStatus.COMPLETED and type(summary["status"]) is str
    assert json.loads((tmp_path / "run" / RunDir.SUMMARY).read_text())["status"] == "completed"


def test_run_status_values_are_the_contract_strings() -> None:
    assert [s.value for s in RunStatus] == ["completed", "early_stopped", "stopped", "failed"]
    assert RunStatus.STOPPED == "stopped" and f"{RunStatus.EARLY_STOPPED}" == "early_stopped"


def test_run_dir_names_every_file(tmp_path: Path) -> None:
    files = RunDir(tmp_path / "run")
    assert files.config.name == "config.toml" and files.metrics.name == "metrics.jsonl"
    assert files.summary.name == "summary.json" and files.onnx.name == "model.onnx"
    assert files.checkpoint("last") == tmp_path / "run" / "checkpoints" / "last.pt"
    assert files.checkpoint("best").parent == files.checkpoints
    assert files.lock_file.name == RUN_LOCK_NAME and files.lock().path == files.lock_file
    assert Path(files) == tmp_path / "run" and RunDir(files) == files and RunDir(str(files)) == files
    with pytest.raises(CheckpointError, match="must be best or last"):
        files.checkpoint("first")
    with pytest.raises(CheckpointError, match="not found"):
        files.check()
    files.checkpoints.mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"no config\.toml"):
        files.check()
    files.config.write_text("seed = 0\n")
    assert files.check() == files and files.is_run()
    assert not files.has_checkpoint() and files.best_or_last() is None
    files.checkpoint("last").write_bytes(b"")
    assert files.has_checkpoint() and files.has_checkpoint("last") and not files.has_checkpoint("best")
    assert files.best_or_last("best") == "last" and files.best_or_last("last") == "last"
    files.summary.write_text("[1, 2]")  # valid JSON, but no summary
    assert files.read_summary() is None
    files.summary.write_bytes(b"\xff")
    assert files.read_summary() is None
    stale = files.checkpoints / ".last.pt.abcd1234.tmp"
    stale.write_bytes(b"half")
    assert files.stale_temp_files() == [stale] and files.remove_stale_temp_files() == [stale]
    assert not stale.exists()


RUN_FILE_NAMES = {"checkpoints", "last.pt", "best.pt", "metrics.jsonl", "summary.json", "config.toml", "model.onnx"}


def test_only_the_engine_builds_run_file_paths() -> None:
    """Outside studio/engine a run's files are reached through `RunDir`, never as `path / "name"`."""
    offenders = []
    for path in STUDIO.rglob("*.py"):
        if path.relative_to(STUDIO).parts[0] == "engine":
            continue
        offenders += [
            f"{path.relative_to(STUDIO)}:{node.lineno}"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant)
                and node.right.value in RUN_FILE_NAMES
            )
        ]
    assert offenders == []
