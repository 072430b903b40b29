"""Ctrl-C that waits for the end of an optimizer step.

Python raises KeyboardInterrupt between any two bytecodes, so a Ctrl-C can land half way through
an optimizer's update (Adam on the CPU updates one parameter after another in Python). Such a
state cannot be saved or undone. While `held()` is active, `DeferredInterrupt` notes a SIGINT
instead of raising, and raises it when the block ends: after the update and its bookkeeping.
Outside a held block, Ctrl-C raises at once, as usual, so a long validation still stops promptly.

Signal handlers belong to the main thread: in any other thread (the GUI's training thread), or
when the program installed its own SIGINT handler, this does nothing, and stopping goes through
`TrainingControl` as before.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class DeferredInterrupt:
    """Installs a SIGINT handler for the length of a `with` block; `held()` marks the parts Ctrl-C must not split."""

    def __init__(self) -> None:
        self._holding = False
        self._pending = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> DeferredInterrupt:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._holding:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Run the block to its end even if Ctrl-C comes; raise KeyboardInterrupt after it if one did."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt
