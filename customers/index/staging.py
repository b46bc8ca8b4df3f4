"""The sync's tables and SQL: the temporary staging tables a run streams both listings
into, the batch writes (COPY on PostgreSQL), and the one-transaction swap of the staged rows
into the index. A run's order and its lock are `sync.py`'s."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.db import connection, transaction

from customers.index.rows import COLUMNS
from customers.index.search import words
from customers.models import IndexedCustomer, IndexedNameWord, SyncRun

logger = logging.getLogger(__name__)

# Temporary tables: private to this run's connection, gone with it, and written without
# the journal and fsyncs of the main database (on SQLite they live in another file, so
# staging does not even hold the main database's write lock).
# Every listed customer's id and fingerprint, as last listed: what the index keeps.
SEEN = "customer_index_seen"
# The full rows of the customers whose fingerprint differs from the index's: what the swap
# writes. A resync where little changed builds and stages almost none of them.
STAGING = "customer_index_staging"


def create() -> None:
    drop()
    index = IndexedCustomer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} AS SELECT * FROM {index} WHERE 1 = 0")  # noqa: S608
        cursor.execute(
            f"CREATE TEMPORARY TABLE {SEEN} AS SELECT id, fingerprint FROM {index} WHERE 1 = 0"  # noqa: S608
        )
        if connection.vendor != "postgresql":  # there, after the COPY: see finish
            # Unique, so a customer listed twice (archived between the two listings) is
            # one row, as last listed.
            for table in (STAGING, SEEN):
                cursor.execute(f"CREATE UNIQUE INDEX {table}_id ON {table} (id)")


def finish() -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in (STAGING, SEEN):
            # COPY cannot upsert: keep the last-listed row of a customer listed twice.
            cursor.execute(
                f"DELETE FROM {table} a USING {table} b "  # noqa: S608
                "WHERE a.id = b.id AND a.ctid < b.ctid"
            )
            cursor.execute(f"CREATE UNIQUE INDEX {table}_id ON {table} (id)")
            # Temporary tables get no automatic statistics; the swap's joins need them.
            cursor.execute(f"ANALYZE {table}")


def insert_statements() -> tuple[str, str]:
    """How a batch goes into the seen table and into the staging table: COPY on PostgreSQL,
    an upsert elsewhere."""
    columns = [str(field.column) for field in COLUMNS]
    if connection.vendor == "postgresql":
        return (
            f"COPY {SEEN} (id, fingerprint) FROM STDIN",
            f"COPY {STAGING} ({', '.join(columns)}) FROM STDIN",
        )
    return upsert_sql(SEEN, ["id", "fingerprint"]), upsert_sql(STAGING, columns)


def write(batches: Sequence[tuple[str, Sequence[Sequence[object]]]]) -> None:
    """Each batch's values by its insert statement, all in one transaction; a batch with no
    statement or no values is skipped."""
    with transaction.atomic(), connection.cursor() as cursor:
        for insert, values in batches:
            if not (insert and values):
                continue
            if connection.vendor == "postgresql":
                # COPY: several times faster than executemany's INSERTs (bench/README.md).
                with cursor.cursor.copy(insert) as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                cursor.executemany(insert, values)  # type: ignore[arg-type]  # plain values


def drop() -> None:
    with connection.cursor() as cursor:
        for table in (STAGING, SEEN):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def stored_fingerprints(ids: list[object]) -> dict[object, str]:
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


def nothing_stored(ids: list[object]) -> dict[object, str]:
    return {}


# --- The swap ------------------------------------------------------------------------------


def upsert_sql(table: str, columns: list[str]) -> str:
    """INSERT ... ON CONFLICT (id) DO UPDATE, the same on SQLite and PostgreSQL: a customer
    listed twice (archived between the two listings) is staged once, as last listed."""
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column != "id")
    placeholders = ", ".join(["%s"] * len(columns))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


_CHANGED = "customer_index_changed"


def swap_into_index(run: SyncRun, *, first_sync: bool) -> None:
    """Apply the staged listing to the index: only the rows that differ are written. A
    staged row counts only when its fingerprint is the last-listed one: a customer listed
    twice may have been staged as first listed and then found unchanged as last listed."""
    index = IndexedCustomer._meta.db_table
    staged = (
        STAGING
        if first_sync
        else (
            f"(SELECT s.* FROM {STAGING} s JOIN {SEEN} k "  # noqa: S608
            "ON k.id = s.id AND k.fingerprint = s.fingerprint)"
        )
    )
    seen = STAGING if first_sync else SEEN
    columns = [str(field.column) for field in COLUMNS]
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
        vocabulary.update(words(name))
    IndexedNameWord.objects.all().delete()
    IndexedNameWord.objects.bulk_create(
        (IndexedNameWord(word=word[:255], length=len(word)) for word in sorted(vocabulary)),
        batch_size=2000,
        ignore_conflicts=True,
    )
