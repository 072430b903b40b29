"""Reading a run's step records while it is being written (tests only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.engine.run_dir import read_metrics


def step_records(run_dir: Path) -> list[dict[str, Any]]:
    """The step records so far; `read_metrics` skips a line the writer is still in the middle of."""
    return [r for r in read_metrics(run_dir) if r.get("kind") == "step"]
