"""Searching by pasted IDs: lookups, the match report, and the page cut from them.

Metronome takes at most 100 values per filter and ANDs its filters, and a person may paste
up to 1,000 Salesforce IDs and 1,000 customer IDs. So a search with pasted IDs is answered
here, not by one API call: each pasted list is looked up on its own, in batches, in both
the Active and the Archived state (the match report needs both), all through one bounded
thread pool. Customer IDs go 100 to a call. A Salesforce ID goes out in every form
Metronome may store it in (`SalesforceId.wire_values`: its 18- and 15-character forms, so
50 pasted IDs to a call) and the customers found are matched back to the pasted IDs by
their stored ID's 18-character key (`salesforce.key_for_stored`). The page shown is cut
from the lookups of the state the toggle shows (intersected locally when both lists were
pasted), so its cursor is a plain offset: the query itself already travels in the URL. The
lookups' result is cached for a short while (`SEARCH_CACHE_SECONDS`), so the later pages
of a search make no API call.

A search without pasted IDs is one `GET /v1/customers` with Metronome's own cursor; its
pages are cached for `API_PAGE_CACHE_SECONDS` (keyed by the query, limit and cursor, never
by person: everyone who may view customers sees the same ones), so Previous, Back and a
colleague opening the same link make no call. `refresh=True` skips both caches.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from customers import salesforce
from customers.metronome import (
    MAX_IDS_PER_REQUEST,
    MAX_PAGE_SIZE,
    Customer,
    CustomerPage,
    CustomerQuery,
    InvalidCursor,
    MalformedResponse,
    MetronomeClient,
)
from customers.salesforce import Reading, SalesforceId

# One pool per search, never one inside another: its threads are the search's only
# concurrency. Eight keeps a 1,000 + 1,000 ID search to a few rounds of calls without
# spending much of the account's rate limit at once.
# Enough for 300 pasted Salesforce IDs in one wave (6 lookups of 50, each in both states,
# Active and Archived): the page then waits on Metronome about once, not twice.
MAX_LOOKUP_THREADS = 12
# One lookup names at most 100 IDs; a Salesforce ID may belong to a few customers (an
# archived record and its replacement), never to thousands.
MAX_CUSTOMERS_PER_LOOKUP = 20 * MAX_IDS_PER_REQUEST
# An offset cursor is digits only; anything longer is not one of ours.
MAX_OFFSET_DIGITS = 9


@dataclass(frozen=True, slots=True)
class OtherForm:
    """A pasted Salesforce ID found through another form than the one pasted: `pasted`
    matched a customer whose Metronome record stores `stored`."""

    pasted: str
    stored: str


@dataclass(frozen=True, slots=True)
class SharedId:
    """A pasted Salesforce ID that more than one customer holds: how many in the state shown
    and in the other one."""

    pasted: str
    shown: int
    other_state: int

    @property
    def customers(self) -> int:
        return self.shown + self.other_state


@dataclass(frozen=True, slots=True)
class MatchReport:
    """What became of each pasted ID, looked up among active and archived customers alike.
    Customer IDs are given normalised, Salesforce IDs as pasted."""

    pasted: int
    matched: tuple[str, ...]
    # Found, but only among customers the current Active/Archived toggle hides.
    other_state: tuple[str, ...]
    not_found: tuple[str, ...]
    other_state_is_archived: bool = True
    matched_as: tuple[OtherForm, ...] = ()
    shared: tuple[SharedId, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a search, the cursor of the next (None on the last page), and, when IDs
    were pasted, their match report and how many customers the whole search holds."""

    customers: tuple[Customer, ...]
    next_cursor: str | None
    report: MatchReport | None
    total: int | None = None


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
) -> SearchPage:
    """One page of customers for the customers page. `cursor` is the previous page's
    `next_cursor`; a cursor that does not belong to the search raises `InvalidCursor`.
    `salesforce_ids` are the query's Salesforce IDs as pasted (see `read_salesforce_ids`);
    `refresh` asks Metronome again instead of answering from the cache."""
    if not query.has_id_filters:
        page = _cached_page(client, query, limit=limit, cursor=cursor, refresh=refresh)
        return SearchPage(page.customers, page.next_page, None)
    offset = _offset(cursor)
    found = _cached_id_search(
        client, query, read_salesforce_ids(query, salesforce_ids), refresh=refresh
    )
    end = offset + limit
    return SearchPage(
        customers=found.matches[offset:end],
        next_cursor=str(end) if end < len(found.matches) else None,
        report=found.report,
        total=len(found.matches),
    )


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
) -> Generator[CustomerPage, None, None]:
    """Every page of a query Metronome cannot page itself, to the end: the CSV export's
    source for a long ID list, or one with Salesforce IDs (each goes out in every form it may
    be stored in), looked up and cut here. A query Metronome pages (`is_paged_by_metronome`)
    is the client's `iter_pages` or `iter_read_pages`."""
    if is_paged_by_metronome(query):
        raise ValueError("Metronome pages this query itself: use the client's iter_pages")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    shown = _Plan(query, read_salesforce_ids(query, salesforce_ids), with_report=False)
    matches = shown.matches(_run(client, shown.lookups))
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
    key = f"customer-search:v2:{query.fingerprint()}:{pasted_forms}"
    if not refresh:
        found = cache.get(key)
        if isinstance(found, _IdSearch):
            return found
    plan = _Plan(query, salesforce_ids, with_report=True)
    results = _run(client, plan.lookups)
    found = _IdSearch(matches=plan.matches(results), report=plan.report(results))
    cache.set(key, found, timeout=settings.SEARCH_CACHE_SECONDS)
    return found


# --- The lookups -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PastedList:
    """One paste box's IDs: the keys they are compared by, how each is shown, the values of
    each API call, and the key a found customer is matched back by."""

    is_customer_ids: bool
    keys: tuple[str, ...]
    shown_as: dict[str, str]
    batches: tuple[tuple[str, ...], ...]
    key_of: Callable[[Customer], str | None]


def _customer_key(customer: Customer) -> str | None:
    return customer.id


def _salesforce_key(customer: Customer) -> str | None:
    stored = customer.salesforce_account_id
    return salesforce.key_for_stored(stored) if stored else None


def _pasted_lists(
    query: CustomerQuery, salesforce_ids: tuple[SalesforceId, ...]
) -> list[_PastedList]:
    lists: list[_PastedList] = []
    if ids := query.customer_ids:
        lists.append(
            _PastedList(
                is_customer_ids=True,
                keys=ids,
                shown_as={i: i for i in ids},
                batches=tuple(
                    ids[i : i + MAX_IDS_PER_REQUEST]
                    for i in range(0, len(ids), MAX_IDS_PER_REQUEST)
                ),
                key_of=_customer_key,
            )
        )
    if salesforce_ids:
        lists.append(
            _PastedList(
                is_customer_ids=False,
                keys=tuple(s.key for s in salesforce_ids),
                shown_as={s.key: s.typed for s in salesforce_ids},
                batches=tuple(
                    tuple(value for s in batch for value in s.wire_values)
                    for batch in salesforce.batches(salesforce_ids)
                ),
                key_of=_salesforce_key,
            )
        )
    return lists


class _Plan:
    """The API queries one pasted-ID search needs, and how their answers combine.

    Each pasted list is looked up on its own: the API ANDs its filters, so with both lists
    in one query every pair of batches would be a call (100 for 1,000 + 1,000 IDs), and
    the match report would call an ID "not found" whenever the other list excludes it.
    """

    def __init__(
        self,
        query: CustomerQuery,
        salesforce_ids: tuple[SalesforceId, ...],
        *,
        with_report: bool,
    ) -> None:
        self.query = query
        self.lists = _pasted_lists(query, salesforce_ids)
        shown, hidden = query.only_archived, not query.only_archived
        self.states = (shown, hidden) if with_report else (shown,)
        # The report ignores the ingest alias; the page honours it, so with an alias the
        # page needs lookups of its own (Metronome, not this code, decides what matches).
        passes: list[tuple[str, bool]] = [("", state) for state in self.states]
        if query.ingest_alias:
            passes.append((query.ingest_alias, shown))
        self.groups: list[tuple[str, bool, int]] = []  # (alias, state, list index)
        self.lookups: list[list[CustomerQuery]] = []
        for alias, state in passes:
            for index, pasted in enumerate(self.lists):
                self.groups.append((alias, state, index))
                self.lookups.append(
                    [
                        _lookup(pasted.is_customer_ids, batch, alias, state)
                        for batch in pasted.batches
                    ]
                )

    def _found(
        self, results: list[tuple[Customer, ...]], alias: str, state: bool
    ) -> list[tuple[Customer, ...]]:
        """Per pasted list, the customers found that truly belong to one of its IDs (a
        customer an API answer adds for no pasted ID is dropped)."""
        found: list[tuple[Customer, ...]] = []
        for (group_alias, group_state, index), customers in zip(self.groups, results, strict=True):
            if group_alias == alias and group_state == state:
                pasted = self.lists[index]
                keys = set(pasted.keys)
                found.append(tuple(c for c in customers if pasted.key_of(c) in keys))
        return found

    def matches(self, results: list[tuple[Customer, ...]]) -> tuple[Customer, ...]:
        """The shown state's customers matching every pasted list (and the alias), in the
        first list's order: pasted order by batch, Metronome's order within one."""
        per_list = self._found(results, self.query.ingest_alias, self.query.only_archived)
        first, *others = per_list
        wanted = [{customer.id for customer in found} for found in others]
        return tuple(c for c in first if all(c.id in ids for ids in wanted))

    def report(self, results: list[tuple[Customer, ...]]) -> MatchReport:
        query = self.query
        shown_found = self._found(results, "", query.only_archived)
        hidden_found = self._found(results, "", not query.only_archived)
        matched: list[str] = []
        other_state: list[str] = []
        not_found: list[str] = []
        matched_as: list[OtherForm] = []
        shared: list[SharedId] = []
        for pasted, shown, hidden in zip(self.lists, shown_found, hidden_found, strict=True):
            shown_by_key = _by_key(pasted, shown)
            hidden_by_key = _by_key(pasted, hidden)
            for key in pasted.keys:
                as_pasted = pasted.shown_as[key]
                in_shown, in_hidden = shown_by_key.get(key, []), hidden_by_key.get(key, [])
                if in_shown:
                    matched.append(as_pasted)
                elif in_hidden:
                    other_state.append(as_pasted)
                else:
                    not_found.append(as_pasted)
                if pasted.is_customer_ids:
                    continue
                stored_forms = dict.fromkeys(
                    c.salesforce_account_id for c in (*in_shown, *in_hidden)
                )
                matched_as += [
                    OtherForm(as_pasted, stored)
                    for stored in stored_forms
                    if stored and stored != as_pasted
                ]
                if len(in_shown) + len(in_hidden) > 1:
                    shared.append(SharedId(as_pasted, len(in_shown), len(in_hidden)))
        return MatchReport(
            pasted=sum(len(pasted.keys) for pasted in self.lists),
            matched=tuple(matched),
            other_state=tuple(other_state),
            not_found=tuple(not_found),
            other_state_is_archived=not query.only_archived,
            matched_as=tuple(matched_as),
            shared=tuple(shared),
        )


def _by_key(pasted: _PastedList, customers: Sequence[Customer]) -> dict[str, list[Customer]]:
    by_key: dict[str, list[Customer]] = {}
    for customer in customers:
        key = pasted.key_of(customer)
        if key is not None:
            by_key.setdefault(key, []).append(customer)
    return by_key


def _lookup(
    is_customer_ids: bool, values: tuple[str, ...], alias: str, only_archived: bool
) -> CustomerQuery:
    return CustomerQuery(
        customer_ids=values if is_customer_ids else (),
        salesforce_account_ids=() if is_customer_ids else values,
        ingest_alias=alias,
        only_archived=only_archived,
    )


def _run(client: MetronomeClient, groups: list[list[CustomerQuery]]) -> list[tuple[Customer, ...]]:
    """Every lookup of every group through one pool; each group's customers merged in
    batch order, each batch in Metronome's order, each customer once."""
    flat = [lookup for group in groups for lookup in group]
    workers = max(1, min(len(flat), MAX_LOOKUP_THREADS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="customer-search") as pool:
        # Each lookup runs in a copy of this request's context: its log lines carry the
        # request's ID like the rest of the request's.
        futures = [
            pool.submit(contextvars.copy_context().run, _fetch_all, client, lookup)
            for lookup in flat
        ]
        answers = iter([future.result() for future in futures])
    merged: list[tuple[Customer, ...]] = []
    for group in groups:
        seen: dict[str, Customer] = {}
        for _ in group:
            for customer in next(answers):
                seen.setdefault(customer.id, customer)
        merged.append(tuple(seen.values()))
    return merged


def _fetch_all(client: MetronomeClient, query: CustomerQuery) -> list[Customer]:
    """Every customer of one API lookup, page after page in this thread (no pool in the
    pool), with the client's guards against cursor cycles and repeated pages; and since a
    lookup names at most 100 IDs, a lookup that goes on for pages and pages is a broken
    answer, not a long list."""
    customers: list[Customer] = []
    for page in client.follow_cursors(query, MAX_PAGE_SIZE, Customer.from_wire):
        customers.extend(page.rows)
        if len(customers) > MAX_CUSTOMERS_PER_LOOKUP:
            raise MalformedResponse(
                f"Metronome sent more than {MAX_CUSTOMERS_PER_LOOKUP:,} customers for at most "
                f"{MAX_IDS_PER_REQUEST} pasted IDs; the search could not be completed."
            )
    return customers
