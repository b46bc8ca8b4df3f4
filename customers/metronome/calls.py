"""How many calls to Metronome a piece of work made and how long they took, for its one
log line: the dashboard's request log opens a tally per request (`counting`), every HTTP
attempt of the client adds to the open one (`record`).

The tally lives in a context variable holding one mutable object, so work a request runs
in a copy of its context adds to the same tally: the pasted-ID search's pool of threads,
and an export's pages, read after the view returned (`views._releasing`); a lock keeps
their additions whole.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class CallTally:
    """The calls counted so far and their summed duration (calls sent side by side each
    count their own time, so the sum can exceed the request's)."""

    __slots__ = ("_lock", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.count += 1
            self.seconds += seconds


_open: ContextVar[CallTally | None] = ContextVar("metronome_call_tally", default=None)


@contextmanager
def counting() -> Iterator[CallTally]:
    """A fresh tally that every call made in this context (and its copies) adds to."""
    tally = CallTally()
    token = _open.set(tally)
    try:
        yield tally
    finally:
        _open.reset(token)


def record(seconds: float) -> None:
    """Count one call (one HTTP attempt) in the open tally, if any."""
    tally = _open.get()
    if tally is not None:
        tally.add(seconds)
