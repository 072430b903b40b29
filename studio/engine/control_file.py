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
    """What the loop obeys (`control`), the same on every rank: rank 0's user control and control.json.

    With one process, `control` is the user's own `TrainingControl` and only control.json is read
    in addition. Under DDP, `control` is a per-rank copy that only decisions shared by every rank
    write: rank 0 packs its user control's changes, pause and stop into the numbers each step
    all-reduces anyway (`pack`, zeros on the other ranks, so the sum is rank 0's values), and every
    rank applies them after the step (`unpack`): a change lands at the same step everywhere, at no
    extra collective. While the shared decision is a pause, the ranks exchange by broadcast.
    A window that touches rank 0's control between two steps thus never splits the ranks.
    """

    SIZE = 6  # has_lr, lr, has_batch_size, batch_size, pause, stop

    def __init__(self, ctx: Dist, control_path: Path | None, say: Say, user: TrainingControl) -> None:
        self.ctx, self.say, self.user = ctx, say, user
        self.file = ControlFile(control_path, say) if control_path is not None and ctx.is_main else None
        self.control = TrainingControl() if ctx.active else user

    def _poll(self) -> None:
        if self.file is not None:
            self.file.poll(self.user)

    def between_steps(self) -> None:
        """Wait here while paused. One process: its own control. DDP: the shared decision, renewed by broadcast."""
        self._poll()
        if not self.ctx.active:
            while not self.control.wait_if_paused(0.1):
                self._poll()
            return
        while self.control.paused and not self.control.stop_requested:
            (self.user if self.ctx.is_main else self.control).wait_if_paused(0.1)
            self._poll()
            self.unpack(self.ctx.broadcast(self.pack()))

    def pack(self) -> list[float]:
        """Rank 0's live changes, pause and stop as numbers (zeros on the other ranks); empty for one process."""
        if not self.ctx.active:
            return []
        if not self.ctx.is_main:
            return [0.0] * self.SIZE
        self._poll()
        changes = self.user.take_changes()
        bs = changes.get("batch_size")
        if bs is not None and bs % self.ctx.world_size:
            self.say(
                f"batch size {bs} does not split over {self.ctx.world_size} processes; "
                f"kept (use a multiple of {self.ctx.world_size})",
                "warning",
            )
            bs = None
        lr = changes.get("lr")
        return [
            float(lr is not None),
            float(lr or 0.0),
            float(bs is not None),
            float(bs or 0),
            float(self.user.paused),
            float(self.user.stop_requested),
        ]

    def unpack(self, values: list[float]) -> None:
        """Apply rank 0's packed decisions to this rank's `control`."""
        if not values:
            return
        has_lr, lr, has_bs, bs, pause, stop = values
        if has_lr:
            self.control.set_lr(lr)
        if has_bs:
            self.control.set_batch_size(round(bs))
        if stop:
            self.control.stop()
        elif pause:
            self.control.pause()
        else:
            self.control.resume()
