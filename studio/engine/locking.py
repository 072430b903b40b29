"""One process at a time: an exclusive lock on a small lock file, released by the OS if the process dies.

`run_dir_lock(run_dir)` is held for a whole train or resume (CLI and GUI alike, since both go
through `Trainer.fit`); `output_lock(path)` for an export writing `path`. A second taker gets a
`FolderInUse` error naming the process that holds it. A lock left by a killed process never
blocks: the OS released it with the process, and the next taker simply takes it.

The lock file holds the owner's process id, for the message, and is removed when the lock is
released. Removing it is safe because a taker checks, after locking, that the file it locked is
still the one at the path (else it locked a file someone removed, and it tries again).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from studio.errors import StudioError
from studio.files import write_error

RUN_LOCK_NAME = ".studio.lock"

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # msvcrt is typed on Windows only
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # msvcrt is typed on Windows only


class FolderInUse(StudioError):
    """Another process holds the lock: it is training this run or writing this file."""


class FileLock:
    """An exclusive, non-blocking lock on `path`; `busy(pid)` words the error when another process holds it."""

    def __init__(self, path: Path, busy: str, what: str) -> None:
        self.path = Path(path)
        self._busy = busy
        self._what = what
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        for _ in range(100):  # each retry means another process removed the file between open and lock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise write_error(exc, self.path, self._what) from None
            if not _try_lock(fd):
                owner = _read_pid(fd)
                os.close(fd)
                who = f"process {owner}" if owner else "another process"
                raise FolderInUse(self._busy.format(who=who))
            if _same_file(fd, self.path):
                self._fd = fd
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                except OSError:
                    pass  # the pid is only for the message another taker prints
                return self
            _unlock(fd)
            os.close(fd)
        raise FolderInUse(self._busy.format(who="another process"))

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, self.path):
                self.path.unlink()
        except OSError:
            pass  # a read-only folder keeps the file; the next taker locks it all the same
        finally:
            _unlock(fd)
            os.close(fd)

    def check_free(self) -> None:
        """Raise `FolderInUse` if another process holds the lock now; writes nothing (a read-only folder is fine)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return  # no lock file: nobody holds it
        try:
            if not _try_lock(fd):
                owner = _read_pid(fd)
                raise FolderInUse(self._busy.format(who=f"process {owner}" if owner else "another process"))
            _unlock(fd)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip() if hasattr(os, "pread") else ""
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def run_dir_lock(run_dir: Path) -> FileLock:
    """The lock of a run directory, held while one process trains or resumes it."""
    run_dir = Path(run_dir)
    return FileLock(
        run_dir / RUN_LOCK_NAME,
        busy=f"run directory '{run_dir}' is in use by {{who}}; wait for that run to end or stop it first",
        what="the run's files",
    )


def output_lock(path: Path) -> FileLock:
    """The lock of an output file (an ONNX export), held while one process writes it."""
    path = Path(path)
    return FileLock(
        path.with_name(f".{path.name}.lock"),
        busy=f"'{path}' is being written by {{who}} (another export); try again when it is done",
        what=f"'{path.name}'",
    )
