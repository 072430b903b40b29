"""Reading a metrics.jsonl that another process is still writing: the complete lines added since last time.

    tail = MetricsTail(RunDir(run_dir).metrics)
    records, restarted = tail.read()   # restarted: the file was replaced or cut, `records` is all of it again

A line counts once it ends with a newline: a torn last line (the writer is mid-write, or was killed
mid-write) waits for the rest. The file is untrusted like any metrics.jsonl: a line that is not a
record is skipped (`record_from_json`), a line that never ends is dropped past `MAX_LINE` bytes, and a
file that vanishes reads as nothing until it is back. A resumed run rewrites the file (it keeps
only the records up to its checkpoint, through an atomic replace), which `read` reports as
`restarted` so a view rebuilds its curves from the new file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from studio.engine.records import Record, record_from_json

MAX_LINE = 1 << 20  # a record line is a few hundred bytes; more than this without a newline is garbage
MAX_READ = 16 << 20  # bytes read per call, so a huge file is read in pieces and a view stays fresh


class MetricsTail:
    """The records appended to one metrics.jsonl since the previous `read()`; never raises for file trouble."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = b""
        self._identity: tuple[int, int] | None = None
        self.skipped = 0  # complete lines that were no record

    def read(self) -> tuple[list[Record], bool]:
        """(new records, restarted); restarted means the file was replaced or shortened and read from its start."""
        try:
            st = os.stat(self.path)
        except OSError:
            return [], False
        identity = (st.st_dev, st.st_ino)
        restarted = False
        if identity != self._identity or st.st_size < self._offset:
            restarted = self._identity is not None
            self._identity, self._offset, self._partial = identity, 0, b""
        if st.st_size == self._offset:
            return [], restarted
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read(MAX_READ)
        except OSError:
            return [], restarted
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > MAX_LINE:
            self._partial = b""
            self.skipped += 1
        return [r for line in lines if (r := self._parse(line)) is not None], restarted

    @property
    def pending(self) -> bool:
        """Whether an unfinished last line is waiting for its newline."""
        return bool(self._partial)

    def _parse(self, line: bytes) -> Record | None:
        if not line.strip():
            return None
        try:
            record = record_from_json(json.loads(line.decode("utf-8", errors="replace")))
        except (json.JSONDecodeError, RecursionError):
            record = None
        if record is None:
            self.skipped += 1
        return record
