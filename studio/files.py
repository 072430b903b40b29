"""Atomic file writes: a reader (or a crash) never sees half a file.

Every write goes to a temp file named `.<name>.<8 random characters>.tmp` beside its target, then
`os.replace`. A process killed mid-write leaves that temp file behind; `stale_temp_files` finds
the ones of a given name so the next run of that folder (which holds its lock) can remove them.
A write that fails because the disk is full, the folder is read-only or not ours raises
`WriteError`, whose message says which, and the target keeps its previous content.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from studio.errors import StudioError

TEMP_SUFFIX = ".tmp"
# tempfile.mkstemp draws 8 characters from this alphabet; matching it exactly keeps the clean-up
# to files our own writes made.
_TEMP_RANDOM = r"[a-z0-9_]{8}"


class WriteError(StudioError):
    """A file could not be written: the disk is full, the folder is read-only, or permission is missing."""


def temp_prefix(path: Path) -> str:
    return f".{Path(path).name}."


def temp_name_pattern(name: str) -> re.Pattern[str]:
    """The names `atomic_write` gives the temp files of a target called `name`."""
    return re.compile(re.escape(f".{name}.") + _TEMP_RANDOM + re.escape(TEMP_SUFFIX))


def stale_temp_files(folder: Path, names: tuple[str, ...] | list[str]) -> Iterator[Path]:
    """Temp files (or temp folders) in `folder` that our writes of `names` made; only the caller knows they are stale."""
    patterns = [temp_name_pattern(name) for name in names]
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if any(p.fullmatch(entry.name) for p in patterns) and not entry.is_symlink():
            yield Path(entry.path)


def remove_stale_temp_files(folder: Path, names: tuple[str, ...] | list[str]) -> list[Path]:
    """Remove the temp files of `names` in `folder`; call it only while holding the lock of their writers."""
    removed = []
    for path in stale_temp_files(folder, names):
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue  # gone already, or a read-only folder: the run will say so when it writes
        removed.append(path)
    return removed


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def write_error(exc: OSError, path: Path, what: str | None = None) -> WriteError:
    """A `WriteError` whose message says why `path` could not be written (disk full, read-only, ...)."""
    path = Path(path)
    folder = path.parent
    what = what or f"'{path}'"
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        try:
            free = f"; {_size(shutil.disk_usage(folder).free)} free"
        except OSError:
            free = ""
        quota = " (disk quota exceeded)" if code != errno.ENOSPC else ""
        return WriteError(
            f"the disk is full{quota}: cannot write {what} in '{folder}'{free}; free some space and try again"
        )
    if code == errno.EROFS:
        return WriteError(f"'{folder}' is on a read-only file system: cannot write {what}")
    if code in (errno.EACCES, errno.EPERM):
        return WriteError(f"no permission to write {what} in '{folder}'")
    reason = exc.strerror or type(exc).__name__
    return WriteError(f"cannot write {what} in '{folder}' ({reason})")


class _WatchedFile:
    """A file object that remembers the OSError of a failed write, which torch.save would hide.

    torch's zip writer reports a short write as `RuntimeError: unexpected pos ...`; the disk-full
    error underneath is what the user needs to hear.
    """

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._fh.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Write through `write(fileobj)` to a temp file beside `path`, fsync, then `os.replace`.

    On any failure the temp file is removed and `path` keeps its previous content; a full disk, a
    read-only folder or a missing permission raises `WriteError` saying so.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    watched: _WatchedFile | None = None
    try:
        fh: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with fh:
            watched = _WatchedFile(fh)
            write(watched)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        os_error = (watched.error if watched is not None else None) or (exc if isinstance(exc, OSError) else None)
        if os_error is not None and not isinstance(exc, (KeyboardInterrupt, StudioError)):
            raise write_error(os_error, path) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
