"""Classification or regression for a CSV target, decided as a careful person would, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import config_from_dict, load_config
from studio.data import load_data, task_decision
from studio.data.tabular import decide_task


def _config(tmp_path: Path, targets: list[int | float | str], **data: object) -> object:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{t}\n" for i, t in enumerate(targets)), encoding="utf-8")
    return config_from_dict({"data": {"source": "csv", "path": str(path), "target": "y", **data}})


def test_many_whole_numbers_are_a_quantity(tmp_path: Path) -> None:
    """Disease-progression scores: 187 distinct whole numbers over 442 rows."""
    scores = [25 + (i * 7) % 187 for i in range(442)]
    assert len(set(scores)) == 187
    cfg = _config(tmp_path, scores)
    task, reason = task_decision(cfg)
    assert task == "regression"
    assert "187 distinct whole numbers over 442 rows" in reason and 'task = "classification"' in reason
    bundle = load_data(cfg)
    assert bundle.spec.task == "regression" and bundle.task_reason == reason
    assert reason in bundle.summary()


def test_iris_is_classification() -> None:
    task, reason = task_decision(load_config("examples/iris.toml"))
    assert task == "classification" and "text values" in reason


def test_the_line_is_regression() -> None:
    assert task_decision(load_config("examples/line.toml"))[0] == "regression"
    assert task_decision(config_from_dict({"data": {"source": "linear"}}))[0] == "regression"
    assert task_decision(config_from_dict({}))[0] == "classification"


def test_few_whole_numbers_are_classes(tmp_path: Path) -> None:
    task, reason = task_decision(_config(tmp_path, [i % 10 for i in range(1000)]))
    assert task == "classification" and "10 distinct whole numbers over 1000 rows" in reason


@pytest.mark.parametrize(
    ("cells", "task"),
    [
        (["0", "1"] * 3, "classification"),  # two values are always classes
        (["1", "2", "3", "2.5"], "regression"),
        (["1", "2", "3", "a"], "classification"),
        ([str(i % 40) for i in range(200)], "regression"),  # 40 values over 200 rows: 20% of the rows
        ([str(i % 40) for i in range(2000)], "classification"),
        ([str(i % 150) for i in range(100_000)], "regression"),  # more than 100 classes
    ],
)
def test_decide_task(cells: list[str], task: str) -> None:
    assert decide_task(cells)[0] == task


def test_the_config_flips_the_decision(tmp_path: Path) -> None:
    scores = [25 + (i * 7) % 187 for i in range(442)]
    cfg = _config(tmp_path, scores, task="classification")
    task, reason = task_decision(cfg)
    assert task == "classification" and reason == '[data] task = "classification" in the config'
    assert len(load_data(cfg).spec.labels) == 187
    few = _config(tmp_path, [i % 3 for i in range(300)], task="regression")
    assert task_decision(few)[0] == "regression" and load_data(few).spec.task == "regression"
