"""Python's cyclic garbage collector runs on the GUI thread only, in small steps.

Any thread that allocates (training, an export, an evaluation) can trigger a collection, and a
collection destroys the Qt objects in garbage cycles on the thread that triggered it, while the
GUI thread may be delivering events to them: Qt then crashes (seen as a segfault in the test
suite while an ONNX export ran in a `BackgroundCall`). So the automatic collector is off and a
timer on the GUI thread collects instead (pyqtgraph's `GarbageCollector` does the same, once a
second); reference counting still frees everything that is not in a cycle at once.

A collection holds the GUI thread for as long as it scans: a full one over the heap that torch's
import leaves took 30-230 ms, felt as a stutter while training. So the timer runs often (each
step scans little), and once torch is imported `freeze_startup_objects` moves what the start-up
created, which lives as long as the app, out of every later scan. A run does the same with what
its set-up created (the data, the model, the engine's modules imported on the way): once its first
steps arrive, `freeze_run_objects` leaves them out of the scans until the run ends, when
`release_run_objects` lets a full collection at an idle moment free whatever of them is garbage.
Without it a full collection while training scanned ~150k objects: a 45-60 ms stutter.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QObject, QTimer

_collector: _GuiThreadCollector | None = None
_frozen = False


class _GuiThreadCollector(QObject):
    def __init__(self, interval_ms: int) -> None:
        super().__init__()
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose thresholds passed, as the automatic collector would."""
        if not _frozen and "torch" in sys.modules:
            freeze_startup_objects()  # the first tick after the engine loaded: its heap is never garbage
        l0, l1, l2 = gc.get_count()
        if l0 > self.threshold[0]:
            gc.collect(0)
            if l1 > self.threshold[1]:
                gc.collect(1)
                if l2 > self.threshold[2]:
                    gc.collect(2)


def collect_garbage_on_gui_thread(interval_s: float = 0.25) -> None:
    """From now on, collect cycles only on this (the GUI) thread, every `interval_s`; call it once a
    QApplication exists. Idempotent."""
    global _collector
    if _collector is None:
        _collector = _GuiThreadCollector(int(interval_s * 1000))


def freeze_startup_objects() -> None:
    """Leave everything alive now (the imported modules: torch, Qt, pyqtgraph) out of later
    collections; call it once the heavy imports are done. Only the first call freezes: later objects
    may become garbage."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def freeze_run_objects() -> None:
    """A run's set-up is done: leave what is alive now out of the scans while the run trains.

    No collection first (that would be the stutter this avoids): garbage frozen with the rest is
    freed after the run, by `release_run_objects`."""
    gc.freeze()


def release_run_objects() -> None:
    """The run ended: collect everything once (the run's garbage cycles too), then freeze again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
