"""The sync behind `manage.py sync_customers`: every Metronome customer, active and archived,
into the customer index that `customers.index.search` searches.

A run streams both listings side by side into staging tables (`staging.py`; a few pages per
write, so memory stays flat at any size): every customer's id and fingerprint, and the full
row (`rows.py`) only of those whose fingerprint the index does not have. It then swaps the
staged rows into the index in one short transaction: inserts, changed rows, removals. Until
that transaction commits, searches read the previous index whole; a run that fails or is
interrupted before it leaves it as it was.
One run at a time across instances: a PostgreSQL advisory lock, or on SQLite a unique
"holds the lock" row in SyncRun.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import cast

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from customers.index import staging
from customers.index.rows import Listed, row_builders
from customers.index.search import last_successful_sync, plausible_customer_count
from customers.metronome import CustomerQuery, MetronomeClient, MetronomeError, RowPage
from customers.metronome.prefetch import prefetched
from customers.metronome.redaction import redact
from customers.models import IndexedCustomer, SyncRun

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
# Pages written to the staging table per batch: few enough to keep memory flat.
PAGES_PER_WRITE = 20
# A run whose heartbeat is older than this died without finishing (SQLite lock only; a
# PostgreSQL advisory lock ends with the session).
STALE_AFTER = timedelta(minutes=10)
HEARTBEAT_EVERY = timedelta(seconds=30)
# Any number: it only has to be the same in every instance of the dashboard.
ADVISORY_LOCK_KEY = 7_140_214


class SyncAlreadyRunning(Exception):
    """Another instance is syncing the index right now."""


Progress = Callable[[int, int], None]  # (pages, customers) so far
# A customer's JSON, database id and fingerprint to its full staging row (rows.py).
ToRow = Callable[[bytes, object, str], tuple[object, ...]]


# A successful run's note when the typo dictionary failed to follow its swap: the next
# sync rebuilds it even if no customer changed.
NAME_WORDS_NOT_REBUILT = (
    "The index was updated, but its dictionary of name words was not: misspelt names are "
    "corrected from the previous one until the next sync."
)


def sync(client: MetronomeClient, *, progress: Progress | None = None) -> SyncRun:
    """Sync the index from `client` and return the finished SyncRun (outcome succeeded or
    failed; the error says why). Raises SyncAlreadyRunning when another run holds the lock;
    KeyboardInterrupt and SystemExit are recorded as interrupted and raised again."""
    with _one_sync_at_a_time() as run:
        try:
            started = time.monotonic()
            first_sync = _stage_all(client, run, progress)
            staged = time.monotonic()
            previous = last_successful_sync()
            with transaction.atomic():
                changed = staging.swap_into_index(run, first_sync=first_sync)
            logger.info(
                "Customer index: %d customers listed in %.1fs, swapped in %.1fs",
                run.seen,
                staged - started,
                time.monotonic() - staged,
            )
            if changed or previous is None or previous.active_customers is None:
                try:
                    run.active_customers, run.archived_customers = staging.customers_by_state()
                except Exception:
                    # The swap is in: the run succeeded; the list shows no total until
                    # the next sync counts again.
                    logger.exception("Customer index: customers not counted")
            else:
                run.active_customers = previous.active_customers
                run.archived_customers = previous.archived_customers
            if changed or previous is None or previous.error == NAME_WORDS_NOT_REBUILT:
                try:
                    staging.rebuild_name_words()
                except Exception:
                    # The index is swapped in and searchable: misspelt names are corrected
                    # from the previous dictionary until the next sync rebuilds it.
                    logger.exception("Customer index: name words not rebuilt")
                    run.error = NAME_WORDS_NOT_REBUILT
                try:
                    staging.vacuum_written_tables()
                except Exception:
                    # Only the next searches' speed is at stake, and autovacuum follows.
                    logger.exception("Customer index: not vacuumed after the sync")
            run.outcome = SyncRun.Outcome.SUCCEEDED
        except (KeyboardInterrupt, SystemExit):
            run.outcome = SyncRun.Outcome.INTERRUPTED
            run.error = "Stopped before it finished; the index is as the previous sync left it."
            raise
        except Exception as error:
            logger.exception("Customer index sync failed")
            run.outcome = SyncRun.Outcome.FAILED
            run.error = _describe(error)
        finally:
            run.finished_at = timezone.now()
            staging.drop()
    return run


def _describe(error: Exception) -> str:
    if isinstance(error, MetronomeError):
        return f"Metronome: {error} The index is as the previous sync left it."
    if isinstance(error, DatabaseError):
        return (
            f"Database error ({type(error).__name__}); the index is as the previous sync left it."
        )
    # Not ours to word: stored with anything token-like taken out.
    described = redact(f"{type(error).__name__}: {error}", settings.METRONOME_BEARER_TOKEN)
    return f"{described}. The index is as the previous sync left it."


# --- The lock ------------------------------------------------------------------------------


@contextlib.contextmanager
def _one_sync_at_a_time() -> Iterator[SyncRun]:
    """Yields this run's SyncRun, saved as running; saves its end state on the way out."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            (acquired,) = cursor.fetchone()
        if not acquired:
            raise SyncAlreadyRunning("Another customer index sync is running.")
        try:
            # The lock is ours: any run still marked running died without finishing.
            _mark_abandoned(SyncRun.objects.filter(outcome=SyncRun.Outcome.RUNNING))
            run = SyncRun.objects.create(started_at=timezone.now(), heartbeat_at=timezone.now())
            try:
                yield run
            finally:
                run.save()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        return

    _mark_abandoned(
        SyncRun.objects.filter(holds_lock=True, heartbeat_at__lt=timezone.now() - STALE_AFTER)
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(started_at=now, heartbeat_at=now, holds_lock=True)
    except IntegrityError:
        raise SyncAlreadyRunning("Another customer index sync is running.") from None
    try:
        yield run
    finally:
        run.holds_lock = None
        run.save()


def _mark_abandoned(runs: QuerySet[SyncRun]) -> None:
    runs.update(
        outcome=SyncRun.Outcome.INTERRUPTED,
        holds_lock=None,
        finished_at=timezone.now(),
        error="Stopped without finishing (the process ended); the index was left as it was.",
    )


# --- Staging -------------------------------------------------------------------------------


def _both_listings(
    client: MetronomeClient,
    read: Callable[[str, bytes], Listed],
    to_row: ToRow | None,
    *,
    ahead: int,
) -> Iterator[RowPage[Listed] | RowPage[tuple[object, ...]]]:
    """The pages of the active and the archived listing, fetched side by side (one thread
    each, which also reads its customers), in the order they arrive: each customer as
    `read` gives it or, with `to_row` (a first sync), as its full staging row."""
    # Each listing stops (and the sync fails, the index kept) past what the account can
    # plausibly hold: an API answering new cursors for ever cannot keep a sync going.
    ceiling = plausible_customer_count()
    listings = [
        partial(_listing, client, CustomerQuery(only_archived=archived), read, to_row, ceiling)
        for archived in (False, True)
    ]
    return prefetched(listings, ahead=ahead, thread_name="index-sync-fetch")


def _listing(
    client: MetronomeClient,
    query: CustomerQuery,
    read: Callable[[str, bytes], Listed],
    to_row: ToRow | None,
    ceiling: int | None,
) -> Iterator[RowPage[Listed] | RowPage[tuple[object, ...]]]:
    pages = client.follow_listed(query, PAGE_SIZE, read, max_rows=ceiling)
    try:
        for page in pages:
            if to_row is None:
                yield page
            else:
                # After the listing kept each customer once: a copy Metronome repeats is
                # never read in full, as in a resync.
                rows = tuple([to_row(span, db_id, fp) for db_id, fp, span in page.rows])
                yield RowPage(rows, page.next_page)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


@dataclass
class _Staging:
    """What each write of a run needs."""

    to_row: ToRow
    insert_batch: str
    insert_row: str
    # The index was empty: every row is staged in full, none compared.
    first_sync: bool
    # SQLite, first sync: the text index is filled as rows are staged (staging.TEXT_NEXT), up
    # to this staged rowid so far. None otherwise.
    text_after: int | None


def _stage_all(client: MetronomeClient, run: SyncRun, progress: Progress | None) -> bool:
    """Stage both listings; True when this is a first sync (the index was empty), whose
    staging table holds every customer in full and its seen table nothing."""
    # A first sync stages every row in full: the staging table is also the list of
    # customers seen, and there is nothing to compare with.
    first_sync = not IndexedCustomer.objects.exists()
    staging.create(first_sync=first_sync)
    read, to_row = row_builders(timezone.now())
    stage = _Staging(
        to_row,
        *staging.insert_statements(),
        first_sync=first_sync,
        text_after=0 if first_sync and connection.vendor == "sqlite" else None,
    )
    pending: list[tuple[object, ...]] = []
    # While a write waits on the database (PostgreSQL comparing a batch, SQLite filling the
    # text index), the listings fetch the next write's pages rather than stop four pages in:
    # an unchanged resync of 1,000,000 customers on PostgreSQL, 17.5 -> 15.3 s. A page
    # waiting is its customers' ids, fingerprints and JSON (a first sync's, their rows): a
    # resync's peak RSS measured the same (160 MB at 1,000,000 either way).
    #
    # A first sync builds every customer's row in the listing threads, as they read each
    # page: this thread then mostly waits on SQLite (staging, the text index) with the GIL
    # released, while they read on; 100,000 customers listed in 4.7 -> 4.4 s on SQLite.
    listings = _both_listings(client, read, to_row if first_sync else None, ahead=PAGES_PER_WRITE)
    for page_count, page in enumerate(listings, 1):
        pending.extend(page.rows)
        run.seen += len(page.rows)
        if page_count % PAGES_PER_WRITE == 0:
            _write(stage, pending, run)
            pending = []
        if progress is not None:
            progress(page_count, run.seen)
    _write(stage, pending, run)
    staging.finish(first_sync=first_sync)
    return first_sync


def _write(stage: _Staging, batch: list[tuple[object, ...]], run: SyncRun) -> None:
    """Stage a batch: on a first sync, the full rows the listings built; otherwise every
    customer's id and fingerprint (`Listed`), and the full row of those whose fingerprint the
    index does not have. Reading a customer in full, folding, JSON and the rest of a row are
    the bulk of a sync's CPU (bench/README.md), so an unchanged customer skips them; which
    ones differ, the database says by joining the batch to the index."""
    if batch:
        with transaction.atomic(), connection.cursor() as cursor:
            if stage.first_sync:
                rows = batch
            else:
                listed = cast(list[Listed], batch)
                keys = [(db_id, fp) for db_id, fp, _ in listed]
                changed = staging.changed_in_batch(cursor, stage.insert_batch, keys)
                rows = [
                    stage.to_row(span, db_id, fingerprint)
                    for db_id, fingerprint, span in listed
                    if db_id in changed
                ]
            staging.insert(cursor, stage.insert_row, rows)
            if stage.text_after is not None:
                stage.text_after = staging.fill_text_next(cursor, stage.text_after)
    now = timezone.now()
    if run.heartbeat_at is None or now - run.heartbeat_at > HEARTBEAT_EVERY:
        run.heartbeat_at = now
        SyncRun.objects.filter(pk=run.pk).update(seen=run.seen, heartbeat_at=now)
