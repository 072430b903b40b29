"""Reading a run's metrics.jsonl while it is being written (tests only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def step_records(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # the writer may be mid-line
        if rec.get("kind") == "step":
            out.append(rec)
    return out
