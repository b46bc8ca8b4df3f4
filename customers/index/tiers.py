"""A ranked text search read in tiers, each in name order and only as far as the page.

Ranking every match (the old way) sorts all of them: at 1,000,000 customers a name word
shared by 11,000-23,000 of them cost 70-140 ms, a misspelt one up to 460 ms at p99, most of
it reading those rows from the table (bench/README.md, issue 24). Here the ranks are tiers
read one after the other, each with its own index where one fits:

- exact IDs: a handful of equality look-ups (Metronome ID, Salesforce key, external ID,
  ingest alias);
- names starting with the search: a range of the name index, stopped at the page;
- everything else that matches, through the text index and sorted, read only when the page
  reaches past the tiers before it.

A tier's rows are in name order and the tiers are disjoint, so the pages are those of one
ORDER BY rank, name, id. The total is counted tier by tier up to the cap: a common name
prefix stops the count inside the name index ("more than 10,000").

Ranges of the name index are prefixes only where text sorts by code point: SQLite's BINARY
collation, and PostgreSQL databases whose collation is C or C.UTF-8 (`code_point_order`).
The search uses the tiers on such a PostgreSQL database (`in_use`); elsewhere it ranks
every match in one query, with the same ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet

from customers.index.keys import words
from customers.index.matching import (
    alias_is,
    exact_indexed,
    matching,
    name_has_every_word,
    names_containing_any,
    text_candidates,
)
from customers.models import IndexedCustomer

# Collations whose order is the code points' (for UTF-8, the bytes'): a prefix is a range.
_CODE_POINT_COLLATIONS = {"c", "posix", "c.utf-8", "c.utf8", "ucs_basic"}
_code_point_order_of: dict[str, bool] = {}
_NAME_ORDER = ("name_folded", "id")
_LAST_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def code_point_order() -> bool:
    """Whether the index's names sort by code point, so that the names starting with some
    text are one range of the name index. Asked once per database."""
    if connection.vendor == "sqlite":
        return True  # BINARY, the default collation
    if connection.vendor != "postgresql":
        return False
    name = str(connection.settings_dict["NAME"])
    if name not in _code_point_order_of:
        # From PostgreSQL 15 a database's default collation may come from ICU (from 17,
        # also the builtin provider, taken here as not code point): datcollate is then only
        # the libc setting, which text comparisons ignore. `CREATE DATABASE ... LC_COLLATE
        # 'C.UTF-8'` on a cluster whose template is ICU makes such a database: there a
        # zero-width space inside a name puts it in another prefix's range.
        with connection.cursor() as cursor:
            # The column has no collation of its own: the database's applies. Through JSON:
            # datlocprovider is NULL there before PostgreSQL 15 (always libc).
            cursor.execute(
                "SELECT datcollate, to_jsonb(d) ->> 'datlocprovider' FROM pg_database d "
                "WHERE datname = current_database()"
            )
            collation, provider = cursor.fetchone()
        _code_point_order_of[name] = (
            provider in (None, "c") and str(collation).lower() in _CODE_POINT_COLLATIONS
        )
    return _code_point_order_of[name]


def in_use() -> bool:
    """Whether ranked searches are read in tiers: on PostgreSQL whose names sort by code
    point. SQLite ranks every match in one query: its index holds about 100,000 customers,
    a common word's 1,200 matches sort in a few milliseconds, and the tiers' extra queries
    cost more than they save there (13 ms against 20 at p50, bench/README.md)."""
    return connection.vendor == "postgresql" and code_point_order()


def starting_with(prefix: str) -> Q:
    """Names starting with `prefix` as a range of the name index (in code point order):
    from the prefix itself up to, not including, the first text past every one of them."""
    after = _successor(prefix)
    starts = Q(name_folded__gte=prefix)
    return starts if after is None else starts & Q(name_folded__lt=after)


def _successor(text: str) -> str | None:
    """The least text greater than every text starting with `text` (None: there is none)."""
    while text:
        code = ord(text[-1]) + 1
        if code in _SURROGATES:  # not encodable: the next code point that is
            code = _SURROGATES.stop
        if code <= _LAST_CODE_POINT:
            return text[:-1] + chr(code)
        text = text[:-1]
    return None


# Past this many distinct words a search is ranked in one query: each word is a tier (a
# query of its own), and a search of dozens of short words reads the whole table in its last
# tier anyway, as the one query does.
MAX_WORD_TIERS = 8


def worth_tiers(folded: str) -> bool:
    """Whether a search's words are few enough to read in tiers (`MAX_WORD_TIERS`)."""
    return len(distinct_prefixes(words(folded))) <= MAX_WORD_TIERS


def distinct_prefixes(prefixes: Iterable[str]) -> list[str]:
    """The prefixes, sorted, without those that start with another of them (its range holds
    theirs): their ranges are then disjoint and in name order."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept


def match_tiers(
    customers: QuerySet[IndexedCustomer], q: str, folded: str
) -> list[QuerySet[IndexedCustomer]]:
    """The ranks of `matching.ranked_matches` as disjoint tiers: exact IDs, names starting
    with the search, for several words the names starting with each word (a range each,
    in name order) and holding the others, the other matches."""
    exact_ids = list(
        customers.filter(exact_indexed(q, folded) | alias_is(folded)).values_list("id", flat=True)
    )
    # Each tier is one filter() of one condition: a QuerySet built clause by clause cost
    # the ORM more than the database took to answer (issue 24, bench/README.md).
    not_exact = ~Q(id__in=exact_ids) if exact_ids else Q()
    starts = starting_with(folded)
    tiers = [
        IndexedCustomer.objects.filter(id__in=exact_ids),
        customers.filter(starts & not_exact),
    ]
    earlier = starts  # what the tiers before the rest hold, besides the exact IDs
    searched = words(folded)
    if len(searched) > 1:
        # The name index holds every column these read: a range is counted in the index.
        # The ranges of distinct prefixes are disjoint: a word's tier leaves out only the
        # names starting with the whole search.
        every_word = name_has_every_word(folded)
        for word in distinct_prefixes(searched):
            word_tier = starting_with(word) & every_word
            tiers.append(customers.filter(word_tier & ~starts & not_exact))
            earlier |= word_tier
    rest = matching(customers, q, folded).filter(~earlier & not_exact)
    return [*tiers, rest]


def typo_tiers(
    customers: QuerySet[IndexedCustomer], corrections: dict[str, tuple[str, ...]]
) -> list[QuerySet[IndexedCustomer]]:
    """One misspelt word's matches as tiers: the names starting with each of its
    corrections (a range each, in name order), then the names containing one."""
    (alternatives,) = corrections.values()
    prefixes = distinct_prefixes(alternatives)
    rest = customers.filter(names_containing_any(corrections))
    if (candidates := text_candidates([alternatives])) is not None:
        rest = rest.filter(candidates)
    for prefix in prefixes:
        rest = rest.exclude(starting_with(prefix))
    return [*(customers.filter(starting_with(prefix)) for prefix in prefixes), rest]


@dataclass(frozen=True, slots=True)
class TieredPage:
    ids: list[object]
    total: int
    exact: bool  # False: more than `total` (the cap) match
    has_more: bool


def tiered_page(
    tiers: Sequence[QuerySet[IndexedCustomer]], start: int, per_page: int, cap: int
) -> TieredPage:
    """Rows `start` to `start + per_page` of the tiers one after the other, each in name
    order, and the total up to `cap` (past it, `exact` is False). The tiers must be disjoint.
    One row more than the page tells whether another follows; a tier the page does not
    reach is only counted, and only while the count is under the cap.

    Each tier is built by the ORM once and then read in SQL written here: a search's page
    is one statement (every tier's first rows side by side) and its count another. A
    statement a tier and a count, each built by the ORM, cost a name search more than
    the database took to answer them (bench/README.md, issue 24)."""
    compiled = [_compiled(tier) for tier in tiers]
    wanted = per_page + 1
    if start == 0:
        ids, sizes = _first_page(compiled, wanted)
    else:
        ids, sizes = _later_page(compiled, start, wanted)
    has_more = len(ids) > per_page
    ids = ids[:per_page]
    if not has_more and (ids or start == 0):
        return TieredPage(ids, start + len(ids), True, False)  # the last page: no count
    total = _total(compiled, sizes, cap)
    if total is None or total > cap:
        return TieredPage(ids, cap, False, has_more)
    return TieredPage(ids, total, True, has_more)


@dataclass(frozen=True, slots=True)
class _Tier:
    """A tier as SQL: `SELECT id, name_folded` of its rows, in no order."""

    sql: str
    params: tuple[Any, ...]

    def ordered(self, limit: int, offset: int = 0) -> tuple[str, list[Any]]:
        sql = (
            f"SELECT id, name_folded FROM ({self.sql}) AS tier "  # noqa: S608 (the ORM's SQL)
            "ORDER BY name_folded, id LIMIT %s OFFSET %s"
        )
        return sql, [*self.params, limit, offset]

    def count(self, limit: int) -> tuple[str, list[Any]]:
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM ({self.sql}) AS tier LIMIT %s) AS counted"  # noqa: S608
        return sql, [*self.params, limit]


def _compiled(tier: QuerySet[IndexedCustomer]) -> _Tier | None:
    """The tier's SQL, or None for a tier that can hold no row (no exact IDs)."""
    rows = tier.order_by().values_list(*_NAME_ORDER)
    try:
        sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:
        return None
    return _Tier(sql, tuple(params))


def _first_page(
    tiers: Sequence[_Tier | None], wanted: int
) -> tuple[list[object], list[int | None]]:
    """The first `wanted` rows of the tiers one after the other. Every tier but the last is
    a range of an index (exact IDs, names starting with a word): their first `wanted` rows
    are read in one statement, and a tier with fewer has them all, so its size is known.
    The last, the text search, is read only when they leave room on the page: found through
    the text index and sorted, it costs the most."""
    ranges, last = tiers[:-1], tiers[-1]
    rows_of = _first_rows(ranges, wanted)
    ids: list[object] = []
    sizes: list[int | None] = []
    for rows in rows_of:
        sizes.append(len(rows) if len(rows) < wanted else None)
        ids += [customer_id for _, customer_id in rows[: wanted - len(ids)]]
    if len(ids) < wanted:
        room = wanted - len(ids)
        (rows,) = _first_rows([last], room)
        # Fewer rows than the room left: that is all of it. As many: it may hold more.
        sizes.append(len(rows) if len(rows) < room else None)
        ids += [customer_id for _, customer_id in rows]
    else:
        sizes.append(0 if last is None else None)
    return ids, sizes


def _first_rows(tiers: Sequence[_Tier | None], limit: int) -> list[list[tuple[str, UUID]]]:
    """Each tier's first `limit` rows (name, ID) in name order, in one statement."""
    parts: list[str] = []
    params: list[Any] = []
    for number, tier in enumerate(tiers):
        if tier is not None:
            sql, tier_params = tier.ordered(limit)
            # Only numbers and the ORM's SQL in it; the values are parameters.
            select = f"SELECT {number} AS tier_number, id, name_folded FROM ({sql}) AS t{number}"  # noqa: S608
            parts.append(select)
            params += tier_params
    rows_of: list[list[tuple[str, UUID]]] = [[] for _ in tiers]
    if parts:
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for number, customer_id, name in cursor.fetchall():
                rows_of[number].append((name, _as_uuid(customer_id)))
    # In name order as each tier was read: a union keeps no order of its own. Python orders
    # text by code point, as the tiers' databases do (`code_point_order`), and a UUID by its
    # bytes, as they order the IDs.
    return [sorted(rows) for rows in rows_of]


def _as_uuid(value: object) -> UUID:
    """An ID as read without the ORM: a UUID from PostgreSQL, 32 hex digits from SQLite."""
    return value if isinstance(value, UUID) else UUID(str(value))


def _later_page(
    tiers: Sequence[_Tier | None], start: int, wanted: int
) -> tuple[list[object], list[int | None]]:
    """Rows `start` to `start + wanted` of the tiers one after the other, a tier at a time:
    a deep page read side by side would read every tier up to its end."""
    offset = start
    ids: list[object] = []
    sizes: list[int | None] = [None] * len(tiers)
    with connection.cursor() as cursor:
        for number, tier in enumerate(tiers):
            if len(ids) == wanted:
                break
            if tier is None:
                sizes[number] = 0
                continue
            asked = wanted - len(ids)
            cursor.execute(*tier.ordered(asked, offset))
            got = [_as_uuid(customer_id) for customer_id, _ in cursor.fetchall()]
            if len(got) < asked:  # the tier ends within the page
                if got or offset == 0:
                    sizes[number] = offset + len(got)
                else:  # the page starts past this tier: how far it went
                    cursor.execute(*tier.count(offset))
                    sizes[number] = int(cursor.fetchone()[0])
                offset = max(0, offset - (sizes[number] or 0))
            else:
                offset = 0
            ids += got
    return ids, sizes


def _fence() -> str:
    """What keeps a subquery from being merged into the query around it."""
    return " LIMIT -1 OFFSET 0" if connection.vendor == "sqlite" else " OFFSET 0"


def _total(tiers: Sequence[_Tier | None], sizes: Sequence[int | None], cap: int) -> int | None:
    """The tiers' total, or None once it passes `cap`: the tiers of unknown size counted in
    one statement, each only while the tiers before it hold no more than `cap`, and only up
    to `cap + 1` (a common name prefix stops the count inside the name index)."""
    known = sum(size or 0 for size, tier in zip(sizes, tiers, strict=True) if tier is not None)
    unknown = [
        tier for size, tier in zip(sizes, tiers, strict=True) if size is None and tier is not None
    ]
    if known > cap:
        return None
    if not unknown:
        return known
    # Nested so each count sees those before it: SELECT c0, CASE WHEN known + c0 <= cap THEN
    # (count 1) END AS c1 FROM (SELECT (count 0) AS c0 ...). A CASE runs its subquery only
    # when it is taken; OFFSET 0 keeps the database from merging the levels, which would
    # evaluate a count once for each mention of it.
    sql, params = "", list[Any]()
    columns: list[str] = []
    for number, tier in enumerate(unknown):
        count_sql, count_params = tier.count(cap + 1)
        if number == 0:
            sql, params = f"SELECT ({count_sql}) AS c0", count_params
        else:
            so_far = " + ".join(["%s", *columns])
            level = (
                f"SELECT {', '.join(columns)}, CASE WHEN {so_far} <= %s "  # noqa: S608
                f"THEN ({count_sql}) END AS c{number} FROM ({sql}{_fence()}) AS level{number}"
            )
            sql, params = level, [known, cap, *count_params, *params]
        columns.append(f"c{number}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counts = cursor.fetchone()
    if any(count is None for count in counts):
        return None  # a count was not needed: those before it passed the cap
    return known + sum(int(count) for count in counts)
