"""What `studio train`, `eval` and `predict` print: a live bar or timed lines, tables or JSON."""

from __future__ import annotations

import io
import json
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from studio.cli import main
from studio.engine.events import EpochEnd, EpochStart, FitEnd, FitStart, Message, RunStatus
from studio.engine.progress import ProgressPrinter
from studio.engine.records import StepRecord
from tests.export.runs import toml_for, train_run


class Stream(io.StringIO):
    """A stderr stand-in that says whether it is a terminal and signals each write."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.written = threading.Event()

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        n = super().write(text)
        self.written.set()
        return n


def _fit_start(epochs: int = 2) -> FitStart:
    return FitStart("runs/x", epochs, 1, "cpu", "CPU", "classification", ("0", "1"), 10, "", 6400, 0, 0, False, 0)


def _step(progress: float) -> StepRecord:
    return StepRecord(
        epoch=1, step=10, loss=0.5, accuracy=0.8, lr=0.001, batch_size=64, time=1.0, epoch_progress=progress
    )


def _epoch_end() -> EpochEnd:
    metrics = {"train_loss": 0.5, "train_accuracy": 0.8, "val_loss": None, "val_accuracy": None}
    return EpochEnd(1, 2, 100, 2.0, metrics, 1, True)


def test_off_a_terminal_a_long_epoch_prints_a_progress_line(tmp_path: Path) -> None:
    stream = Stream(tty=False)
    printer = ProgressPrinter(stream, heartbeat_s=0.05)
    printer.on_fit_start(None, _fit_start())  # type: ignore[arg-type]
    printer.on_epoch_start(None, EpochStart(1, 2))  # type: ignore[arg-type]
    stream.written.clear()
    printer.on_step_end(None, _step(0.25))  # type: ignore[arg-type]
    # No further step comes (a slow step): the heartbeat thread writes the line by itself.
    assert stream.written.wait(30)
    printer.on_fit_end(None, FitEnd(RunStatus.STOPPED, "stopped by the user", "runs/x", {"epochs_completed": 0}))  # type: ignore[arg-type]
    text = stream.getvalue()
    assert "epoch 1/2 25% (1,600/6,400 samples) loss 0.5000 acc 0.800 lr 0.001 bs 64" in text and "ETA" in text
    assert "\r" not in text and "\x1b[" not in text  # plain lines, no terminal codes
    assert text.rstrip().endswith("stopped: 0 epoch(s) (stopped by the user); run saved in runs/x")


def test_off_a_terminal_the_line_follows_the_loop_before_any_step_record() -> None:
    stream = Stream(tty=False)
    printer = ProgressPrinter(stream, heartbeat_s=0.05)
    trainer = SimpleNamespace(state=SimpleNamespace(pos=640))  # 10 batches in, no step record yet
    printer.on_fit_start(trainer, _fit_start())  # type: ignore[arg-type]
    printer.on_epoch_start(trainer, EpochStart(1, 2))  # type: ignore[arg-type]
    stream.written.clear()
    assert stream.written.wait(30)
    printer.close()
    assert "epoch 1/2 10% (640/6,400 samples) ETA" in stream.getvalue()


def test_on_a_terminal_a_live_bar_then_the_epoch_line(tmp_path: Path) -> None:
    stream = Stream(tty=True)
    printer = ProgressPrinter(stream)
    printer.on_fit_start(None, _fit_start())  # type: ignore[arg-type]
    printer.on_message(None, Message("warning text", "warning"))  # type: ignore[arg-type]
    printer.on_epoch_start(None, EpochStart(1, 2))  # type: ignore[arg-type]
    printer.on_step_end(None, _step(0.5))  # type: ignore[arg-type]
    printer.on_epoch_end(None, _epoch_end())  # type: ignore[arg-type]
    summary = {"epochs_completed": 1, "metrics": {"test_accuracy": 0.9}, "checkpoint": "best", "best": {"epoch": 1}}
    printer.on_fit_end(None, FitEnd(RunStatus.COMPLETED, None, "runs/x", summary))  # type: ignore[arg-type]
    text = stream.getvalue()
    assert "warning: warning text" in text and "epoch 1/2 | train loss 0.5000" in text
    assert "completed: 1 epoch(s), test accuracy 0.9000 (best checkpoint, epoch 1); run saved in runs/x" in text
    assert printer._bar is None  # the bar is gone at the end


@pytest.fixture
def line_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "line"
    assert main(["train", "examples/line.toml", "--run-dir", str(run_dir), "-q", "--set", "train.epochs=20"]) == 0
    return run_dir


def test_eval_prints_a_table_on_a_terminal_and_json_otherwise(
    line_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capsys.readouterr()
    assert main(["eval", str(line_run)]) == 0  # stdout is not a terminal here: JSON
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["split"] == "train" and "note: evaluated on train (no val or test split)" in err
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["eval", str(line_run)]) == 0
    table = capsys.readouterr().out
    for fragment in ("checkpoint", "RMSE", "R²", "slope (x)", "intercept", "evaluated on train"):
        assert fragment in table
    with pytest.raises(json.JSONDecodeError):
        json.loads(table)
    assert main(["eval", str(line_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"]["slope"] == report["parameters"]["slope"]


def test_predict_prints_a_table_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{'hi' if i > 20 else 'lo'}\n" for i in range(40)))
    run_dir = train_run(tmp_path, "cls", toml_for("csv", "mlp", path=csv, epochs=2))
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n3,1\n30,2\n")
    capsys.readouterr()
    assert main(["predict", str(run_dir), str(rows)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["row"] for r in lines] == [1, 2] and all(r["label"] in ("hi", "lo") for r in lines)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(run_dir), "rows.csv"]) == 0
    table = capsys.readouterr().out
    assert "probability" in table and "rows.csv" in table and "%" in table
    assert main(["predict", str(run_dir), str(rows), "--json"]) == 0
    assert [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()] == [r["label"] for r in lines]
