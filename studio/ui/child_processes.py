"""The child processes of a run the window launches with N > 1 processes: started, read, stopped, explained.

`Launch` says what to run (`studio train CONFIG --run-dir R --nproc N`, which starts torchrun);
`ChildProcesses` starts it in its own process group (so a stop reaches every rank, and never the
window), reads what the processes print into the log, escalates a stop that is not obeyed
(Ctrl-C or control.json first, then terminate after `STOP_GRACE_S`, then kill), and puts how they
ended into a `RunOutcome` a person can act on. Used by `RunFollowWorker` on its thread (run_follower.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from studio.config import Config, save_config
from studio.engine.events import Message
from studio.engine.records import EpochRecord
from studio.engine.run_dir import RunDir
from studio.errors import StudioError
from studio.ui.worker import RunError, RunOutcome

STOP_GRACE_S = 30.0  # after Stop, how long the processes get to save and end before they are terminated
KILL_GRACE_S = 5.0  # after terminate, before kill
MAX_OUTPUT_READ = 1 << 20  # bytes of the processes' output read per look
# What a rank says when another rank of its process group is gone (gloo, NCCL, c10d).
LOST_PEER = ("Connection reset by peer", "Connection closed by peer", "NCCL communicator was aborted", "Broken pipe")
INTERRUPT = signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGINT  # type: ignore[attr-defined]
KILL = signal.SIGTERM if os.name == "nt" else signal.SIGKILL


@dataclass(frozen=True)
class Launch:
    """A run the window starts as child processes: `studio train CONFIG --run-dir R --nproc N`."""

    config: Config
    nproc: int
    resume: bool = False  # Continue Run: `studio resume R --epochs E --nproc N`

    def command(self, run_dir: Path) -> list[str]:
        studio = [sys.executable, "-m", "studio"]
        if self.resume:
            cmd = [*studio, "resume", str(run_dir), "--epochs", str(self.config.train.epochs)]
        else:
            cmd = [*studio, "train", str(RunDir(run_dir).config), "--run-dir", str(run_dir)]
        return [*cmd, "--nproc", str(self.nproc)]


class ChildProcesses:
    """One launched run's processes; every method runs on the supervising worker's thread."""

    def __init__(self, launch: Launch, run_dir: Path, say: Callable[[Message], None]) -> None:
        self.launch = launch
        self.files = RunDir(run_dir)
        self.say = say
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._output_path: Path | None = None
        self._output_tail = b""
        self.last_lines: list[str] = []
        self._stop_at: float | None = None
        self._terminated_at: float | None = None

    def start(self) -> None:
        self.files.path.mkdir(parents=True, exist_ok=True)
        if not self.launch.resume:
            save_config(self.launch.config, self.files.config)  # what the processes read; the trainer rewrites it
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the studio these processes run is this one
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        # The processes append to a file of their own; this side reads it through another handle
        # (a shared handle would share its position with their writes).
        fd, name = tempfile.mkstemp(prefix="studio-run-", suffix=".log")
        os.close(fd)
        self._output_path = Path(name)
        writer = open(name, "ab")  # the child's; closed here once it has started
        self._output = open(name, "rb")
        cmd = self.launch.command(self.files.path)
        self.say(Message(f"starting {self.launch.nproc} process(es): {' '.join(cmd[1:])}"))
        kwargs: dict[str, Any] = (
            {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
            if os.name == "nt"
            else {"start_new_session": True}  # its own process group: a stop reaches every rank, not the window
        )
        try:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=writer, stderr=subprocess.STDOUT, env=env, **kwargs
            )
        finally:
            writer.close()

    def poll(self) -> int | None:
        """The exit code once the processes have ended (negative: the signal that killed them), else None."""
        return None if self.process is None else self.process.poll()

    def read_output(self) -> None:
        """What the processes printed since last time, line by line into the log (epoch lines come from the records)."""
        if self._output is None:
            return
        try:
            data = self._output.read(MAX_OUTPUT_READ)
        except OSError:
            return
        *lines, tail = (self._output_tail + data).replace(b"\r", b"\n").split(b"\n")
        self._output_tail = tail[-MAX_OUTPUT_READ:]
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").strip()
            if line and not line.startswith("epoch "):
                self.last_lines = [*self.last_lines[-19:], line]
                error = line.startswith("error: ")
                self.say(Message(line[7:] if error else line, "error" if error else "info"))

    def close(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._output_path is not None:
            self._output_path.unlink(missing_ok=True)
            self._output_path = None

    # -- stopping ------------------------------------------------------------------------------

    def stop(self, asked_through_file: bool) -> None:
        """Called at every look once Stop was pressed: ask, then terminate, then kill, each after its grace."""
        now = time.monotonic()
        if self._stop_at is None:
            self._stop_at = now
            if not asked_through_file:
                self._signal(INTERRUPT)  # `studio train` answers Ctrl-C by saving last.pt and stopping
        elif self._terminated_at is None and now - self._stop_at > STOP_GRACE_S:
            self._terminated_at = now
            self.say(Message(f"the processes did not stop within {STOP_GRACE_S:.0f} s: terminating them", "warning"))
            self._signal(signal.SIGTERM)
        elif self._terminated_at is not None and now - self._terminated_at > KILL_GRACE_S:
            self._signal(KILL)

    def _signal(self, sig: int) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        if os.name == "nt":
            try:
                process.send_signal(sig)
            except (OSError, ValueError):
                pass  # it ended in between
            return
        # torchrun starts each rank in a session of its own, out of reach of a signal to our group:
        # a terminate or kill goes to every descendant too, gathered before the first of them dies.
        others = descendants(process.pid) if sig != INTERRUPT else []
        for send, target in ((os.killpg, process.pid), *((os.kill, pid) for pid in others)):
            try:
                send(target, sig)
            except OSError:
                pass  # it ended in between

    # -- how they ended ------------------------------------------------------------------------

    def outcome(self, rc: int, summary: dict[str, Any] | None) -> RunOutcome:
        """The run's end, from the exit code and a summary.json this launch wrote (None if it wrote none)."""
        run = str(self.files.path)
        details = "\n".join(self.last_lines)
        kept = ""
        if self.files.has_checkpoint("last"):
            kept = f" The last checkpoint is kept ({RunDir.LAST_CHECKPOINT}): Continue Run resumes it."
        if summary is not None and (rc in (0, 130) or summary["status"] == "failed"):
            error = None
            if summary["status"] == "failed":
                said = str(summary.get("error") or summary.get("reason") or "")
                error = RunError("processes", self._failure_words(rc, said) + kept, details)
            return RunOutcome(run, str(summary["status"]), summary, error)
        said = next((line[7:] for line in reversed(self.last_lines) if line.startswith("error: ")), "")
        if rc == 2 and said:
            return RunOutcome(run, "failed", {}, RunError("input", said))
        message = self._failure_words(rc, said) + kept
        return RunOutcome(run, "failed", self._write_failed_summary(message), RunError("processes", message, details))

    def _failure_words(self, rc: int, said: str) -> str:
        """`The training processes were killed (SIGKILL): ...`, naming a lost peer for what it usually is."""
        words = f"The training processes {exit_words(rc)}"
        # Several processes that end with no word of their own (torchrun tore them down) or with a lost
        # connection: one of them ended first, the usual case being a killed or crashed rank.
        if self.launch.nproc > 1 and rc != 0 and (not said or any(sign in said for sign in LOST_PEER)):
            words += ": another process of the run ended first (killed or crashed), and the others lost it"
        return f"{words}{f' ({said})' if said else ''}."

    def _write_failed_summary(self, message: str) -> dict[str, Any]:
        """A run whose processes died without a summary says so in its folder (the Runs tab, `studio eval`)."""
        records = [r for r in self.files.read_metrics() if isinstance(r, EpochRecord)]
        latest = {f"{r.split}_{key}": getattr(r, key) for r in records for key in ("loss", "accuracy")}
        names = [f"{split}_{key}" for split in ("train", "val", "test") for key in ("loss", "accuracy")]
        summary: dict[str, Any] = {
            "status": "failed",
            "epochs_completed": max((r.epoch for r in records if r.split == "train"), default=0),
            "metrics": {name: latest.get(name) for name in names},
            "best": None,
            "error": message,
            "world_size": self.launch.nproc,
        }
        try:
            with self.files.lock():
                self.files.write_summary(summary)
        except StudioError as exc:  # busy (a rank still alive) or unwritable: the window says it all the same
            self.say(Message(f"summary.json not written: {exc}", "warning"))
        return summary


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (Linux: from /proc; elsewhere none are found, and only its group is reached)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (name) "; a name may hold spaces
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def exit_words(rc: int) -> str:
    """`were killed (SIGKILL)`, `ended with exit code 1`."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"were killed ({name})"
    return f"ended with exit code {rc}"
