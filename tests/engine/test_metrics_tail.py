"""Reading a metrics.jsonl while another process writes it: complete lines only, garbage skipped, rewrites seen."""

from __future__ import annotations

import json
import os
from pathlib import Path

from studio.engine.metrics_tail import MAX_LINE, MetricsTail
from studio.engine.records import EpochRecord, StepRecord
from studio.files import atomic_write_text


def step(n: int) -> str:
    return json.dumps(
        {
            "kind": "step",
            "split": "train",
            "epoch": 1,
            "step": n,
            "loss": 1.0 / n,
            "accuracy": None,
            "lr": 0.1,
            "batch_size": 8,
            "time": n * 0.1,
        }
    )


def test_complete_lines_only_and_garbage_skipped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read() == ([], False)  # no file yet
    line = step(2)
    path.write_text(step(1) + "\n" + "not json\n" + '{"kind": "step"}\n' + "[1, 2]\n" + line[:20], encoding="utf-8")
    records, restarted = tail.read()
    assert [r.step for r in records] == [1] and not restarted
    assert tail.pending and tail.skipped == 3
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line[20:])  # the rest of the torn line, still without its newline
    assert tail.read() == ([], False)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(
            "\n"
            + json.dumps({"kind": "epoch", "split": "val", "epoch": 1, "step": 2, "loss": 0.5, "accuracy": None})
            + "\n"
        )
    records, _ = tail.read()
    assert isinstance(records[0], StepRecord) and records[0].step == 2
    assert isinstance(records[1], EpochRecord) and records[1].split == "val"
    assert not tail.pending


def test_a_rewritten_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(step(n) + "\n" for n in range(1, 6)), encoding="utf-8")
    tail = MetricsTail(path)
    assert len(tail.read()[0]) == 5
    atomic_write_text(path, step(1) + "\n" + step(2) + "\n")  # a resume keeps the records up to its checkpoint
    records, restarted = tail.read()
    assert restarted and [r.step for r in records] == [1, 2]


def test_a_vanished_file_and_an_endless_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"x" * (MAX_LINE + 10))
    tail = MetricsTail(path)
    assert tail.read() == ([], False) and not tail.pending  # dropped, not kept growing
    os.remove(path)
    assert tail.read() == ([], False)
    path.write_text(step(1) + "\n", encoding="utf-8")
    records, _ = tail.read()
    assert [r.step for r in records] == [1]
