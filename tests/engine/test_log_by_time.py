"""Step records come by time as well as by step count: a slow model's first point comes in seconds."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import studio.engine.trainer as trainer_module
from studio.config import Config, with_overrides
from studio.engine.trainer import Trainer


def test_slow_steps_are_logged_every_log_every_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The trainer's clock advances 0.6 s a reading, so a step looks slow (a ResNet on a big image
    # on a CPU) however fast it really is; nothing sleeps.
    clock = SimpleNamespace(now=time.perf_counter())

    def perf_counter() -> float:
        clock.now += 0.6
        return clock.now

    monkeypatch.setattr(trainer_module, "time", SimpleNamespace(perf_counter=perf_counter))
    cfg = with_overrides(
        Config(), ['train.device="cpu"', "train.epochs=1", "train.log_every=50", "train.log_every_s=2.0"]
    )
    Trainer(cfg, tmp_path / "run").fit()
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in lines if r["kind"] == "step"]
    assert steps[0] < 10  # the first point comes within a few steps, not at step 50
    assert len(steps) > 100 // 50 + 1  # more points than the step count alone would give (100 steps)
    assert all(b - a < 50 for a, b in itertools.pairwise(steps))


def test_log_every_s_is_a_config_key_with_limits() -> None:
    from studio.config import config_from_dict
    from studio.errors import ConfigError

    assert Config().train.log_every_s == 2.0
    with pytest.raises(ConfigError, match="log_every_s"):
        config_from_dict({"train": {"log_every_s": 0}})
