"""A per-person limit on expensive work running at once: long pasted-ID searches and CSV
exports each spend many calls of the company's one Metronome token, and twenty of them at once
made the API drop connections.

Each running piece of work holds one numbered slot, a row in the database (`WorkSlot`): every
worker of every instance sees the same rows, whatever the cache, and the unique pair (person,
number) makes taking a slot atomic on SQLite and PostgreSQL alike, with no lock to hold. A
count in a per-process cache gave one person the limit once per gunicorn worker. Each slot
also expires on its own, so a process that dies mid-export cannot leave a person locked out.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers import after_response
from customers.models import WorkSlot

BUSY_MESSAGE = (
    "You already have {limit} large searches or downloads running. Try again when one of "
    "them has finished."
)


class Busy(Exception):
    """The person already runs as much expensive work as they may."""

    retry_after = 30  # seconds: what the CSV's 429 tells a script to wait

    def __init__(self, limit: int) -> None:
        super().__init__(BUSY_MESSAGE.format(limit=limit))


def acquire(user_id: object) -> int:
    """Take one of the person's slots and return it (its row's key), or raise Busy. Pair
    every call with `release` of that slot; work that may outlast EXPENSIVE_WORK_SLOT_SECONDS
    (a CSV export runs up to PAGING_MAX_SECONDS) calls `keep` with it as it goes."""
    limit: int = settings.EXPENSIVE_WORK_PER_USER
    holder = str(user_id)
    now = timezone.now()
    WorkSlot.objects.filter(holder=holder, expires_at__lte=now).delete()
    expires_at = now + timedelta(seconds=settings.EXPENSIVE_WORK_SLOT_SECONDS)
    taken = set(WorkSlot.objects.filter(holder=holder).values_list("number", flat=True))
    for number in range(limit):
        if number in taken:
            continue
        try:
            # Its own savepoint: a clash leaves a caller's transaction usable (PostgreSQL).
            with transaction.atomic():
                slot = WorkSlot.objects.create(holder=holder, number=number, expires_at=expires_at)
        except IntegrityError:  # another worker took this number first: try the next
            continue
        return int(slot.pk)
    raise Busy(limit)


def keep(user_id: object, slot: int) -> None:
    """Work still running holds its slot for another EXPENSIVE_WORK_SLOT_SECONDS: the expiry
    is there for a process that died, not for an export that is still being written. A slot
    already expired and taken back (work stalled for longer than that) stays gone."""
    expires_at = timezone.now() + timedelta(seconds=settings.EXPENSIVE_WORK_SLOT_SECONDS)
    WorkSlot.objects.filter(pk=slot, holder=str(user_id)).update(expires_at=expires_at)


def release(user_id: object, slot: int) -> None:
    """Give back the slot `acquire` gave this work: that one, not another of the person's
    (an export's renewed slot must not go with a search that ended beside it)."""
    WorkSlot.objects.filter(pk=slot, holder=str(user_id)).delete()


@contextmanager
def expensive_work(user_id: object) -> Iterator[None]:
    """Holds one of the person's slots for the block. The customers page gives it back once
    it is sent (customers/after_response.py), not between Metronome's answer and the rows."""
    slot = acquire(user_id)
    try:
        yield
    finally:
        after_response.defer(functools.partial(release, user_id, slot))
