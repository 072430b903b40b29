"""The one thread-safe object through which another thread (the GUI) steers a running fit."""

from __future__ import annotations

import threading
from typing import Any


class TrainingControl:
    """Stop, pause/resume, and live learning-rate and batch-size changes.

    Any thread may call the setters; the training loop polls `take_changes()` and
    `wait_if_paused()` at each batch boundary, so only the loop ever touches the optimizer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._held = threading.Event()  # set while the loop waits in a pause

    def set_lr(self, lr: float) -> None:
        lr = float(lr)
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0 (got {lr})")
        with self._lock:
            self._pending["lr"] = lr

    def set_batch_size(self, n: int) -> None:
        n = int(n)
        if n < 1:
            raise ValueError(f"batch size must be >= 1 (got {n})")
        with self._lock:
            self._pending["batch_size"] = n

    def take_changes(self) -> dict[str, Any]:
        """Return and clear the changes asked for since the last call."""
        with self._lock:
            changes, self._pending = self._pending, {}
        return changes

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused loop must wake up to stop

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def held(self) -> bool:
        """True while the loop is actually waiting in a pause (not merely asked to pause)."""
        return self._held.is_set()

    def wait_until_held(self, timeout: float | None = None) -> bool:
        """Block until the loop has reached its pause at a batch boundary; False on timeout."""
        return self._held.wait(timeout)

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; returns True when the loop may go on (or must stop)."""
        if self._running.is_set():
            return True
        self._held.set()
        go_on = self._running.wait(timeout)
        if go_on:
            self._held.clear()
        return go_on
