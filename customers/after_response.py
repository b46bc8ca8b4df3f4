"""Work a page may do once its last byte is sent: giving back a long-search slot, caching a
search for its next pages. None of it changes what the page shows, and all of it used to
stand between Metronome's answer and the end of the page (2-3 ms of a pasted-ID page,
bench/README.md).

`defer(work)` runs `work` at once, unless the code runs inside `collecting(into)`: then it
waits in `into`. The customers page (customers/views.py) collects while it finds its rows
and hands what it collected to `when_sent(response, ...)`: the response's `close()`, which
the WSGI server calls once the last byte is sent (PEP 3333), runs it, and so does a
response that was never sent (a browser gone). Work that fails is logged, never raised:
the person already has their page.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

from django.http import HttpResponseBase

logger = logging.getLogger(__name__)

Work = Callable[[], object]

_collector: ContextVar[list[Work] | None] = ContextVar("after_response", default=None)


def defer(work: Work) -> None:
    """Run `work` after the response is sent, or now when nothing collects it."""
    pending = _collector.get()
    if pending is None:
        work()
    else:
        pending.append(work)


@contextmanager
def collecting(into: list[Work]) -> Iterator[None]:
    """Within the block, `defer` adds to `into` rather than running the work."""
    token = _collector.set(into)
    try:
        yield
    finally:
        _collector.reset(token)


def when_sent(response: HttpResponseBase, pending: list[Work]) -> None:
    """Run `pending` when the server closes `response`, after sending it, in the request's
    context as it is now (its log lines carry the request's ID, which is gone by then)."""
    context = contextvars.copy_context()
    # Django's own hook for that, if not a documented one (since Django 3.0): close() runs
    # these (FileResponse closes its file so) before it signals the request's end, which
    # closes the database connection. tests/pages/test_after_response.py holds Django to it.
    response._resource_closers.append(partial(context.run, run, pending))  # type: ignore[attr-defined]


def run(pending: list[Work]) -> None:
    """Run (and forget) what was collected, in order; each failure logged, the rest run."""
    while pending:
        work = pending.pop(0)
        try:
            work()
        except Exception:
            logger.exception("Work after a response failed")
