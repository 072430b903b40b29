"""The presets: ordinary example TOMLs, listed for the window, and the digits preset's promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import load_config, with_overrides
from studio.resources import presets


def test_every_example_is_a_valid_preset_and_the_named_ones_come_first() -> None:
    listed = presets()
    assert [title for title, _ in listed[:2]] == ["Best for digits", "Quick look (any image folder)"]
    best = listed[0][1]
    assert "best" in best.name and "digits" in best.name  # the contract's naming
    for _, path in listed:
        load_config(path)  # every one loads and validates (relative data paths resolve next to it)
    quick = load_config(listed[1][1])
    assert quick.data.source == "folder" and Path(quick.data.path).is_dir()


@pytest.mark.slow
def test_best_digits_reaches_99_percent_on_the_test_split(tmp_path: Path) -> None:
    from studio.engine.trainer import Trainer

    cfg = with_overrides(load_config(presets()[0][1]), ['train.device="cpu"'])
    summary = Trainer(cfg, tmp_path / "run").fit()
    assert summary["metrics"]["test_accuracy"] >= 0.99
