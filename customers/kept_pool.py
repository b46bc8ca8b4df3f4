"""Threads a process keeps for the calls a request sends to Metronome side by side: the
customer view's regions and a pasted-ID search's lookups.

A pool made for each request started its threads on the request's own path: each start
waits for the new thread to run, and under the interpreter's lock that spread a page's calls
over milliseconds more (bench/README.md, issue 24). A kept pool's threads are started once
and reused. Each task runs in a copy of its request's context (its log lines carry the
request's ID) and closes the database connections it opened, which no request cycle would
close in a thread that outlives the request.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from typing import TypeVar

from django import db
from django.conf import settings

T = TypeVar("T")


class KeptPool:
    """A ThreadPoolExecutor made on first use and kept by the process: `threads_per_request`
    threads for each request the process serves at once (SERVER_THREADS, gunicorn's
    threads). Past that a task waits for a thread, which makes a page slower, never wrong."""

    def __init__(self, name: str, threads_per_request: int) -> None:
        self.name = name
        self.threads_per_request = threads_per_request
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        _every_pool.add(self)

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.threads_per_request * settings.SERVER_THREADS,
                    thread_name_prefix=self.name,
                )
            return self._pool

    def submit(self, task: Callable[[], T]) -> Future[T]:
        """`task` on one of the pool's threads, in a copy of this request's context."""
        return self.executor().submit(copy_context().run, _closing_connections, task)

    def forget(self) -> None:
        # A pool used before a fork hangs in the child (its threads are not there): a forked
        # process (a gunicorn worker of a preloaded app) makes its own.
        self._pool, self._lock = None, threading.Lock()

    def run_all(self, tasks: Sequence[Callable[[], T]], *, at_once: int) -> list[T]:
        """Every task's result, in order, with at most `at_once` of them running at a time
        (what one request may spend of the account's rate limit). After a failure no other
        task starts, those still queued behind other requests' tasks included; those
        running are awaited, then the first failure is raised: no thread works for a
        request after its answer."""
        if at_once < 1:
            raise ValueError(f"at_once must be 1 or more, got {at_once}")
        room = threading.Semaphore(at_once)
        stopped = threading.Event()
        started: list[Future[T]] = []
        try:
            for task in tasks:
                room.acquire()
                if stopped.is_set():
                    break
                future = self.submit(functools.partial(_unless_stopped, stopped, task))
                future.add_done_callback(lambda _: room.release())
                started.append(future)
        except BaseException:
            stopped.set()  # this thread failed: its tasks not yet taken need not run
            raise
        finally:
            futures.wait(started, return_when=futures.FIRST_EXCEPTION)
            if stopped.is_set():
                for future in started:
                    future.cancel()  # those still queued; a running one goes on
            futures.wait(started)
        for future in started:
            if future.cancelled():
                continue
            error = future.exception()
            if error is not None and not isinstance(error, _NotStarted):
                raise error  # the first failure, in the tasks' order
        return [future.result() for future in started]


class _NotStarted(Exception):
    """A task not run because another task of its request had failed."""


def _unless_stopped(stopped: threading.Event, task: Callable[[], T]) -> T:
    # Checked when a thread takes the task, not when it was queued: one queued behind other
    # requests' tasks may start after its own request's failure.
    if stopped.is_set():
        raise _NotStarted
    try:
        return task()
    except BaseException:
        stopped.set()
        raise


def _closing_connections(task: Callable[[], T]) -> T:
    try:
        return task()
    finally:
        # A database cache (or a template that reads the database) opens a connection in
        # the pool's thread, which no request cycle would close.
        db.connections.close_all()


_every_pool: weakref.WeakSet[KeptPool] = weakref.WeakSet()


def _forget_every_pool() -> None:
    for pool in list(_every_pool):
        pool.forget()


os.register_at_fork(after_in_child=_forget_every_pool)
