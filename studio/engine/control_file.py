"""Live control through the run directory (control.json), and its broadcast to every rank of a DDP run.

Any process may steer a run it can reach through the file system (a window following a run on
shared storage, a script, `echo > control.json`) by writing control.json atomically:

    {"lr": 0.01, "batch_size": 128, "pause": false, "stop": false}

Every key is optional. Rank 0 (the only process of a single-process run) reads the file at step
boundaries, at most a few times a second, and applies what changed since it last read it: a
changed `lr` or `batch_size` is a live change (recorded in metrics.jsonl like one from the
window), `pause` true/false pauses and resumes, `stop` true stops the run cleanly. What the file
says when the fit starts is its baseline, so a stale file from an earlier session changes nothing.
Under DDP, `ControlExchange` broadcasts rank 0's decisions so all ranks apply them at the same step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.engine.control import TrainingControl
from studio.engine.distributed import Dist
from studio.files import atomic_write_json

KEYS = ("lr", "batch_size", "pause", "stop")
POLL_S = 0.25  # how often rank 0 looks at control.json (a stat; read only when it changed)

Say = Callable[[str, str], None]


def write_control(path: Path, **values: Any) -> None:
    """Write control.json atomically with these keys (others it holds are kept)."""
    current = read_control(path)
    current.update({k: v for k, v in values.items() if k in KEYS})
    atomic_write_json(path, current)


def read_control(path: Path) -> dict[str, Any]:
    """The valid keys of control.json; a missing, torn or foreign file reads as {} (it is untrusted input)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    lr, bs = raw.get("lr"), raw.get("batch_size")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 < lr <= 100:
        out["lr"] = float(lr)
    if isinstance(bs, int) and not isinstance(bs, bool) and 1 <= bs <= 1 << 20:
        out["batch_size"] = bs
    for key in ("pause", "stop"):
        if isinstance(raw.get(key), bool):
            out[key] = raw[key]
    return out


class ControlFile:
    """Rank 0's reader of control.json: applies what changed since the last read to a `TrainingControl`."""

    def __init__(self, path: Path, say: Say) -> None:
        self.path = path
        self.say = say
        self._stamp = self._stat()
        self._seen = read_control(path)  # the baseline: what a stale file says changes nothing
        self._next = time.monotonic() + POLL_S

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def poll(self, control: TrainingControl) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + POLL_S
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        values = read_control(self.path)
        changed = {k: v for k, v in values.items() if self._seen.get(k) != v}
        self._seen = values
        if "lr" in changed:
            control.set_lr(changed["lr"])
        if "batch_size" in changed:
            control.set_batch_size(changed["batch_size"])
        if changed.get("stop"):
            self.say("control.json asks to stop: stopping at the next step", "info")
            control.stop()
        if "pause" in changed:
            self.say(f"control.json: {'pause' if changed['pause'] else 'resume'}", "info")
            (control.pause if changed["pause"] else control.resume)()


class ControlExchange:
    """At each step boundary: rank 0 reads control.json and its control; every rank then holds the same control.

    With one process it only polls the file. Under DDP rank 0 broadcasts one small dict (the live
    changes, pause, stop) and the other ranks set their own `TrainingControl` from it, so the
    loop's unchanged code (pause wait, stop rule, live changes) makes the same decision on every rank.
    """

    def __init__(self, ctx: Dist, control_path: Path | None, say: Say) -> None:
        self.ctx = ctx
        self.say = say
        self.file = ControlFile(control_path, say) if control_path is not None and ctx.is_main else None

    def exchange(self, control: TrainingControl) -> None:
        if self.file is not None:
            self.file.poll(control)
        if not self.ctx.active:
            return
        mine = None
        if self.ctx.is_main:
            changes = control.take_changes()
            bs = changes.get("batch_size")
            if bs is not None and bs % self.ctx.world_size:
                self.say(
                    f"batch size {bs} does not split over {self.ctx.world_size} processes; "
                    f"kept (use a multiple of {self.ctx.world_size})",
                    "warning",
                )
                del changes["batch_size"]
            mine = {"changes": changes, "pause": control.paused, "stop": control.stop_requested}
        decided = self.ctx.broadcast(mine)
        for key, value in decided["changes"].items():
            (control.set_lr if key == "lr" else control.set_batch_size)(value)
        if decided["stop"]:
            control.stop()
        elif decided["pause"]:
            control.pause()
        else:
            control.resume()
