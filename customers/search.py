"""Searching by pasted IDs: lookups, the match report, and the page cut from them.

Metronome takes at most 100 values per filter and ANDs its filters, and a person may paste
up to 1,000 Salesforce IDs and 1,000 customer IDs. So a search with pasted IDs is answered
here, not by one API call: each pasted list is looked up on its own, in batches, in both the
Active and the Archived state (the match report needs both), all through one bounded thread
pool (customers/lookups.py). Customer IDs go 100 to a call. A Salesforce ID goes out in
every form Metronome may store it in (`SalesforceId.wire_values`: its 18- and 15-character
forms, so 50 pasted IDs to a call) and the customers found are matched back to the pasted
IDs by their stored ID's 18-character key (`salesforce.key_for_stored`). While the customer
index is recent, an ID it knows is asked only in the state and the form it knows, and the
answers are checked against it (customers/lookups.py `look_up`). The page shown is
cut from the lookups of the state the toggle shows (intersected locally when both lists were
pasted), so its cursor is a plain offset: the query itself already travels in the URL. The
lookups' result is cached for a short while (`SEARCH_CACHE_SECONDS`), so the later pages of
a search make no API call.

A search without pasted IDs is one `GET /v1/customers` with Metronome's own cursor; its
pages are cached for `API_PAGE_CACHE_SECONDS` (keyed by the query, limit and cursor, never
by person: everyone who may view customers sees the same ones), so Previous, Back and a
colleague opening the same link make no call. `refresh=True` skips both caches.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache

from customers import after_response, lookups, salesforce
from customers.index.known_ids import known_ids
from customers.lookups import (  # the match report's types, read from here by the page
    MAX_LOOKUP_THREADS,
    MatchReport,
    OtherForm,
    SharedId,
)
from customers.metronome import (
    MAX_PAGE_SIZE,
    Customer,
    CustomerPage,
    CustomerQuery,
    InvalidCursor,
    MetronomeClient,
)
from customers.salesforce import Reading, SalesforceId

__all__ = [
    "MAX_LOOKUP_THREADS",
    "MatchReport",
    "MatchRow",
    "OtherForm",
    "SearchPage",
    "SharedId",
    "exact_id_matches",
    "is_paged_by_metronome",
    "iter_pages",
    "match_rows",
    "read_salesforce_ids",
    "search",
]

# An offset cursor is digits only; anything longer is not one of ours.
MAX_OFFSET_DIGITS = 9


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a search, the cursor of the next (None on the last page), and, when IDs
    were pasted, their match report and how many customers the whole search holds."""

    customers: tuple[Customer, ...]
    next_cursor: str | None
    report: MatchReport | None
    total: int | None = None
    # The cursor pointed past the last match (a link of another search, or of this one
    # before its matches changed): this is the search's first page instead.
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class _IdSearch:
    """What the lookups of one pasted-ID search found: cached between its pages."""

    matches: tuple[Customer, ...]  # every customer the page shows, in a stable order
    report: MatchReport


def search(
    client: MetronomeClient,
    query: CustomerQuery,
    *,
    limit: int,
    cursor: str | None = None,
    salesforce_ids: Sequence[SalesforceId] | None = None,
    refresh: bool = False,
    pasted_order: bool = False,
) -> SearchPage:
    """One page of customers for the customers page. `cursor` is the previous page's
    `next_cursor`; a cursor that does not belong to the search raises `InvalidCursor`.
    `salesforce_ids` are the query's Salesforce IDs as pasted (see `read_salesforce_ids`);
    `refresh` asks Metronome again instead of answering from the cache; `pasted_order`
    orders a pasted-ID search's rows as their IDs were pasted (else by batch, each batch in
    Metronome's order: creation)."""
    if not query.has_id_filters:
        page = _cached_page(client, query, limit=limit, cursor=cursor, refresh=refresh)
        return SearchPage(page.customers, page.next_page, None)
    offset = _offset(cursor)
    pasted = read_salesforce_ids(query, salesforce_ids)
    found = _cached_id_search(client, query, pasted, refresh=refresh)
    matches = _in_paste_order(found.matches, query, pasted) if pasted_order else found.matches
    # Past the last match, an empty page would read as "nothing matched": the first page
    # instead, from the lookups just made (asking again would repeat every call).
    restarted = bool(offset) and offset >= len(matches)
    offset = 0 if restarted else offset
    end = offset + limit
    return SearchPage(
        customers=matches[offset:end],
        next_cursor=str(end) if end < len(matches) else None,
        report=found.report,
        total=len(matches),
        restarted=restarted,
    )


def _in_paste_order(
    matches: Sequence[Customer], query: CustomerQuery, salesforce_ids: Sequence[SalesforceId]
) -> tuple[Customer, ...]:
    """`matches` in the order of the first paste box's IDs (the customer IDs when both were
    pasted; the page is their intersection)."""
    if query.customer_ids:
        position = {customer_id: n for n, customer_id in enumerate(query.customer_ids)}
        key_of = lookups.customer_key
    else:
        position = {salesforce_id.key: n for n, salesforce_id in enumerate(salesforce_ids)}
        key_of = lookups.salesforce_key
    return tuple(
        sorted(matches, key=lambda customer: position.get(key_of(customer) or "", len(position)))
    )


def _as_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def exact_id_matches(client: MetronomeClient, text: str) -> tuple[Customer, ...]:
    """The customers, active and archived, whose Metronome ID or Salesforce ID `text` is
    exactly (in any form Metronome may store it), asked of Metronome: a customer created
    since the index was last synced is found too. () when `text` is neither."""
    if customer_id := _as_uuid(text):
        query = CustomerQuery(customer_ids=(customer_id,))
        salesforce_ids: tuple[SalesforceId, ...] = ()
    elif salesforce.looks_like_id(text):
        salesforce_id = salesforce.normalise(text)
        query = CustomerQuery(salesforce_account_ids=(salesforce_id.key,))
        salesforce_ids = (salesforce_id,)
    else:
        return ()
    plan, results = _look_up(client, query, salesforce_ids, with_report=True)
    found: dict[str, Customer] = {}
    for customers in plan.found(results, "", False) + plan.found(results, "", True):
        for customer in customers:
            found.setdefault(customer.id, customer)
    return tuple(found.values())


def is_paged_by_metronome(query: CustomerQuery) -> bool:
    """A query the API takes in one call, without Salesforce IDs (each of which goes out in
    every form it may be stored in): Metronome pages it itself."""
    return not (query.needs_batches or query.salesforce_account_ids)


def iter_pages(
    client: MetronomeClient,
    query: CustomerQuery,
    *,
    page_size: int = MAX_PAGE_SIZE,
    salesforce_ids: Sequence[SalesforceId] | None = None,
    pasted_order: bool = False,
) -> Generator[CustomerPage, None, None]:
    """Every page of a query Metronome cannot page itself, to the end: the CSV export's
    source for a long ID list, or one with Salesforce IDs (each goes out in every form it may
    be stored in), looked up and cut here, in the order `search` gives the page. A query
    Metronome pages (`is_paged_by_metronome`) is the client's `iter_pages`, unless its rows
    are wanted in paste order (at most 100 IDs: one lookup, then sorted here)."""
    if is_paged_by_metronome(query) and not pasted_order:
        raise ValueError("Metronome pages this query itself: use the client's iter_pages")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    pasted = read_salesforce_ids(query, salesforce_ids)
    shown, results = _look_up(client, query, pasted, with_report=False)
    matches = shown.matches(results)
    if pasted_order:
        matches = _in_paste_order(matches, query, pasted)
    for start in range(0, len(matches), page_size):
        yield CustomerPage(matches[start : start + page_size], None)


def read_salesforce_ids(
    query: CustomerQuery, pasted: Sequence[SalesforceId] | None = None
) -> tuple[SalesforceId, ...]:
    """The query's Salesforce IDs as pasted, when the caller knows how they were pasted
    (`pasted`, one per key, in the query's order), else read back from their keys: the same
    lookup, less a case-changed copy of an 18-character ID that a company might store."""
    keys = query.salesforce_account_ids
    if pasted is not None:
        if tuple(salesforce_id.key for salesforce_id in pasted) != keys:
            raise ValueError("the pasted Salesforce IDs do not belong to this query")
        return tuple(pasted)
    return tuple(
        salesforce.normalise(key)
        if salesforce.looks_like_id(key)
        else SalesforceId(typed=key, key=key, reading=Reading.UNCHECKED)
        for key in keys
    )


def _look_up(
    client: MetronomeClient,
    query: CustomerQuery,
    salesforce_ids: tuple[SalesforceId, ...],
    *,
    with_report: bool,
) -> tuple[lookups.Plan, list[tuple[Customer, ...]]]:
    """The lookups of a pasted-ID search, narrowed by what a recent index knows of the IDs."""
    seconds = settings.PASTED_IDS_INDEX_MAX_AGE_SECONDS
    known = (
        known_ids(
            query.customer_ids,
            [salesforce_id.key for salesforce_id in salesforce_ids],
            max_age=timedelta(seconds=seconds),
        )
        if seconds
        else None
    )
    return lookups.look_up(client, query, salesforce_ids, with_report=with_report, known=known)


# --- Caches --------------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cached_page(
    client: MetronomeClient, query: CustomerQuery, *, limit: int, cursor: str | None, refresh: bool
) -> CustomerPage:
    """One API page, answered from the cache when the same page was fetched in the last
    `API_PAGE_CACHE_SECONDS`. Only a page Metronome answered is stored (a failure raises)."""
    seconds = settings.API_PAGE_CACHE_SECONDS
    key = f"customer-page:v1:{query.fingerprint()}:{limit}:{_digest(cursor or '')}"
    if seconds and not refresh:
        cached = cache.get(key)
        if isinstance(cached, CustomerPage):
            return cached
    page = client.list_customers(query, limit=limit, cursor=cursor)
    if seconds:
        cache.set(key, page, timeout=seconds)
    return page


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= MAX_OFFSET_DIGITS):
        raise InvalidCursor("That page link does not belong to this search. Start from page one.")
    return int(cursor)


def _cached_id_search(
    client: MetronomeClient,
    query: CustomerQuery,
    salesforce_ids: tuple[SalesforceId, ...],
    *,
    refresh: bool,
) -> _IdSearch:
    # The pasted forms change the lookups (a case-changed copy) and the report (as pasted).
    pasted_forms = _digest("\n".join(salesforce_id.typed for salesforce_id in salesforce_ids))
    key = f"customer-search:v3:{query.fingerprint()}:{pasted_forms}"
    if not refresh:
        found = cache.get(key)
        if isinstance(found, _IdSearch):
            return found
    plan, results = _look_up(client, query, salesforce_ids, with_report=True)
    found = _IdSearch(matches=plan.matches(results), report=plan.report(results))
    # For the next pages, which never come before this one is sent: stored after that.
    after_response.defer(
        functools.partial(cache.set, key, found, timeout=settings.SEARCH_CACHE_SECONDS)
    )
    return found


@dataclass(frozen=True, slots=True)
class MatchRow:
    """One line of the match report's CSV: a pasted ID and a customer it matched (in either
    state), or the pasted ID alone when nothing matched it (`outcome` "not found")."""

    pasted: str
    matched_as: str  # the customer's stored ID the pasted one matched
    customer_id: str
    customer_name: str
    archived: bool
    outcome: str  # "matched", "not found"


def match_rows(
    client: MetronomeClient,
    query: CustomerQuery,
    salesforce_ids: Sequence[SalesforceId] | None = None,
) -> list[MatchRow]:
    """Every pasted ID of `query` with each customer it matches, active or archived, in
    paste order (customer IDs first)."""
    plan, results = _look_up(
        client, query, read_salesforce_ids(query, salesforce_ids), with_report=True
    )
    found = zip(
        plan.lists, plan.found(results, "", False), plan.found(results, "", True), strict=True
    )
    rows: list[MatchRow] = []
    for pasted, active, archived in found:
        by_key = lookups.by_key(pasted, [*active, *archived])
        for key in pasted.keys:
            as_pasted = pasted.shown_as[key]
            customers = by_key.get(key, [])
            rows += [
                MatchRow(
                    pasted=as_pasted,
                    matched_as=(
                        customer.id if pasted.is_customer_ids else customer.salesforce_account_id
                    )
                    or "",
                    customer_id=customer.id,
                    customer_name=customer.name,
                    archived=customer.archived_at is not None,
                    outcome="matched",
                )
                for customer in customers
            ] or [MatchRow(as_pasted, "", "", "", False, "not found")]
    return rows
