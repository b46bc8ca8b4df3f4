"""The sync's tables and SQL: the temporary staging tables a run streams both listings
into, the batch writes (COPY on PostgreSQL), and the one-transaction swap of the staged rows
into the index. A run's order and its lock are `sync.py`'s."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator, Sequence

import msgspec
from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, Q

from customers.index.keys import words
from customers.index.rows import COLUMNS
from customers.index.typos import word_trigrams
from customers.models import IndexedCustomer, IndexedNameTrigram, IndexedNameWord, SyncRun

logger = logging.getLogger(__name__)

_ROWS_AS_JSON = msgspec.json.Encoder()

# Temporary tables: private to this run's connection, gone with it, and written without
# the journal and fsyncs of the main database (on SQLite they live in another file, so
# staging does not even hold the main database's write lock).
# Every listed customer's id and fingerprint, as last listed: what the index keeps.
SEEN = "customer_index_seen"
# The full rows of the customers whose fingerprint differs from the index's: what the swap
# writes. A resync where little changed builds and stages almost none of them.
STAGING = "customer_index_staging"
# SQLite's text index (FTS5, migration 0017), and the one a first sync fills while it stages,
# write by write, which the swap renames over it. Tokenising 100,000 customers into trigrams
# took 2.2-2.7 s of the swap, after the listing; this way it runs while the next pages are
# fetched (SQLite releases the GIL). A real table in the main database, so the rename can
# be part of the swap's transaction; searches never read it before that commits.
TEXT = "customer_index_fts"
TEXT_NEXT = "customer_index_fts_next"
# What the text index holds of an index (or staged) row, under the row's `text_key` as its
# rowid (migrations 0013 and 0017 hold a copy). Two columns, so that no trigram runs from
# the name into the aliases; searches ask the whole row (matching.fts_substring).
_TEXT_VALUES = (
    "name_folded, aliases_folded || external_id_folded || char(10) || custom_values_folded"
)


def create(*, first_sync: bool) -> None:
    drop()
    index = IndexedCustomer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} AS SELECT * FROM {index} WHERE 1 = 0")  # noqa: S608
        cursor.execute(
            f"CREATE TEMPORARY TABLE {SEEN} AS SELECT id, fingerprint FROM {index} WHERE 1 = 0"  # noqa: S608
        )
        if first_sync and connection.vendor == "sqlite":
            # Defined as the live one is, whatever its migration said.
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [TEXT])
            (definition,) = cursor.fetchone()
            cursor.execute(
                re.sub(rf'^(CREATE VIRTUAL TABLE\s+)"?{TEXT}"?', rf"\1{TEXT_NEXT}", definition)
            )
            # Filled a write at a time, FTS5 merges its segments at every fourth by default:
            # a third of the work. The swap sets the default back before the table goes live;
            # searches measured the same on either (4.2 ms a name query at 100,000).
            _set_automerge(cursor, TEXT_NEXT, _FILLING_AUTOMERGE)


# FTS5's `automerge` while a first sync fills the next text index, and its default.
_FILLING_AUTOMERGE = 16
_DEFAULT_AUTOMERGE = 4


def _set_automerge(cursor: CursorWrapper, table: str, segments: int) -> None:
    cursor.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('automerge', %s)", [segments])  # noqa: S608


def fill_text_next(cursor: CursorWrapper, after: int) -> int:
    """First sync on SQLite: the text-index entries of the rows staged after rowid `after`, each
    under its staged row's rowid, which the swap makes the row's `text_key` (and by which
    `finish` drops the entries of rows it drops); returns the last staged rowid. The staging
    table is only appended to until `finish`, so its rowids only grow."""
    cursor.execute(
        f"INSERT INTO {TEXT_NEXT} (rowid, name, other) "  # noqa: S608
        f"SELECT rowid, {_TEXT_VALUES} FROM {STAGING} WHERE rowid > %s",
        [after],
    )
    cursor.execute(f"SELECT coalesce(max(rowid), 0) FROM {STAGING}")  # noqa: S608
    last: int = cursor.fetchone()[0]
    return last


def finish(*, first_sync: bool) -> None:
    """Index the staged rows by id for the swap, keeping the last-listed row of a customer
    listed twice (archived between the two listings). Rows are appended without an index
    while staging: on SQLite an upsert into a unique index cost three times as much
    (bench/README.md), and COPY cannot upsert at all."""
    with connection.cursor() as cursor:
        for table in (STAGING, SEEN):
            create_index = f"CREATE UNIQUE INDEX {table}_id ON {table} (id)"
            try:
                # A customer listed twice is rare: the unique index finds out, and only
                # then are the earlier rows removed (looking every time cost 1 s of a
                # resync at 1,000,000 on PostgreSQL).
                with transaction.atomic():
                    cursor.execute(create_index)
            except IntegrityError:
                _keep_the_last_listed(cursor, table)
                cursor.execute(create_index)
            if connection.vendor == "postgresql" and not first_sync:
                # Temporary tables get no automatic statistics; the swap's joins need them.
                # A first sync's swap joins them only to an empty index: no plan to choose,
                # and sampling 100,000 full rows took 0.4 s.
                cursor.execute(f"ANALYZE {table}")


def _keep_the_last_listed(cursor: CursorWrapper, table: str) -> None:
    if connection.vendor == "postgresql":
        cursor.execute(
            f"DELETE FROM {table} a USING {table} b "  # noqa: S608
            "WHERE a.id = b.id AND a.ctid < b.ctid"
        )
        return
    cursor.execute(
        f"DELETE FROM {table} WHERE rowid NOT IN "  # noqa: S608
        f"(SELECT max(rowid) FROM {table} GROUP BY id)"
    )
    if table == STAGING and _exists(cursor, TEXT_NEXT):
        cursor.execute(
            f"DELETE FROM {TEXT_NEXT} WHERE rowid NOT IN (SELECT rowid FROM {STAGING})"  # noqa: S608
        )


def insert_statements() -> tuple[str, str]:
    """How a batch goes into the seen table and into the staging table: the full rows by
    COPY on PostgreSQL (several times faster than executemany's INSERTs), by executemany on
    SQLite; the seen pairs on SQLite as one JSON parameter. (On PostgreSQL the seen pairs go
    in with their comparison, `changed_in_batch`, and the first statement is not used.)"""
    columns = [str(field.column) for field in COLUMNS]
    return _insert_sql(SEEN, ["id", "fingerprint"]), _insert_sql(STAGING, columns)


def _insert_sql(table: str, columns: list[str]) -> str:
    if connection.vendor == "postgresql":
        return f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    if len(columns) <= _MOST_COLUMNS_FROM_JSON:
        # SQLite: the whole batch as one JSON array of rows, one parameter, taken apart by
        # SQLite in C without the GIL. executemany bound each value in Python, under the GIL
        # the listings' threads need: three times as long for the (id, fingerprint) pairs.
        # A wide row is parsed once per column (SQLite 3.40 keeps no parsed JSON between
        # calls), which made the staging table's 19 slower than executemany.
        values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
        return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} {_FROM_JSON}"
    placeholders = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608


_MOST_COLUMNS_FROM_JSON = 4
_FROM_JSON = "FROM json_each(%s)"


def insert(cursor: CursorWrapper, statement: str, values: Sequence[Sequence[object]]) -> None:
    """Rows of text, numbers and NULLs (as the row builders make them) into a staging table."""
    if not values:
        return
    if connection.vendor == "postgresql":
        with cursor.cursor.copy(statement) as copy:
            for value in values:
                copy.write_row(value)
    elif statement.endswith(_FROM_JSON):
        cursor.execute(statement, [_ROWS_AS_JSON.encode(values).decode()])
    else:
        cursor.executemany(statement, values)  # type: ignore[arg-type]  # plain values


def changed_in_batch(
    cursor: CursorWrapper, insert_batch: str, keys: Sequence[tuple[object, str]]
) -> set[object]:
    """Of a batch of (id, fingerprint) pairs, the ids (as the row builders make them) whose
    fingerprint the index does not have; every pair goes on to the seen table, and only the
    ids that differ come back to Python. Only the sync writes the index, one run at a time,
    so its fingerprints hold until this run's swap."""
    index = IndexedCustomer._meta.db_table
    if connection.vendor == "postgresql":
        # The pairs as arrays: a temporary table has no statistics, and the planner hashed
        # the whole index against it for every batch (0.6 s each at 1,000,000). Each array
        # sent as one comma-joined text (ids are UUIDs, fingerprints hex): as Python lists,
        # 2,000 elements each, a batch took 19 ms against 13 (at 1,000,000). The same
        # statement puts them on the seen table: a COPY of its own cost a round trip and a
        # Python call per pair, 0.2 s of a 1.3 s resync at 100,000.
        cursor.execute(
            "WITH b AS MATERIALIZED (SELECT * FROM unnest("  # noqa: S608
            "string_to_array(%s, ',')::uuid[], string_to_array(%s, ',')) AS b (id, fingerprint)), "
            f"seen AS (INSERT INTO {SEEN} (id, fingerprint) SELECT id, fingerprint FROM b) "
            f"SELECT b.id::text FROM b LEFT JOIN {index} i ON i.id = b.id "
            "WHERE i.id IS NULL OR i.fingerprint <> b.fingerprint",
            [
                ",".join([str(db_id) for db_id, _ in keys]),
                ",".join([fingerprint for _, fingerprint in keys]),
            ],
        )
        return {row[0] for row in cursor.fetchall()}
    # Straight into the seen table, which is only appended to until `finish`: the batch is
    # the rows past its last rowid. (Through a table of its own, copied over and emptied for
    # every batch, the comparison cost twice the SQLite time.)
    cursor.execute(f"SELECT coalesce(max(rowid), 0) FROM {SEEN}")  # noqa: S608
    (before,) = cursor.fetchone()
    insert(cursor, insert_batch, keys)
    cursor.execute(
        f"SELECT b.id FROM {SEEN} b LEFT JOIN {index} i ON i.id = b.id "  # noqa: S608
        "WHERE b.rowid > %s AND (i.id IS NULL OR i.fingerprint <> b.fingerprint)",
        [before],
    )
    return {row[0] for row in cursor.fetchall()}


def drop() -> None:
    with connection.cursor() as cursor:
        for table in (STAGING, SEEN):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        # Left by a first sync that did not reach its swap (or died before this).
        if connection.vendor == "sqlite" and _exists(cursor, TEXT_NEXT):
            cursor.execute(f"DROP TABLE {TEXT_NEXT}")


def _exists(cursor: CursorWrapper, table: str) -> bool:
    cursor.execute("SELECT 1 FROM sqlite_master WHERE name = %s", [table])
    return cursor.fetchone() is not None


# --- The swap ------------------------------------------------------------------------------


_CHANGED = "customer_index_changed"


def swap_into_index(run: SyncRun, *, first_sync: bool) -> bool:
    """Apply the staged listing to the index: only the rows that differ are written. A
    staged row counts only when its fingerprint is the last-listed one: a customer listed
    twice may have been staged as first listed and then found unchanged as last listed.
    Returns whether any row was added, changed or removed."""
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
            return False
        text_keys = ""  # the INSERT's `text_key`, on SQLite
        if connection.vendor == "sqlite":
            if first_sync:  # the staged rowid, under which fill_text_next indexed the row
                text_keys = ", s.rowid"
            else:  # new ones after every key in use; a changed row keeps its own
                cursor.execute(
                    f"DELETE FROM {TEXT} WHERE rowid IN (SELECT text_key FROM {index} "  # noqa: S608
                    f"WHERE id IN (SELECT id FROM {_CHANGED} WHERE NOT added))"
                )
                cursor.execute(f"SELECT coalesce(max(text_key), 0) FROM {index}")  # noqa: S608
                text_keys = f", {int(cursor.fetchone()[0])} + row_number() OVER ()"
        cursor.execute(
            f"DELETE FROM {index} WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {seen} k WHERE k.id = {index}.id)"
        )
        run.deleted = cursor.rowcount
        # PostgreSQL, first sync: the table's rows laid out in name order. A name search
        # reads the rows its trigram index finds from the table, and most of a common
        # word's are names starting with it: side by side on a few pages instead of one
        # page each (name searches 0.75-0.85x at 100,000, bench/README.md). SQLite reads
        # them through a memory map and gained nothing measurable.
        in_name_order = first_sync and connection.vendor == "postgresql"
        with _secondary_indexes_built_after(cursor, enabled=first_sync):
            # `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
            cursor.execute(
                f"INSERT INTO {index} ({column_list}{', text_key' if text_keys else ''}) "  # noqa: S608
                f"SELECT {column_list}{text_keys} FROM {staged} AS s WHERE true "
                f"{'ORDER BY s.name_folded, s.id ' if in_name_order else ''}"
                f"ON CONFLICT (id) DO UPDATE SET {updates} "
                f"WHERE {index}.fingerprint <> excluded.fingerprint"
            )
        cursor.execute(f"SELECT count(*) FROM {_CHANGED} WHERE added")  # noqa: S608
        run.inserted = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {_CHANGED} WHERE NOT added")  # noqa: S608
        run.updated = cursor.fetchone()[0] - run.deleted
        if connection.vendor == "sqlite":
            started = time.monotonic()
            if first_sync:  # filled while staging: the whole text index of an empty index
                _set_automerge(cursor, TEXT_NEXT, _DEFAULT_AUTOMERGE)
                cursor.execute(f"DROP TABLE {TEXT}")
                cursor.execute(f"ALTER TABLE {TEXT_NEXT} RENAME TO {TEXT}")
            else:
                cursor.execute(
                    f"INSERT INTO {TEXT} (rowid, name, other) SELECT text_key, {_TEXT_VALUES} "  # noqa: S608
                    f"FROM {index} WHERE id IN (SELECT id FROM {_CHANGED})"
                )
            logger.info("Customer index: text index updated in %.1fs", time.monotonic() - started)
            # Statistics, so the planner walks a sort's index for a filtered page rather
            # than sort a filter's matches (sampled ones, analysis_limit, misled it).
            cursor.execute(f"ANALYZE {index}")
        else:
            # Fresh statistics, or the planner takes a just-filled index for empty and
            # scans the table instead of using the trigram index.
            cursor.execute(f"ANALYZE {index}")
        cursor.execute(f"DROP TABLE {_CHANGED}")
    return True


@contextlib.contextmanager
def _secondary_indexes_built_after(cursor: CursorWrapper, *, enabled: bool) -> Iterator[None]:
    """Into an empty index (a first sync), insert every row with only the primary key in
    place and build the other indexes (the trigram GIN index, the sorts') once afterwards,
    from their own definitions, in the same transaction: built in one pass they cost a
    fraction of being kept up row by row (bench/README.md)."""
    if not enabled:
        yield
        return
    index = IndexedCustomer._meta.db_table
    if connection.vendor == "postgresql":
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname "
            "NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [index, index],
        )
    else:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL",
            [index],
        )
    definitions = cursor.fetchall()
    for name, _ in definitions:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    for _, definition in definitions:
        cursor.execute(definition)


def _false() -> str:
    return "0" if connection.vendor == "sqlite" else "false"


# Words of a name the typo dictionary takes: a real name has a handful; a hostile one of
# 5,000 random words made a sync spend 400 s here (words past these are still found by
# the name search, only not corrected when misspelt).
MAX_NAME_WORDS = 20
# Words written (or removed) per transaction: on SQLite a write transaction holds every
# other writer (a login's session) off, so none is held for long.
NAME_WORDS_PER_TRANSACTION = 2000


def rebuild_name_words() -> None:
    """The dictionary of name words and their trigrams (`typos.py`), brought up to date
    after a swap, outside its transaction: only the words that came or went are written,
    in short transactions. Until it finishes, corrections read the previous dictionary."""
    started = time.monotonic()
    vocabulary: set[str] = set()
    names = IndexedCustomer.objects.values_list("name_folded", flat=True)
    for name in names.iterator(chunk_size=5000):
        vocabulary.update(word[:255] for word in words(name)[:MAX_NAME_WORDS])
    stored = set(IndexedNameWord.objects.values_list("word", flat=True))
    gone = sorted(stored - vocabulary)
    new = sorted(vocabulary - stored)
    for start in range(0, len(gone), NAME_WORDS_PER_TRANSACTION):
        batch = gone[start : start + NAME_WORDS_PER_TRANSACTION]
        with transaction.atomic():
            for part in range(0, len(batch), 500):  # within SQLite's parameter limit
                IndexedNameTrigram.objects.filter(word__in=batch[part : part + 500]).delete()
                IndexedNameWord.objects.filter(word__in=batch[part : part + 500]).delete()
    for start in range(0, len(new), NAME_WORDS_PER_TRANSACTION):
        batch = new[start : start + NAME_WORDS_PER_TRANSACTION]
        with transaction.atomic():
            IndexedNameWord.objects.bulk_create(
                [IndexedNameWord(word=word, length=len(word)) for word in batch]
            )
            IndexedNameTrigram.objects.bulk_create(
                [
                    IndexedNameTrigram(trigram=trigram, word=word)
                    for word in batch
                    for trigram in word_trigrams(word)
                ],
                batch_size=2000,
            )
    logger.info("Customer index: name words rebuilt in %.1fs", time.monotonic() - started)


def vacuum_written_tables() -> None:
    """On PostgreSQL, VACUUM the index and the typo dictionary after a sync wrote to them.
    Until a table's pages are marked all-visible, an index-only scan still reads every row
    from the table: a page 200 deep by name read 10,001 rows in 12 ms, and 2.5 ms once
    vacuumed. Autovacuum gets there within a minute or so; this takes 70 ms after a first
    sync of 100,000 customers, and skips the pages already marked. VACUUM cannot run in a
    transaction, so it is left to autovacuum when the sync runs inside one (a test's)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    started = time.monotonic()
    with connection.cursor() as cursor:
        for model in (IndexedCustomer, IndexedNameWord, IndexedNameTrigram):
            # SKIP_LOCKED: an autovacuum already on the table (one against wraparound is
            # never cancelled) is doing this work; the sync need not wait for it.
            cursor.execute(f"VACUUM (SKIP_LOCKED) {model._meta.db_table}")
    logger.info("Customer index: vacuumed in %.1fs", time.monotonic() - started)


def customers_by_state() -> tuple[int, int]:
    """(active, archived) customers in the index, counted once after a swap that changed it:
    the plain list's "of about N" then costs a page nothing."""
    counts = IndexedCustomer.objects.aggregate(
        active=Count("pk", filter=Q(archived_at__isnull=True)),
        archived=Count("pk", filter=Q(archived_at__isnull=False)),
    )
    return counts["active"], counts["archived"]
