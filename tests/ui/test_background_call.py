"""BackgroundCall: one function off the GUI thread, its progress and result back on the GUI thread."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest

from studio.errors import DataError
from studio.ui.background_call import BackgroundCall

pytestmark = pytest.mark.usefixtures("qapp")


def test_progress_and_result_arrive_on_the_gui_thread(qtbot: Any) -> None:
    seen: list[tuple[str, Any, bool]] = []
    worker_threads: list[Any] = []

    def work(progress: Any) -> int:
        worker_threads.append(threading.current_thread())
        progress("reading")
        progress("summing")
        return 42

    call = BackgroundCall(work)
    call.progressed.connect(lambda text: seen.append(("progressed", text, threading.current_thread())))
    call.succeeded.connect(lambda result: seen.append(("succeeded", result, threading.current_thread())))
    with qtbot.waitSignal(call.finished, timeout=10000):
        call.start()
        assert call.is_running()
    assert [(k, v) for k, v, _ in seen] == [("progressed", "reading"), ("progressed", "summing"), ("succeeded", 42)]
    assert all(t is threading.main_thread() for _, _, t in seen)
    assert worker_threads and worker_threads[0] is not threading.main_thread()
    assert not call.is_running()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DataError("no such folder: x"), "no such folder: x"),
        (ZeroDivisionError("division by zero"), "unexpected failure: ZeroDivisionError: division by zero"),
    ],
)
def test_a_failure_becomes_one_message(qtbot: Any, error: Exception, expected: str) -> None:
    def work(_progress: Any) -> None:
        raise error

    call = BackgroundCall(work)
    with qtbot.waitSignal(call.failed, timeout=10000) as failed:
        call.start()
    assert failed.args == [expected]
    qtbot.waitUntil(lambda: not call.is_running(), timeout=5000)


def test_an_abandoned_call_delivers_nothing_but_still_finishes(qtbot: Any) -> None:
    release = threading.Event()
    seen: list[Any] = []
    call = BackgroundCall(lambda progress: (release.wait(10), progress("late"), "stale")[-1])
    call.succeeded.connect(seen.append)
    call.progressed.connect(seen.append)
    call.start()
    call.abandon()
    with qtbot.waitSignal(call.finished, timeout=10000):
        release.set()
    assert seen == []


def test_a_dropped_call_keeps_itself_alive_and_wait_all_waits(qtbot: Any) -> None:
    release, done = threading.Event(), threading.Event()

    def slow(_progress: Any) -> None:
        release.wait(10)  # running until the test has collected garbage and looked
        done.set()

    BackgroundCall(slow).start()  # no reference kept: the call must not be destroyed mid-run
    gc.collect()
    assert BackgroundCall.running_calls()
    release.set()
    assert BackgroundCall.wait_all(10000)
    assert done.is_set()
    qtbot.waitUntil(lambda: not BackgroundCall.running_calls(), timeout=5000)


def test_wait_all_returns_with_every_call_heard_to_the_end(qtbot: Any) -> None:
    """A closing window waits for its calls and then has none running: their results and ends,
    queued to the GUI thread, are delivered by the wait, in order (a first `make test` once failed
    on a call whose thread had ended but whose end was still in the queue)."""
    seen: list[str] = []
    call = BackgroundCall(lambda progress: (progress("working"), "result")[-1])
    call.progressed.connect(seen.append)
    call.succeeded.connect(seen.append)
    call.finished.connect(lambda: seen.append("finished"))
    call.start()
    assert call.wait(10000)  # the thread has ended; no event was processed since
    assert call.is_running()  # its end is still in the queue
    assert BackgroundCall.wait_all(10000)
    assert not BackgroundCall.running_calls()
    assert seen == ["working", "result", "finished"]


def test_the_work_polls_its_cancel_flag_and_every_partial_result_comes_before_the_result(qtbot: Any) -> None:
    """Orange's TaskState: the work stops where it checks; streamed items arrive batched, in order, all of them."""
    running = threading.Event()

    def work(state: Any) -> int:
        n = 0
        while not state.is_interruption_requested():
            state.add_partial_result(n)
            n += 1
            running.set()
            time.sleep(0.001)
        return n

    call = BackgroundCall(work)
    items: list[int] = []
    batches: list[int] = []
    results: list[int] = []
    call.partial_results.connect(lambda batch: (items.extend(batch), batches.append(len(batch))))
    call.succeeded.connect(lambda n: results.append(n) or batches.append(-1))
    call.start()
    assert running.wait(10)
    qtbot.wait(300)
    with qtbot.waitSignal(call.finished, timeout=10000):
        call.request_interruption()  # the result still comes: only cancel() drops it
    assert results and items == list(range(results[0]))
    assert batches[-1] == -1 and len(batches) - 1 < len(items)  # batched, and all before the result


def test_cancel_stops_the_work_and_drops_what_it_returns(qtbot: Any) -> None:
    def work(state: Any) -> str:
        while not state.is_interruption_requested():  # never ends unless cancel() reaches it
            time.sleep(0.005)
        return "stale"

    call = BackgroundCall(work)
    seen: list[Any] = []
    call.succeeded.connect(seen.append)
    call.start()
    with qtbot.waitSignal(call.finished, timeout=10000):
        call.cancel()
    assert seen == []


def test_progress_values_are_throttled_and_the_last_one_arrives(qtbot: Any) -> None:
    def work(state: Any) -> None:
        for i in range(1, 2001):
            state.set_progress_value(i / 2000)

    call = BackgroundCall(work)
    values: list[float] = []
    call.progress_changed.connect(values.append)
    with qtbot.waitSignal(call.finished, timeout=10000):
        call.start()
    assert values[-1] == 1.0 and len(values) < 100 and values == sorted(values)
