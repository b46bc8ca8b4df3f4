"""The sync behind `manage.py sync_customers`: every Metronome customer, active and archived,
into the customer index that `customers.customer_index` searches.

A run streams both listings side by side into staging tables (a few pages per write, so
memory stays flat at any size): every customer's id and fingerprint, and the full row only
of those whose fingerprint the index does not have. It then swaps the staged rows into the
index in one short transaction: inserts, changed rows, removals. Until that transaction
commits, searches read the previous index whole; a run that fails or is interrupted before
it leaves it as it was.
One run at a time across instances: a PostgreSQL advisory lock, or on SQLite a unique
"holds the lock" row in SyncRun.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from customers import customer_index
from customers.customer_index import fold
from customers.metronome import Customer, CustomerPage, CustomerQuery, MetronomeClient
from customers.models import IndexedCustomer, IndexedNameWord, SyncRun

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


def sync(client: MetronomeClient, *, progress: Progress | None = None) -> SyncRun:
    """Sync the index from `client` and return the finished SyncRun (outcome succeeded or
    failed; the error says why). Raises SyncAlreadyRunning when another run holds the lock;
    KeyboardInterrupt and SystemExit are recorded as interrupted and raised again."""
    with _one_sync_at_a_time() as run:
        try:
            started = time.monotonic()
            first_sync = _stage_all(client, run, progress)
            staged = time.monotonic()
            with transaction.atomic():
                _swap_into_index(run, first_sync=first_sync)
            logger.info(
                "Customer index: %d customers listed in %.1fs, swapped in %.1fs",
                run.seen,
                staged - started,
                time.monotonic() - staged,
            )
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
            _drop_staging()
    return run


def _describe(error: Exception) -> str:
    from customers.metronome import MetronomeError

    if isinstance(error, MetronomeError):
        return f"Metronome: {error} The index is as the previous sync left it."
    if isinstance(error, DatabaseError):
        return (
            f"Database error ({type(error).__name__}); the index is as the previous sync left it."
        )
    return f"{type(error).__name__}: {error}. The index is as the previous sync left it."


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


def _both_listings(client: MetronomeClient) -> Iterator[CustomerPage]:
    """The pages of the active and the archived listing, fetched side by side, in the order
    they arrive."""
    pages: queue.Queue[CustomerPage | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def hand_over(item: CustomerPage | BaseException | None) -> None:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def fetch(only_archived: bool) -> None:
        listing = client.iter_pages(CustomerQuery(only_archived=only_archived), page_size=PAGE_SIZE)
        try:
            for page in listing:
                if stop.is_set():
                    break
                hand_over(page)
            hand_over(None)
        except BaseException as error:  # raised again in the consumer's thread
            hand_over(error)
        finally:
            close = getattr(listing, "close", None)  # a generator's: stops its prefetch
            if close is not None:
                close()

    for only_archived in (False, True):
        threading.Thread(
            target=fetch, args=(only_archived,), name="index-sync-fetch", daemon=True
        ).start()
    finished = 0
    try:
        while finished < 2:
            item = pages.get()
            if item is None:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()


_COLUMNS = list(IndexedCustomer._meta.concrete_fields)
# Temporary tables: private to this run's connection, gone with it, and written without
# the journal and fsyncs of the main database (on SQLite they live in another file, so
# staging does not even hold the main database's write lock).
# Every listed customer's id and fingerprint, as last listed: what the index keeps.
_SEEN = "customer_index_seen"
# The full rows of the customers whose fingerprint differs from the index's: what the swap
# writes. A resync where little changed builds and stages almost none of them.
_STAGING = "customer_index_staging"


def _create_staging() -> None:
    _drop_staging()
    index = IndexedCustomer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {_STAGING} AS SELECT * FROM {index} WHERE 1 = 0")  # noqa: S608
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_SEEN} AS SELECT id, fingerprint FROM {index} WHERE 1 = 0"  # noqa: S608
        )
        if connection.vendor != "postgresql":  # there, after the COPY: see _finish_staging
            # Unique, so a customer listed twice (archived between the two listings) is
            # one row, as last listed.
            for table in (_STAGING, _SEEN):
                cursor.execute(f"CREATE UNIQUE INDEX {table}_id ON {table} (id)")


def _finish_staging() -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in (_STAGING, _SEEN):
            # COPY cannot upsert: keep the last-listed row of a customer listed twice.
            cursor.execute(
                f"DELETE FROM {table} a USING {table} b "  # noqa: S608
                "WHERE a.id = b.id AND a.ctid < b.ctid"
            )
            cursor.execute(f"CREATE UNIQUE INDEX {table}_id ON {table} (id)")
            # Temporary tables get no automatic statistics; the swap's joins need them.
            cursor.execute(f"ANALYZE {table}")


def _drop_staging() -> None:
    with connection.cursor() as cursor:
        for table in (_STAGING, _SEEN):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _stage_all(client: MetronomeClient, run: SyncRun, progress: Progress | None) -> bool:
    """Stage both listings; True when this is a first sync (the index was empty), whose
    staging table holds every customer in full and its seen table nothing."""
    _create_staging()
    columns = [str(field.column) for field in _COLUMNS]
    if connection.vendor == "postgresql":
        insert_seen = f"COPY {_SEEN} (id, fingerprint) FROM STDIN"
        insert_row = f"COPY {_STAGING} ({', '.join(columns)}) FROM STDIN"
    else:
        insert_seen = _upsert_sql(_SEEN, ["id", "fingerprint"])
        insert_row = _upsert_sql(_STAGING, columns)
    identify, to_row = _row_builders(timezone.now())
    first_sync = not IndexedCustomer.objects.exists()
    if first_sync:
        # Nothing to look up, and every row is staged in full: the staging table is also
        # the list of customers seen.
        lookup, insert_seen = _nothing_stored, ""
    else:
        lookup = _stored_fingerprints
    pending: list[Customer] = []
    for page_count, page in enumerate(_both_listings(client), 1):
        pending.extend(page.customers)
        run.seen += len(page.customers)
        if page_count % PAGES_PER_WRITE == 0:
            _write(pending, identify, lookup, to_row, insert_seen, insert_row, run)
            pending = []
        if progress is not None:
            progress(page_count, run.seen)
    _write(pending, identify, lookup, to_row, insert_seen, insert_row, run)
    _finish_staging()
    return first_sync


def _write(
    customers: list[Customer],
    identify: Callable[[Customer], tuple[object, str]],
    lookup: Callable[[list[object]], dict[object, str]],
    to_row: Callable[[Customer, object, str], tuple[object, ...]],
    insert_seen: str,
    insert_row: str,
    run: SyncRun,
) -> None:
    """Stage a batch: every customer's id and fingerprint, and the full row of those whose
    fingerprint the index does not have. Folding, JSON and the rest of a row are the bulk
    of a sync's CPU (bench/README.md), so an unchanged customer skips them."""
    if customers:
        keys = [identify(customer) for customer in customers]
        stored = lookup([db_id for db_id, _ in keys])
        rows = [
            to_row(customer, db_id, fingerprint)
            for customer, (db_id, fingerprint) in zip(customers, keys, strict=True)
            if stored.get(db_id) != fingerprint
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            for insert, values in ((insert_seen, keys), (insert_row, rows)):
                if not (insert and values):
                    continue
                if connection.vendor == "postgresql":
                    # COPY: several times faster than executemany's INSERTs (bench/README.md).
                    with cursor.cursor.copy(insert) as copy:
                        for value in values:
                            copy.write_row(value)
                else:
                    cursor.executemany(insert, values)  # type: ignore[arg-type]  # plain values
    now = timezone.now()
    if run.heartbeat_at is None or now - run.heartbeat_at > HEARTBEAT_EVERY:
        run.heartbeat_at = now
        SyncRun.objects.filter(pk=run.pk).update(seen=run.seen, heartbeat_at=now)


def _stored_fingerprints(ids: list[object]) -> dict[object, str]:
    """The index's fingerprints of these customers (as the driver returns ids: the same
    type the row builders make), those not yet indexed absent. Only the sync writes the
    index, one run at a time, so they hold until this run's swap."""
    index = IndexedCustomer._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT id, fingerprint FROM {index} WHERE id = ANY(%s)", [ids])  # noqa: S608
        else:
            # A batch is PAGES_PER_WRITE pages: far below SQLite's limit on parameters.
            placeholders = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"SELECT id, fingerprint FROM {index} WHERE id IN ({placeholders})",  # noqa: S608
                ids,  # type: ignore[arg-type]  # hex strings, as identifier() made them
            )
        return dict(cursor.fetchall())


def _nothing_stored(ids: list[object]) -> dict[object, str]:
    return {}


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _row_builders(
    indexed_at: datetime,
) -> tuple[
    Callable[[Customer], tuple[object, str]],
    Callable[[Customer, object, str], tuple[object, ...]],
]:
    """Two functions: a customer's id (as the database driver takes it) and fingerprint,
    cheap enough for every customer listed; and its full staging row, in `_COLUMNS` order,
    only for those that changed. Written out rather than through the fields'
    get_db_prep_save, which took most of a 100,000-customer sync's time (bench/README.md)."""
    if connection.vendor == "sqlite":

        def timestamp(value: datetime | None) -> object:
            # As Django stores it on SQLite: naive UTC, in str()'s format. Metronome sends
            # UTC, so cutting "+00:00" off is the common, cheap case.
            if value is None:
                return None
            if value.tzinfo is UTC:
                return str(value)[:-6]
            return str(value.astimezone(UTC).replace(tzinfo=None))

        def identifier(value: str) -> object:
            if _CANONICAL_UUID.fullmatch(value):
                return value.replace("-", "")
            return uuid.UUID(value).hex  # any other spelling, or a clear ValueError
    else:

        def timestamp(value: datetime | None) -> object:
            return value

        def identifier(value: str) -> object:
            return uuid.UUID(value)

    to_json = json.JSONEncoder(ensure_ascii=False).encode

    indexed = timestamp(indexed_at)
    expected = [
        "id", "name", "name_folded", "ingest_aliases", "aliases_folded", "external_id",
        "external_id_folded", "salesforce_account_id", "salesforce_account_id_18",
        "salesforce_key", "billable_status", "billable_status_effective_at", "created_at",
        "updated_at", "archived_at", "custom_fields", "custom_values_folded", "fingerprint",
        "indexed_at",
    ]  # fmt: skip
    if [field.attname for field in _COLUMNS] != expected:
        raise AssertionError("the index's columns changed: update _row_builders")

    def identify(customer: Customer) -> tuple[object, str]:
        status = customer.billable_status
        # repr() of the values in one tuple: one call into C, unambiguous (strings quoted,
        # datetimes with their zone), and stable for the same values.
        values = (
            customer.name,
            customer.ingest_aliases,
            customer.external_id,
            customer.salesforce_account_id,
            status.value.value if status else None,
            status.effective_at if status else None,
            customer.created_at,
            customer.updated_at,
            customer.archived_at,
            customer.custom_fields,
        )
        digest = hashlib.blake2b(repr(values).encode(), digest_size=16).hexdigest()
        return identifier(customer.id), digest

    def row(customer: Customer, db_id: object, fingerprint: str) -> tuple[object, ...]:
        aliases = customer.ingest_aliases
        custom_fields = customer.custom_fields
        salesforce_id = customer.salesforce_account_id or ""
        status = customer.billable_status
        return (
            db_id,
            customer.name,
            fold(customer.name),
            to_json(aliases),
            "".join(f"\n{fold(alias)}" for alias in aliases) + "\n",
            customer.external_id,
            fold(customer.external_id),
            salesforce_id,
            customer_index.salesforce_id_18(salesforce_id),
            customer_index.salesforce_key(salesforce_id),
            status.value.value if status else "",
            timestamp(status.effective_at if status else None),
            timestamp(customer.created_at),
            timestamp(customer.updated_at),
            timestamp(customer.archived_at),
            to_json(custom_fields),
            "\n".join(fold(value) for value in custom_fields.values()),
            fingerprint,
            indexed,
        )

    return identify, row


# --- The swap ------------------------------------------------------------------------------


def _upsert_sql(table: str, columns: list[str]) -> str:
    """INSERT ... ON CONFLICT (id) DO UPDATE, the same on SQLite and PostgreSQL: a customer
    listed twice (archived between the two listings) is staged once, as last listed."""
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column != "id")
    placeholders = ", ".join(["%s"] * len(columns))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


_CHANGED = "customer_index_changed"


def _swap_into_index(run: SyncRun, *, first_sync: bool) -> None:
    """Apply the staged listing to the index: only the rows that differ are written. A
    staged row counts only when its fingerprint is the last-listed one: a customer listed
    twice may have been staged as first listed and then found unchanged as last listed."""
    index = IndexedCustomer._meta.db_table
    staged = (
        _STAGING
        if first_sync
        else (
            f"(SELECT s.* FROM {_STAGING} s JOIN {_SEEN} k "  # noqa: S608
            "ON k.id = s.id AND k.fingerprint = s.fingerprint)"
        )
    )
    seen = _STAGING if first_sync else _SEEN
    columns = [str(field.column) for field in _COLUMNS]
    column_list = ", ".join(columns)
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column != "id")
    # Table names come from the models and constants, never from input.
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_CHANGED}")
        # Every id whose row is added, changed or removed: the SQLite text index and the
        # counts follow from it.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_CHANGED} AS "  # noqa: S608
            f"SELECT s.id AS id, i.id IS NULL AS added FROM {staged} AS s "
            f"LEFT JOIN {index} i ON i.id = s.id "
            "WHERE i.id IS NULL OR i.fingerprint <> s.fingerprint "
            f"UNION ALL SELECT i.id, {_false()} FROM {index} i "
            f"WHERE NOT EXISTS (SELECT 1 FROM {seen} k WHERE k.id = i.id)"
        )
        cursor.execute(f"SELECT count(*) FROM {_CHANGED}")  # noqa: S608
        if cursor.fetchone()[0] == 0:
            return
        if connection.vendor == "sqlite":
            cursor.execute(
                "DELETE FROM customer_index_fts WHERE id IN "  # noqa: S608
                f"(SELECT id FROM {_CHANGED} WHERE NOT added)"
            )
        cursor.execute(
            f"DELETE FROM {index} WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {seen} k WHERE k.id = {index}.id)"
        )
        run.deleted = cursor.rowcount
        # `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
        cursor.execute(
            f"INSERT INTO {index} ({column_list}) SELECT {column_list} FROM {staged} AS s "  # noqa: S608
            f"WHERE true ON CONFLICT (id) DO UPDATE SET {updates} "
            f"WHERE {index}.fingerprint <> excluded.fingerprint"
        )
        cursor.execute(f"SELECT count(*) FROM {_CHANGED} WHERE added")  # noqa: S608
        run.inserted = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {_CHANGED} WHERE NOT added")  # noqa: S608
        run.updated = cursor.fetchone()[0] - run.deleted
        if connection.vendor == "sqlite":
            started = time.monotonic()
            cursor.execute(
                "INSERT INTO customer_index_fts (id, name, other) "  # noqa: S608
                "SELECT id, name_folded, aliases_folded || external_id_folded || char(10) || "
                f"custom_values_folded FROM {index} WHERE id IN (SELECT id FROM {_CHANGED})"
            )
            logger.info("Customer index: text index updated in %.1fs", time.monotonic() - started)
        else:
            # Fresh statistics, or the planner takes a just-filled index for empty and
            # scans the table instead of using the trigram index.
            cursor.execute(f"ANALYZE {index}")
        cursor.execute(f"DROP TABLE {_CHANGED}")
    started = time.monotonic()
    _rebuild_name_words()
    logger.info("Customer index: name words rebuilt in %.1fs", time.monotonic() - started)


def _false() -> str:
    return "0" if connection.vendor == "sqlite" else "false"


def _rebuild_name_words() -> None:
    vocabulary: set[str] = set()
    names = IndexedCustomer.objects.values_list("name_folded", flat=True)
    for name in names.iterator(chunk_size=5000):
        vocabulary.update(customer_index.words(name))
    IndexedNameWord.objects.all().delete()
    IndexedNameWord.objects.bulk_create(
        (IndexedNameWord(word=word[:255], length=len(word)) for word in sorted(vocabulary)),
        batch_size=2000,
        ignore_conflicts=True,
    )
