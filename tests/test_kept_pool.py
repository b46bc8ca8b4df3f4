"""The threads a process keeps for a request's side-by-side calls (customers/kept_pool.py)."""

from __future__ import annotations

import contextvars
import os
import threading
import time

import pytest

from customers.kept_pool import KeptPool

request_id = contextvars.ContextVar("request_id", default="none")


@pytest.fixture
def pool(settings):
    settings.SERVER_THREADS = 2
    kept = KeptPool("test-pool", 4)
    yield kept
    kept.executor().shutdown(wait=True)


def test_results_come_back_in_the_order_of_the_tasks(pool):
    def task(number: int, pause: float):
        def run() -> int:
            time.sleep(pause)
            return number

        return run

    tasks = [task(number, 0.02 * (5 - number)) for number in range(6)]
    assert pool.run_all(tasks, at_once=6) == list(range(6))


def test_its_threads_are_kept_between_requests(pool):
    names = pool.run_all([lambda: threading.current_thread().name] * 3, at_once=1)
    again = pool.run_all([lambda: threading.current_thread().name] * 3, at_once=1)
    # One at a time: each task finds the thread the one before it left idle.
    assert len(set(names) | set(again)) == 1
    assert names[0].startswith("test-pool")
    assert pool.executor()._max_workers == 4 * 2


def test_no_more_than_at_once_tasks_run_together(pool):
    running = 0
    peak = 0
    lock = threading.Lock()

    def task() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    pool.run_all([task] * 12, at_once=3)
    assert peak == 3


def test_a_failure_starts_no_other_task_and_waits_for_those_running(pool):
    started: list[int] = []
    finished: list[int] = []
    slow_started = threading.Event()

    def failing() -> None:
        started.append(0)
        slow_started.wait(5)  # fails while the slow one runs
        raise ValueError("lookup failed")

    def slow() -> None:
        started.append(1)
        slow_started.set()
        time.sleep(0.05)
        finished.append(1)

    def later(number: int):
        def run() -> None:
            started.append(number)

        return run

    with pytest.raises(ValueError, match="lookup failed"):
        pool.run_all([failing, slow, later(2), later(3)], at_once=2)
    # The slow task was running when the failure came: it was waited for, not left behind.
    assert finished == [1]
    assert sorted(started) == [0, 1]


def test_after_a_failure_its_tasks_still_queued_behind_others_never_start(settings):
    settings.SERVER_THREADS = 1
    pool = KeptPool("test-queued", 1)  # one thread, which another request's task holds
    ran: list[str] = []
    release = threading.Event()
    try:
        busy = pool.submit(lambda: release.wait(5))
        threading.Timer(0.1, release.set).start()

        def failing() -> None:
            raise ValueError("lookup failed")

        def later(name: str):
            return lambda: ran.append(name)

        with pytest.raises(ValueError, match="lookup failed"):
            pool.run_all([failing, later("b"), later("c")], at_once=3)
        assert busy.result(timeout=5)
        assert ran == []
    finally:
        release.set()
        pool.executor().shutdown(wait=True)


def test_at_once_must_let_a_task_run(pool):
    with pytest.raises(ValueError, match="at_once"):
        pool.run_all([lambda: 1], at_once=0)


def test_a_task_runs_in_its_request_s_context(pool):
    request_id.set("req-42")
    assert pool.run_all([request_id.get], at_once=1) == ["req-42"]
    assert pool.submit(request_id.get).result(timeout=5) == "req-42"


def test_a_forked_process_gets_a_pool_of_its_own(pool):
    # A pool used before a fork has no threads in the child: a task submitted there never
    # ran (a gunicorn worker forked from a preloaded app would hang on its first customer).
    assert pool.submit(lambda: "parent").result(timeout=5) == "parent"
    child = os.fork()
    if child == 0:  # the child: exit 0 only if its pool runs a task
        try:
            ran = pool.submit(lambda: "child").result(timeout=5)
            os._exit(0 if ran == "child" else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
