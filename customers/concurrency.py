"""A per-person limit on expensive work running at once: long pasted-ID searches and CSV
exports each spend many calls of the company's one Metronome token, and twenty of them at once
made the API drop connections. The count lives in Django's cache, so with Redis it holds across
every instance; each slot also expires on its own, so a process that dies mid-export cannot
leave a person locked out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

BUSY_MESSAGE = (
    "You already have {limit} large searches or downloads running. Try again when one of "
    "them has finished."
)


class Busy(Exception):
    """The person already runs as much expensive work as they may."""

    def __init__(self, limit: int) -> None:
        super().__init__(BUSY_MESSAGE.format(limit=limit))


def _key(user_id: object) -> str:
    return f"expensive-work:{user_id}"


def acquire(user_id: object) -> None:
    """Take one of the person's slots, or raise Busy. Pair every call with `release`."""
    limit: int = settings.EXPENSIVE_WORK_PER_USER
    key = _key(user_id)
    # add() is atomic and sets the expiry; incr() is atomic on Redis and per process in memory.
    cache.add(key, 0, timeout=settings.EXPENSIVE_WORK_SLOT_SECONDS)
    try:
        running = cache.incr(key)
    except ValueError:  # the key expired between add() and incr()
        cache.add(key, 1, timeout=settings.EXPENSIVE_WORK_SLOT_SECONDS)
        running = 1
    if running > limit:
        release(user_id)
        raise Busy(limit)


def release(user_id: object) -> None:
    try:
        if cache.decr(_key(user_id)) < 0:
            cache.delete(_key(user_id))
    except ValueError:  # already expired: nothing to give back
        pass


@contextmanager
def expensive_work(user_id: object) -> Iterator[None]:
    acquire(user_id)
    try:
        yield
    finally:
        release(user_id)
