"""Following a run that another process writes: its records as metrics.jsonl grows, its end from summary.json.

`RunFollowWorker` runs on its own `QThread` and looks at the run folder a few times a second (a stat
per file; it reads only what grew, complete lines only: `engine/metrics_tail.py`), so the GUI thread
never touches files that may sit on slow shared storage. It has the `TrainingWorker`'s signals, so
the `RunController` shows a followed run exactly as one it trains itself (records into the
`RunHistory`, epoch ends to the cards, the log, a `RunOutcome` at the end).

Two uses:

- **File › Follow Run…** (`launch=None`): a run the CLI, torchrun or a cluster job writes. It ends
  when summary.json says the run ended (a summary older than the last record is a previous end of
  a run that was resumed since), or when the window lets it go (`detach()`).
- **A run of N processes launched from the window** (`launch` given): the worker starts
  `studio train CONFIG --run-dir R --nproc N` (which runs torchrun) in its own process group and
  supervises it. Stop writes `stop` to control.json where the engine reads one (else it sends the
  processes Ctrl-C, which `studio train` answers by saving and stopping), and terminates, then
  kills, the processes that have not ended in time. However they end (done, a crash, a killed
  rank, a bad exit code), the worker reads the last records and summary.json and finishes with a
  `RunOutcome` saying what happened; a run that died without a summary gets a "failed" one.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from studio.config import Config, save_config
from studio.engine.control import TrainingControl
from studio.engine.events import EpochEnd, Message
from studio.engine.metrics_tail import MetricsTail
from studio.engine.progress import epoch_line
from studio.engine.records import EpochRecord, Record, StepRecord
from studio.engine.run_dir import RunDir
from studio.errors import StudioError
from studio.ui.worker import RunError, RunOutcome

POLL_S = 0.25  # how often the folder is looked at: four times a second is live to a person
QUIET_S = 60.0  # a followed run that writes nothing for this long may have died: say so once
STOP_GRACE_S = 30.0  # after Stop, how long the processes get to save and end before they are terminated
KILL_GRACE_S = 5.0  # after terminate, before kill
MAX_OUTPUT_READ = 1 << 20  # bytes of the processes' output read per look
CONTROL_FILE = "control.json"  # the run directory's live control (h11-ddp's engine/control_file.py reads it)

ControlWriter = Callable[..., None]


def control_writer() -> ControlWriter | None:
    """`write_control(path, **values)` of the engine, where this studio's engine reads control.json.

    None where it does not: a followed run is then shown read-only.
    """
    try:
        module = importlib.import_module("studio.engine.control_file")
    except ImportError:
        return None
    writer: ControlWriter | None = getattr(module, "write_control", None)
    return writer


@dataclass(frozen=True)
class Launch:
    """A run the worker starts as child processes: `studio train CONFIG --run-dir R [--nproc N]`."""

    config: Config
    nproc: int
    resume: bool = False  # `studio resume RUN_DIR` (a run continued in a fresh process after a CUDA error)

    def command(self, run_dir: Path) -> list[str]:
        if self.resume:
            return [sys.executable, "-m", "studio", "resume", str(run_dir)]
        cmd = [sys.executable, "-m", "studio", "train", str(RunDir(run_dir).config), "--run-dir", str(run_dir)]
        return [*cmd, "--nproc", str(self.nproc)] if self.nproc > 1 else cmd


class RunFollowWorker(QObject):
    """Follows (and, with a `Launch`, supervises) one run folder; see the module doc."""

    started = Signal()
    fit_started = Signal(object)  # never: a followed run's FitStart stays in its own process
    loaded = Signal(object)  # list[Record]: the whole of metrics.jsonl (first read, and after a rewrite)
    step_ended = Signal(object)  # list[StepRecord]
    epoch_ended = Signal(object)  # EpochEnd, built from the epoch records read
    samples_predicted = Signal(object)  # never: images stay in the training process
    message = Signal(object)  # Message: epoch lines, what the processes print, what happened
    notice = Signal(str, int)  # a status-bar message (a folder that vanished, a run gone quiet)
    errored = Signal(object)  # RunError
    finished = Signal(object)  # RunOutcome, always the last signal

    def __init__(
        self,
        run_dir: Path,
        epochs_total: int,
        control: TrainingControl,
        launch: Launch | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.files = RunDir(self.run_dir)
        self.epochs_total = epochs_total
        self.control = control
        self.launch = launch
        self.poll_s = poll_s
        self.writer = control_writer()
        self._detached = threading.Event()
        self._tail = MetricsTail(self.files.metrics)
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._output_path: Path | None = None
        self._output_tail = b""
        self._last_lines: list[str] = []
        self._t0 = time.time()
        self._last_change = time.monotonic()
        self._quiet_said = False
        self._lost = False
        self._paused_sent = False
        self._stop_sent_at: float | None = None
        self._terminated_at: float | None = None
        self._epoch_metrics: dict[int, dict[str, float | None]] = {}

    @property
    def steerable(self) -> bool:
        """Whether live changes reach the run (control.json, or the processes the worker started)."""
        return self.writer is not None or self.launch is not None

    def detach(self) -> None:
        """Stop following (thread-safe); a launched run is not affected by this, only by Stop."""
        self._detached.set()

    # -- the loop (on the worker's thread) ---------------------------------------------------------

    @Slot()
    def run(self) -> None:
        self.started.emit()
        outcome: RunOutcome | None = None
        try:
            if self.launch is not None:
                self._start_processes(self.launch)
            self._poll_files(first=True)
            while outcome is None:
                if self._detached.wait(self.poll_s):
                    if self._process is None:
                        outcome = RunOutcome(str(self.run_dir), "following")  # let go: nobody listens
                        break
                    time.sleep(self.poll_s)  # a launched run is supervised to its end
                self._steer()
                self._poll_files()
                outcome = self._ended()
        except Exception as exc:  # noqa: BLE001 - the thread must end with `finished` whatever happens
            error = RunError("bug", f"{type(exc).__name__}: {exc}")
            self.errored.emit(error)
            outcome = RunOutcome(str(self.run_dir), "failed", {}, error)
        finally:
            self._close_output()
        self.finished.emit(outcome)
        QThread.currentThread().quit()

    def _poll_files(self, first: bool = False) -> None:
        if not self.run_dir.is_dir():
            if not self._lost:
                self._lost = True
                self.notice.emit(f"The run folder {self.run_dir} is gone; waiting for it to come back", 0)
            return
        if self._lost:
            self._lost = False
            self.notice.emit("The run folder is back", 4000)
        records, restarted = self._tail.read()
        if first or restarted:
            self.loaded.emit(records)
        elif records:
            self._emit_records(records)
        if records:
            self._last_change, self._quiet_said = time.monotonic(), False
        elif not self._quiet_said and self.launch is None and time.monotonic() - self._last_change > QUIET_S:
            self._quiet_said = True
            self.notice.emit(f"No new records for {QUIET_S:.0f} s: the run may have ended without a summary", 0)
        self._read_output()

    def _emit_records(self, records: list[Record]) -> None:
        steps = [r for r in records if isinstance(r, StepRecord)]
        if steps:
            self.step_ended.emit(steps)
        by_epoch: dict[int, list[EpochRecord]] = {}
        for r in records:
            if isinstance(r, EpochRecord) and r.split in ("train", "val"):
                by_epoch.setdefault(r.epoch, []).append(r)
        for epoch, group in sorted(by_epoch.items()):
            for r in group:
                self._epoch_metrics.setdefault(epoch, {}).update(
                    {f"{r.split}_loss": r.loss, f"{r.split}_accuracy": r.accuracy}
                )
            metrics = self._epoch_metrics[epoch]
            last = group[-1]
            event = EpochEnd(
                epoch, self.epochs_total, last.step, last.time or 0.0, dict(metrics), None, False, records=tuple(group)
            )
            if any(r.split == "val" for r in group) and metrics.get("train_loss") is not None:
                self.message.emit(Message(epoch_line(event)))  # the line `studio train` prints
            self.epoch_ended.emit(event)

    def _summary(self) -> dict[str, Any] | None:
        """summary.json if it says how the run ended and is not older than the last record."""
        summary = self.files.read_summary()
        if not summary or summary.get("status") not in ("completed", "early_stopped", "stopped", "failed"):
            return None
        try:
            summary_t = self.files.summary.stat().st_mtime
            metrics_t = self.files.metrics.stat().st_mtime if self.files.metrics.exists() else 0.0
        except OSError:
            return None
        if summary_t + 1.0 < metrics_t or (self.launch is not None and summary_t + 1.0 < self._t0):
            return None  # an earlier end of a run that was resumed since (or of an earlier launch)
        return summary

    def _ended(self) -> RunOutcome | None:
        if self._process is None:
            summary = self._summary()
            if summary is None or self._tail.pending:
                return None
            return RunOutcome(str(self.run_dir), str(summary["status"]), summary)
        rc = self._process.poll()
        if rc is None:
            return None
        self._poll_files()  # the last records and lines the processes wrote
        return self._outcome_of_exit(rc)

    # -- launched processes ------------------------------------------------------------------------

    def _start_processes(self, launch: Launch) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(launch.config, self.files.config)  # what the processes read; the trainer rewrites it
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the studio these processes run is this one
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        # The processes append to a file of their own; this worker reads it through another handle
        # (a shared handle would share its position with their writes).
        fd, name = tempfile.mkstemp(prefix="studio-run-", suffix=".log")
        os.close(fd)
        self._output_path = Path(name)
        writer = open(name, "ab")  # the child's; closed here once it has started
        self._output = open(name, "rb")
        cmd = launch.command(self.run_dir)
        self.message.emit(Message(f"starting {launch.nproc} process(es): {' '.join(cmd[1:])}"))
        kwargs: dict[str, Any] = (
            {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
            if os.name == "nt"
            else {"start_new_session": True}  # its own process group: Stop reaches every rank, not the window
        )
        try:
            self._process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=writer, stderr=subprocess.STDOUT, env=env, **kwargs
            )
        finally:
            writer.close()

    def _read_output(self) -> None:
        """What the processes printed since last time, line by line into the log (epoch lines come from the records)."""
        if self._output is None:
            return
        try:
            data = self._output.read(MAX_OUTPUT_READ)
        except OSError:
            return
        *lines, self._output_tail = (self._output_tail + data).replace(b"\r", b"\n").split(b"\n")
        self._output_tail = self._output_tail[-MAX_OUTPUT_READ:]
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").strip()
            if line and not line.startswith("epoch "):
                self._last_lines = [*self._last_lines[-19:], line]
                error = line.startswith("error: ")
                self.message.emit(Message(line[7:] if error else line, "error" if error else "info"))

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._output_path is not None:
            self._output_path.unlink(missing_ok=True)

    def _steer(self) -> None:
        """Pass the window's Stop, Pause and live changes on to the run."""
        if self.writer is not None:
            changes = self.control.take_changes()
            if self.control.paused != self._paused_sent:
                changes["pause"] = self._paused_sent = self.control.paused
            if self.control.stop_requested and self._stop_sent_at is None:
                changes["stop"] = True
            if changes:
                self._write_control(changes)
        if self._process is None or not self.control.stop_requested:
            return
        now = time.monotonic()
        if self._stop_sent_at is None:
            self._stop_sent_at = now
            if self.writer is None:
                self._signal(signal.SIGINT if os.name != "nt" else signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        elif self._terminated_at is None and now - self._stop_sent_at > STOP_GRACE_S:
            self._terminated_at = now
            self.message.emit(Message(f"the processes did not stop within {STOP_GRACE_S:.0f} s: terminating them"))
            self._signal(signal.SIGTERM)
        elif self._terminated_at is not None and now - self._terminated_at > KILL_GRACE_S:
            self._signal(signal.SIGKILL if os.name != "nt" else signal.SIGTERM)

    def _write_control(self, values: dict[str, Any]) -> None:
        assert self.writer is not None
        try:
            self.writer(self.run_dir / CONTROL_FILE, **values)
        except (OSError, StudioError) as exc:
            self.notice.emit(f"Could not steer the run (control.json): {exc}", 8000)
            return
        if values.get("stop"):
            self._stop_sent_at = time.monotonic()

    def _signal(self, sig: int) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            if os.name == "nt":
                process.send_signal(sig)
            else:
                os.killpg(process.pid, sig)
        except (OSError, ValueError):
            pass  # it ended in between

    def _outcome_of_exit(self, rc: int) -> RunOutcome:
        summary = self._summary()
        run = str(self.run_dir)
        if summary is not None and (rc in (0, 130) or summary["status"] == "failed"):
            error = None
            if summary["status"] == "failed":
                error = RunError("processes", str(summary.get("error") or _exit_words(rc)), self._details())
            return RunOutcome(run, str(summary["status"]), summary, error)
        said = next((line[7:] for line in reversed(self._last_lines) if line.startswith("error: ")), None)
        if rc == 2 and said:
            return RunOutcome(run, "failed", {}, RunError("input", said))
        kept = (
            f" The last checkpoint is kept ({RunDir.LAST_CHECKPOINT}): Continue Run resumes it."
            if (self.files.has_checkpoint("last"))
            else ""
        )
        message = f"The training processes {_exit_words(rc)}{f': {said}' if said else ''}.{kept}"
        summary = self._write_failed_summary(message)
        return RunOutcome(run, "failed", summary, RunError("processes", message, self._details()))

    def _details(self) -> str:
        return "\n".join(self._last_lines)

    def _write_failed_summary(self, message: str) -> dict[str, Any]:
        """A run whose processes died without a summary says so in its folder (the Runs tab, `studio eval`)."""
        records = self.files.read_metrics()
        epochs = max((r.epoch for r in records if isinstance(r, EpochRecord) and r.split == "val"), default=0)
        latest = {
            f"{r.split}_{k}": getattr(r, k) for r in records if isinstance(r, EpochRecord) for k in ("loss", "accuracy")
        }
        summary: dict[str, Any] = {
            "status": "failed",
            "epochs_completed": epochs,
            "metrics": {
                k: latest.get(k) for k in (f"{s}_{m}" for s in ("train", "val", "test") for m in ("loss", "accuracy"))
            },
            "best": None,
            "error": message,
            "world_size": self.launch.nproc if self.launch else 1,
        }
        try:
            with self.files.lock():
                self.files.write_summary(summary)
        except StudioError as exc:  # busy (a rank still alive) or unwritable: the window still says it
            self.message.emit(Message(f"summary.json not written: {exc}", "warning"))
        return summary


def _exit_words(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"were killed ({name})"
    return f"ended with exit code {rc}"


def start_following(
    run_dir: Path,
    epochs_total: int,
    control: TrainingControl,
    *,
    launch: Launch | None = None,
    connect: Callable[[QThread, RunFollowWorker], None] | None = None,
) -> tuple[QThread, RunFollowWorker]:
    """Create the worker and its thread, let `connect(worker)` hook up signals, then start (as `start_training`)."""
    thread = QThread()
    thread.setObjectName("followThread")
    worker = RunFollowWorker(run_dir, epochs_total, control, launch)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    if connect is not None:
        connect(thread, worker)
    thread.start()
    return thread, worker


class FollowRelay(QObject):
    """Hands a follow worker's signals to the controller on the GUI thread, until the controller lets it go.

    A followed run is let go when the window shows another run; signals its worker had already
    queued must not reach the run shown next, so they come through this object, which drops them
    once `active` is cleared, and cleans up the thread when it ends.
    """

    def __init__(self, controller: Any, thread: QThread, worker: RunFollowWorker) -> None:
        super().__init__(controller)
        self.controller, self.thread, self.worker = controller, thread, worker
        self.active = True
        worker.loaded.connect(self._loaded)
        worker.step_ended.connect(self._steps)
        worker.epoch_ended.connect(self._epoch)
        worker.message.connect(self._message)
        worker.notice.connect(self._notice)
        worker.finished.connect(self._finished)
        thread.finished.connect(self._thread_finished)

    def _loaded(self, records: list[Record]) -> None:
        if self.active:
            self.controller._on_loaded(records)

    def _steps(self, records: list[StepRecord]) -> None:
        if self.active:
            self.controller._on_steps(records)

    def _epoch(self, event: EpochEnd) -> None:
        if self.active:
            self.controller._on_epoch_ended(event)

    def _message(self, message: Message) -> None:
        if self.active:
            self.controller.message.emit(message)

    def _notice(self, text: str, ms: int) -> None:
        if self.active:
            self.controller.notice.emit(text, ms)

    def _finished(self, outcome: RunOutcome) -> None:
        if self.active:
            self.controller._on_finished(outcome)

    def _thread_finished(self) -> None:
        if self.active:
            self.controller._on_thread_finished()
            return
        self.thread.wait()
        self.thread.deleteLater()
        self.worker.deleteLater()
        self.deleteLater()

    def let_go(self) -> None:
        """Stop following: the worker ends at its next look, and nothing more reaches the controller."""
        self.active = False
        self.worker.detach()
