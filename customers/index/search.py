"""Search over the synced customer index: what Metronome's API cannot do (names, typos, the
filters it lacks, sorting, true totals), answered from the dashboard's own database.

The index finds; the API tells the truth: `search` returns customer IDs in order, and the
page re-reads those customers live from Metronome.

Ranking: an exact ID (Metronome, Salesforce, external ID or ingest alias), then a name
starting with the search, then the other matches (an alias or external ID starting with it,
names containing every word of it in any order, a custom field value containing it), each
rank by name; only when nothing matched, names whose words are close misspellings of the
searched ones, those starting with one first. What matches is `matching.py`; the ranks are
read as tiers, each only as far as the page (`tiers.py`), where names sort by code point.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Generator, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import BooleanField, Count, QuerySet, TextField, Value, Window
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Concat

from customers.index import tiers
from customers.index.keys import MAX_INDEXED_TEXT, fold, salesforce_key, words
from customers.index.matching import (
    may_match,
    parse_uuid,
    ranked_matches,
    typo_matches,
    typo_rank,
)
from customers.index.tiers import match_tiers, tiered_page, typo_tiers
from customers.index.typos import corrections_of
from customers.models import IndexedCustomer, SyncRun

MAX_PER_PAGE = 1000
# Totals are counted up to this: past it the page says "more than 10,000" rather than count
# a million rows for every page (issue 24).
TOTAL_CAP = 10_000


# --- The query -----------------------------------------------------------------------------


class Billable(StrEnum):
    BILLABLE = "billable"
    UNBILLABLE = "unbillable"
    NOT_SET = "not_set"


class Archived(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    ALL = "all"


class Sort(StrEnum):
    NAME = "name"
    NAME_DESC = "-name"
    CREATED = "created"
    CREATED_DESC = "-created"
    UPDATED = "updated"
    UPDATED_DESC = "-updated"


_SORT_COLUMNS = {
    Sort.NAME: ("name_folded", "id"),
    Sort.NAME_DESC: ("-name_folded", "-id"),
    Sort.CREATED: ("created_at", "id"),
    Sort.CREATED_DESC: ("-created_at", "-id"),
    Sort.UPDATED: ("updated_at", "id"),
    Sort.UPDATED_DESC: ("-updated_at", "-id"),
}


@dataclass(frozen=True, slots=True)
class IndexFilters:
    """The filters, all combined with AND. Dates are whole UTC days, both ends included."""

    archived: Archived = Archived.ACTIVE
    billable: frozenset[Billable] = frozenset()  # any of these; empty: any status
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    no_salesforce_id: bool = False
    custom_field: tuple[str, str] | None = None  # key, value: an exact match
    customer_ids: tuple[str, ...] = ()  # Metronome IDs; malformed ones match nothing
    salesforce_account_ids: tuple[str, ...] = ()  # 15 or 18 characters, any case
    ingest_alias: str = ""  # exact, as the API's filter


@dataclass(frozen=True, slots=True)
class IndexResult:
    # The number of matches, or TOTAL_CAP when there are more than that (`total_exact`
    # False): counting further would read every match of a large account on every page.
    total: int
    customer_ids: tuple[str, ...]  # this page's, in order
    page: int
    per_page: int
    # True when nothing matched exactly and these are close misspellings of the search.
    corrected: bool = False
    corrections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    total_exact: bool = True
    # Whether another match follows this page's last (known from one row more).
    has_more: bool = False

    @property
    def total_shown(self) -> str:
        return f"{self.total:,}" if self.total_exact else f"more than {TOTAL_CAP:,}"

    @property
    def page_count(self) -> int:
        """The pages the total fills; past the cap, at least one more than this page
        while matches follow it."""
        pages = max(1, math.ceil(self.total / self.per_page))
        if not self.total_exact:
            pages = max(pages, self.page + 1 if self.has_more else self.page)
        return pages

    @property
    def first_row(self) -> int:
        """1-based number of the page's first row (0 when the page is empty)."""
        return (self.page - 1) * self.per_page + 1 if self.customer_ids else 0

    @property
    def last_row(self) -> int:
        return (self.page - 1) * self.per_page + len(self.customer_ids)


def search(
    q: str = "",
    *,
    filters: IndexFilters | None = None,
    sort: Sort | None = None,
    page: int = 1,
    per_page: int = 50,
) -> IndexResult:
    """One page of the customers matching `q` and `filters`, with the total (exact up to
    TOTAL_CAP).

    Without `sort`, a search is ordered by rank then name, and no search by name. A page
    past the end is empty (the total says how far it goes).
    """
    if page < 1:
        raise ValueError(f"page must be 1 or more, got {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}, got {per_page}")
    filters = filters or IndexFilters()
    filtered = _filtered(filters)
    folded = fold(q)
    order: tuple[str, ...] = _SORT_COLUMNS[sort or Sort.NAME]
    if sort is None and folded:
        order = ("rank", *order)
    start = (page - 1) * per_page
    corrections: dict[str, tuple[str, ...]] = {}
    if folded:
        # Ranked, in tiers on PostgreSQL where names sort by code point (tiers.py);
        # otherwise, or in a column's order, every match ranked in one query; neither when
        # the text index shows there is none to rank.
        in_tiers = sort is None and tiers.in_use() and tiers.worth_tiers(folded)
        if not may_match(q, folded):
            found = _Found([], 0, True, False)  # a misspelling, most likely: to its corrections
        elif in_tiers:
            found = _in_tiers(match_tiers(filtered, q, folded), start, per_page)
        else:
            found = _text_page(ranked_matches(filtered, q, folded), order, start, per_page)
        if not found.ids and (start == 0 or found.total == 0):
            corrections = corrections_of(words(folded))
            if corrections and in_tiers and len(corrections) == 1:
                found = _in_tiers(typo_tiers(filtered, corrections), start, per_page)
            elif corrections:
                # Several words: their trigrams together narrow to few rows, which the
                # ranges of each word's corrections would not.
                matches = typo_matches(filtered, corrections).annotate(rank=typo_rank(corrections))
                found = _text_page(matches, order, start, per_page)
    else:
        # Only the state filter: the total counts entries of the sort's own index.
        count_in_order = filters == IndexFilters(archived=filters.archived)
        found = _page(filtered, order, start, per_page, count_in_order)
    return IndexResult(
        total=found.total,
        customer_ids=tuple(str(customer_id) for customer_id in found.ids),
        page=page,
        per_page=per_page,
        corrected=bool(corrections),
        corrections=corrections,
        total_exact=found.exact,
        has_more=found.has_more,
    )


def iter_ids(
    q: str = "",
    *,
    filters: IndexFilters | None = None,
    sort: Sort | None = None,
    chunk_size: int = 2000,
) -> Generator[str, None, None]:
    """Every match of `search`, in its order: the CSV export's source. Every match is read
    before the first is given, from one query, and kept as 16 bytes (1.6 MB at 100,000, 16 MB
    at 1,000,000): one state of the index however long the export runs, so a sync's swap
    during it neither repeats nor skips a row (pages read one by one would shift under it),
    no match is read twice (page N with OFFSET reads every row before it again), and nothing
    is held open in the database across the export's minutes of API calls."""
    packed = _matching_ids(q, filters or IndexFilters(), sort, chunk_size)
    for start in range(0, len(packed), UUID_BYTES):
        yield str(UUID(bytes=bytes(packed[start : start + UUID_BYTES])))


UUID_BYTES = 16


def _matching_ids(q: str, filters: IndexFilters, sort: Sort | None, chunk_size: int) -> bytearray:
    filtered = _filtered(filters)
    folded = fold(q)
    order: tuple[str, ...] = _SORT_COLUMNS[sort or Sort.NAME]
    if not folded:
        return _read_ids(filtered, order, chunk_size)
    if sort is None:
        order = ("rank", *order)
    else:
        filtered, order = _sorted_after_matching(filtered, order)
    packed = _read_ids(ranked_matches(filtered, q, folded), order, chunk_size)
    if not packed and (corrections := corrections_of(words(folded))):
        typos = typo_matches(filtered, corrections).annotate(rank=typo_rank(corrections))
        packed = _read_ids(typos, order, chunk_size)
    return packed


def _read_ids(
    matches: QuerySet[IndexedCustomer], order: tuple[str, ...], chunk_size: int
) -> bytearray:
    # Fetched in chunks (flat memory while reading) and read to its end at once.
    packed = bytearray()
    ordered = matches.order_by(*order).values_list("id", flat=True)
    with _cursor_in_its_transaction():
        for customer_id in ordered.iterator(chunk_size=chunk_size):
            packed += customer_id.bytes
    return packed


def _cursor_in_its_transaction() -> AbstractContextManager[object]:
    """Where `QuerySet.iterator()` reads in: on PostgreSQL, a transaction, so that its
    server-side cursor is not declared WITH HOLD. A held cursor outlives its transaction,
    which PgBouncer in transaction mode (docs/configuration.md) cannot follow, and the server
    copies its whole result when it is declared. On SQLite, nothing: one statement is its
    own snapshot there, and a transaction takes the write lock (IMMEDIATE, settings), which
    a read has no reason to hold a sync up with."""
    return transaction.atomic() if connection.vendor == "postgresql" else nullcontext()


def exact_name_matches(q: str, *, archived: Archived, limit: int = 20) -> list[str]:
    """The IDs of customers in `archived` whose name is `q` exactly (folded), by name: the
    search box shows them whatever the toggle."""
    folded = fold(q)
    if not folded:
        return []
    customers = _filtered(IndexFilters(archived=archived)).filter(name_folded=folded)
    return [
        str(i) for i in customers.order_by("name_folded", "id").values_list("id", flat=True)[:limit]
    ]


def indexed_ids(customer_ids: Sequence[str]) -> set[str]:
    """Which of `customer_ids` the index holds."""
    parsed = [found for raw in customer_ids if (found := parse_uuid(raw))]
    return {
        str(i) for i in IndexedCustomer.objects.filter(id__in=parsed).values_list("id", flat=True)
    }


@dataclass(frozen=True, slots=True)
class _Found:
    ids: Sequence[object]
    total: int
    exact: bool
    has_more: bool


def _page(
    matches: QuerySet[IndexedCustomer],
    order: tuple[str, ...],
    start: int,
    per_page: int,
    count_in_order: bool,
) -> _Found:
    """A page of filtered customers in an indexed order: the page walks the sort's index
    (one row more tells whether another follows), and the total is counted only when the
    page does not tell it, and then only up to TOTAL_CAP + 1."""
    ordered = matches.order_by(*order)
    ids = list(ordered.values_list("id", flat=True)[start : start + per_page + 1])
    has_more = len(ids) > per_page
    ids = ids[:per_page]
    if not has_more and (ids or start == 0):
        return _Found(ids, start + len(ids), True, False)  # the last page: no count needed
    # Ordered, a count of the state filter alone reads the sort's index, not the table; with
    # other filters the database picks the index that narrows best.
    counted = (ordered if count_in_order else matches.order_by()).values("id")
    total = counted[: TOTAL_CAP + 1].count()
    if total > TOTAL_CAP:
        return _Found(ids, TOTAL_CAP, False, has_more)
    return _Found(ids, total, True, has_more)


def _text_page(
    matches: QuerySet[IndexedCustomer], order: tuple[str, ...], start: int, per_page: int
) -> _Found:
    """A page of a text search. Ranked (`order` starts with the rank), the database gathers
    every match to sort them anyway, so one query returns the page and, counted over the
    same matches, the exact total. In a column's order it is a page and a capped count, as
    for filters: with COUNT(*) OVER () PostgreSQL walked the whole sort index, taking the
    page's LIMIT for one it could stop early (4.4 s at 1,000,000 customers)."""
    if order[0] != "rank":
        return _page(*_sorted_after_matching(matches, order), start, per_page, False)
    rows = list(
        matches.annotate(_total=Window(Count("id")))
        .order_by(*order)
        .values_list("id", "_total")[start : start + per_page]
    )
    if rows:
        total = int(rows[0][1])
        return _Found([row[0] for row in rows], total, True, start + len(rows) < total)
    if start == 0:
        return _Found([], 0, True, False)
    return _page(matches, order, start, per_page, count_in_order=False)


def _sorted_after_matching(
    matches: QuerySet[IndexedCustomer], order: tuple[str, ...]
) -> tuple[QuerySet[IndexedCustomer], tuple[str, ...]]:
    """A text search by name, sorted by the name as an expression, which no index provides:
    PostgreSQL otherwise walked the name index from one end, reading each row to test it
    for the search (0.8-5 s at 1,000,000 customers for a common word, bench/README.md).
    Found through the text index and sorted, it reads only the matches."""
    if order[0].lstrip("-") != "name_folded":
        return matches, order
    descending = "-" if order[0].startswith("-") else ""
    unindexed = matches.annotate(_name=Concat("name_folded", Value("")))
    return unindexed, (f"{descending}_name", *order[1:])


def _in_tiers(ranks: Sequence[QuerySet[IndexedCustomer]], start: int, per_page: int) -> _Found:
    page = tiered_page(ranks, start, per_page, TOTAL_CAP)
    return _Found(page.ids, page.total, page.exact, page.has_more)


def last_successful_sync() -> SyncRun | None:
    """The sync the index is from: "Index updated 4 min ago" is its `finished_at`. None
    means no sync has run, and the page should say to run `manage.py sync_customers`."""
    return SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED).first()


def plausible_customer_count() -> int | None:
    """The most customers one listing of the whole account can plausibly hold, a ceiling for
    the loops that read it (export, sync): the last sync's count times PAGING_HEADROOM, and
    1,000 more for a small account that just grew. None before the first sync: then only
    PAGING_MAX_ROWS bounds them."""
    last = last_successful_sync()
    if last is None:
        return None
    return math.ceil(last.seen * settings.PAGING_HEADROOM) + 1000


# Keys given a column of their own in the CSV and offered by the column chooser: a
# spreadsheet holds 16,384 columns, and a hostile account's 90,000 keys made a 21 MB
# chooser page and a CSV Excel cuts short. The most used are kept.
MAX_CUSTOM_FIELD_KEYS = 200
CUSTOM_FIELD_KEYS_CACHE_SECONDS = 24 * 3600


# The keys beyond those offered that are remembered, so the chooser can keep a chosen rare
# key without asking the database; past this many (a hostile account's), any well-formed key
# chosen is kept, as the page and the CSV keep it.
MAX_KEYS_REMEMBERED = 10_000


class _CustomFieldKeys(NamedTuple):
    offered: tuple[str, ...]  # the most used, sorted
    left_out: int
    others: frozenset[str] | None  # the keys left out; None: too many to remember


def custom_field_keys() -> tuple[str, ...]:
    """The custom-field keys of the indexed customers, sorted: the CSV export gives each its
    own column (a stream cannot learn keys late), and the column chooser offers each. At
    most the MAX_CUSTOM_FIELD_KEYS most used; the export's custom_fields column holds every
    field whatever its key."""
    return _custom_field_keys().offered


def custom_field_keys_left_out() -> int:
    """How many keys `custom_field_keys` leaves out, being used less than those it gives."""
    return _custom_field_keys().left_out


def custom_field_keys_in_use(names: Iterable[str]) -> list[str]:
    """Those of `names` that some indexed customer has as a custom-field key, sorted: a
    link or a saved view may hold a key used too little to be among `custom_field_keys`.
    Read from the cache, never a query a name (a link may name 30)."""
    keys = _custom_field_keys()
    every = keys.others
    return sorted(
        name for name in set(names) if name in keys.offered or every is None or name in every
    )


def _custom_field_keys() -> _CustomFieldKeys:
    """Read once per sync and kept in the cache under that sync's ID; nothing before the
    first sync."""
    last = last_successful_sync()
    if last is None:
        return _CustomFieldKeys((), 0, frozenset())
    key = f"customer-index:custom-field-keys:v3:{last.pk}"
    known: _CustomFieldKeys | None = cache.get(key)
    if known is None:
        used: collections.Counter[str] = collections.Counter()
        every_fields = IndexedCustomer.objects.values_list("custom_fields", flat=True)
        with _cursor_in_its_transaction():
            for fields in every_fields.iterator(chunk_size=2000):
                if isinstance(fields, dict):
                    used.update(str(name) for name in fields)
        # Ties broken by the key, so every worker and every download keeps the same ones.
        ranked = [name for name, _ in sorted(used.items(), key=lambda item: (-item[1], item[0]))]
        kept, others = ranked[:MAX_CUSTOM_FIELD_KEYS], ranked[MAX_CUSTOM_FIELD_KEYS:]
        known = _CustomFieldKeys(
            tuple(sorted(kept)),
            len(others),
            frozenset(others) if len(others) <= MAX_KEYS_REMEMBERED else None,
        )
        cache.set(key, known, CUSTOM_FIELD_KEYS_CACHE_SECONDS)
    return known


# --- Filters -------------------------------------------------------------------------------


def _filtered(filters: IndexFilters) -> QuerySet[IndexedCustomer]:
    customers = IndexedCustomer.objects.all()
    if filters.archived is Archived.ACTIVE:
        customers = customers.filter(archived_at__isnull=True)
    elif filters.archived is Archived.ARCHIVED:
        customers = customers.filter(archived_at__isnull=False)
    if filters.billable:
        # The index stores "not set" as "".
        statuses = ["" if b is Billable.NOT_SET else b.value for b in filters.billable]
        customers = customers.filter(billable_status__in=statuses)
    for column, start, end in (
        ("created_at", filters.created_from, filters.created_to),
        ("updated_at", filters.updated_from, filters.updated_to),
    ):
        if start is not None:
            customers = customers.filter(**{f"{column}__gte": _day_start(start)})
        # The form keeps days far from date.max, whose next day does not exist.
        if end is not None and end < date.max:
            customers = customers.filter(**{f"{column}__lt": _day_start(end + timedelta(days=1))})
    if filters.no_salesforce_id:
        customers = customers.filter(salesforce_account_id="")
    if filters.custom_field is not None:
        customers = _with_custom_field(customers, *filters.custom_field)
    if filters.customer_ids:
        customers = customers.filter(
            id__in=[parsed for raw in filters.customer_ids if (parsed := parse_uuid(raw))]
        )
    if filters.salesforce_account_ids:
        customers = customers.filter(
            salesforce_key__in=[
                key for raw in filters.salesforce_account_ids if (key := salesforce_key(raw))
            ]
        )
    if filters.ingest_alias:
        # Cut as the stored aliases are (keys.MAX_INDEXED_TEXT).
        alias = fold(filters.ingest_alias)[:MAX_INDEXED_TEXT]
        customers = customers.filter(aliases_folded__contains=f"\n{alias}\n")
    return customers


def _with_custom_field(
    customers: QuerySet[IndexedCustomer], key: str, value: str
) -> QuerySet[IndexedCustomer]:
    """The customers whose custom field `key` is exactly `value`."""
    if connection.vendor == "sqlite":
        # Compared as text, key and value. Django writes the key into a JSON path as
        # json.dumps does, "F\u00e4lligkeit" for "Fälligkeit", and SQLite's path reader does
        # not decode the escape: a key with an accent matched no customer.
        table = IndexedCustomer._meta.db_table
        has_value = RawSQL(  # noqa: S611 (key and value bound as parameters)
            f'EXISTS (SELECT 1 FROM json_each("{table}"."custom_fields") '  # noqa: S608
            "WHERE json_each.key = %s AND json_each.type = 'text' AND json_each.value = %s)",
            (key, value),
            output_field=BooleanField(),
        )
        return customers.filter(has_value)
    # Cast: compared as a KeyTextTransform, the value would be taken for JSON.
    custom_value = Cast(KeyTextTransform(key, "custom_fields"), TextField())
    return customers.annotate(_custom_value=custom_value).filter(_custom_value=value)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
