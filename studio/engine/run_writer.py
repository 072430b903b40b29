"""`RunWriter`: everything a fit writes, through one object: config, records, checkpoints, summary.

The loop hands it records of committed state (`add`), and asks it to `flush` them and to save the
checkpoints inside the blocks a Ctrl-C waits for, so metrics.jsonl and last.pt always describe the
same step. It holds the run directory's lock for the whole fit (`locked`). Without a run
directory (the LR finder) it writes nothing and holds no lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from studio.config import Config, save_config
from studio.engine import checkpoint as ckpt
from studio.engine.records import Record
from studio.engine.run_dir import MetricsFile, RunDir
from studio.files import write_error


class RunWriter:
    """Writes one fit's files into `files` (or nothing, when it is None)."""

    def __init__(self, files: RunDir | None) -> None:
        self.files = files
        self.best_due = False  # the epoch just committed is the best: best.pt is due
        self.saved_last: tuple[int, int] | None = None  # (epoch, step) of the last.pt on disk
        self._metrics: MetricsFile | None = None
        self._unwritten: list[Record] = []  # records of committed state, not yet in metrics.jsonl

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run directory's lock for the whole fit; folders this call made go again if the run never began."""
        files = self.files
        if files is None:
            yield
            return
        made = []  # the run directory and any missing parents, deepest first
        folder = files.path
        while not folder.exists() and folder != folder.parent:
            made.append(folder)
            folder = folder.parent
        try:
            files.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, files.path, f"the run directory '{files.name}'") from None
        lock = files.lock()
        try:
            lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            if self._metrics is None:  # nothing of a run was written: leave the disk as it was
                for path in made:
                    try:
                        path.rmdir()
                    except OSError:
                        break

    def start(self, config: Config, resumed_at: tuple[int, int] | None) -> None:
        """Clean up after a killed run, write config.toml, and open metrics.jsonl (cut back to a resumed checkpoint)."""
        files = self.files
        if files is None:
            return
        # We hold the lock, so temp files of our names are left by a killed run, never by a live one.
        files.remove_stale_temp_files()
        try:
            files.checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, files.checkpoint("last"), "the checkpoints folder") from None
        save_config(config, files.config)
        if resumed_at is not None:
            epoch, step = resumed_at
            files.truncate_metrics(step, epoch)
            self.saved_last = resumed_at
        elif files.metrics.exists():
            files.metrics.unlink()
        self._metrics = files.open_metrics()

    def add(self, record: Record) -> None:
        """A record of committed state; it reaches the file at the next `flush`."""
        self._unwritten.append(record)

    def flush(self) -> None:
        """Append the records metrics.jsonl does not have yet (an interrupted write is not repeated)."""
        while self._unwritten:
            record = self._unwritten[0]
            if self._metrics is not None and not self._metrics.holds(record):
                self._metrics.write(record)
            self._unwritten.pop(0)

    def write(self, record: Record) -> None:
        """Write one record at once (the test split's, after the loop)."""
        if self._metrics is not None:
            self._metrics.write(record)

    def save(self, which: str, state: dict[str, Any], at: tuple[int, int]) -> None:
        """Write checkpoint `which` ("last" or "best"); `at` is its (epoch, step)."""
        if self.files is None:
            return
        ckpt.save_checkpoint(self.files.checkpoint(which), state)
        if which == "last":
            self.saved_last = at

    def kept_checkpoint(self) -> str:
        """What a user still has after a failure, in words."""
        if self.saved_last is None:
            return "no checkpoint had been saved yet"
        epoch, step = self.saved_last
        return f"the last good checkpoint (epoch {epoch}, step {step}) is kept"

    def finish(self, summary: dict[str, Any]) -> None:
        """Close metrics.jsonl and write summary.json beside it (only if the run got as far as opening it)."""
        if self._metrics is None or self.files is None:
            return
        self._metrics.close()
        self.files.write_summary(summary)
