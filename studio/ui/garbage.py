"""Python's cyclic garbage collector runs on the GUI thread only.

Any thread that allocates (training, an export, an evaluation) can trigger a collection, and a
collection destroys the Qt objects in garbage cycles on the thread that triggered it, while the
GUI thread may be delivering events to them: Qt then crashes (seen as a segfault in the test
suite while an ONNX export ran in a `BackgroundCall`). pyqtgraph's `GarbageCollector` turns the
automatic collector off and collects from a timer on the GUI thread instead; reference counting
still frees everything that is not in a cycle at once.
"""

from __future__ import annotations

from typing import Any

_collector: Any = None


def collect_garbage_on_gui_thread(interval_s: float = 1.0) -> None:
    """From now on, collect cycles only on this (the GUI) thread, every `interval_s`; call it once a
    QApplication exists. Idempotent."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=interval_s)
