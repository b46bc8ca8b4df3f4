"""Searching by pasted IDs: lookups, the match report, and the page cut from them.

Metronome takes at most 100 IDs per filter and ANDs its filters, and a person may paste up
to 1,000 Salesforce IDs and 1,000 customer IDs. So a search with pasted IDs is answered
here, not by one API call: each pasted list is looked up on its own, in batches of 100, in
both the Active and the Archived state (the match report needs both), all through one
bounded thread pool. The page shown is cut from the lookups of the state the toggle shows
(intersected locally when both lists were pasted), so its cursor is a plain offset: the
query itself already travels in the URL. The lookups' result is cached for a short while
(`SEARCH_CACHE_SECONDS`), so the later pages of a search make no API call.

A search without pasted IDs is one `GET /v1/customers` with Metronome's own cursor.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from customers.metronome import (
    MAX_CONSECUTIVE_EMPTY_PAGES,
    MAX_IDS_PER_REQUEST,
    MAX_PAGE_SIZE,
    Customer,
    CustomerPage,
    CustomerQuery,
    InvalidCursor,
    MalformedResponse,
    MetronomeClient,
)

# One pool per search, never one inside another: its threads are the search's only
# concurrency. Eight keeps a 1,000 + 1,000 ID search to a few rounds of calls without
# spending much of the account's rate limit at once.
MAX_LOOKUP_THREADS = 8
# An offset cursor is digits only; anything longer is not one of ours.
MAX_OFFSET_DIGITS = 9


@dataclass(frozen=True, slots=True)
class MatchReport:
    """What became of each pasted ID, looked up among active and archived customers alike."""

    pasted: int
    matched: tuple[str, ...]
    # Found, but only among customers the current Active/Archived toggle hides.
    other_state: tuple[str, ...]
    not_found: tuple[str, ...]
    other_state_is_archived: bool = True


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a search, the cursor of the next (None on the last page), and, when IDs
    were pasted, their match report."""

    customers: tuple[Customer, ...]
    next_cursor: str | None
    report: MatchReport | None


@dataclass(frozen=True, slots=True)
class _IdSearch:
    """What the lookups of one pasted-ID search found: cached between its pages."""

    matches: tuple[Customer, ...]  # every customer the page shows, in a stable order
    report: MatchReport


def search(
    client: MetronomeClient, query: CustomerQuery, *, limit: int, cursor: str | None = None
) -> SearchPage:
    """One page of customers for the customers page. `cursor` is the previous page's
    `next_cursor`; a cursor that does not belong to the search raises `InvalidCursor`."""
    if not query.has_id_filters:
        page = client.list_customers(query, limit=limit, cursor=cursor)
        return SearchPage(page.customers, page.next_page, None)
    offset = _offset(cursor)
    found = _cached_id_search(client, query)
    end = offset + limit
    return SearchPage(
        customers=found.matches[offset:end],
        next_cursor=str(end) if end < len(found.matches) else None,
        report=found.report,
    )


def iter_pages(
    client: MetronomeClient, query: CustomerQuery, *, page_size: int = MAX_PAGE_SIZE
) -> Generator[CustomerPage, None, None]:
    """Every page of the query, to the end: the CSV export's source. A query the API can
    take in one call is paged by Metronome; a longer one is looked up and cut here."""
    if not query.needs_batches:
        yield from client.iter_pages(query, page_size=page_size)
        return
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    shown = _Plan(query, with_report=False)
    matches = shown.matches(_run(client, shown.lookups))
    for start in range(0, len(matches), page_size):
        yield CustomerPage(matches[start : start + page_size], None)


# --- The lookups -------------------------------------------------------------------------


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= MAX_OFFSET_DIGITS):
        raise InvalidCursor("That page link does not belong to this search. Start from page one.")
    return int(cursor)


def _cached_id_search(client: MetronomeClient, query: CustomerQuery) -> _IdSearch:
    key = f"customer-search:v1:{query.fingerprint()}"
    found = cache.get(key)
    if isinstance(found, _IdSearch):
        return found
    plan = _Plan(query, with_report=True)
    results = _run(client, plan.lookups)
    found = _IdSearch(matches=plan.matches(results), report=plan.report(results))
    cache.set(key, found, timeout=settings.SEARCH_CACHE_SECONDS)
    return found


def _chunks(ids: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [ids[i : i + MAX_IDS_PER_REQUEST] for i in range(0, len(ids), MAX_IDS_PER_REQUEST)]


class _Plan:
    """The API queries one pasted-ID search needs, and how their answers combine.

    Each pasted list is looked up on its own: the API ANDs its filters, so with both lists
    in one query every pair of batches would be a call (100 for 1,000 + 1,000 IDs), and
    the match report would call an ID "not found" whenever the other list excludes it.
    """

    def __init__(self, query: CustomerQuery, *, with_report: bool) -> None:
        self.query = query
        # (whether the list holds customer IDs, the list), for each list pasted
        self.lists = [
            (is_customer_ids, ids)
            for is_customer_ids, ids in (
                (True, query.customer_ids),
                (False, query.salesforce_account_ids),
            )
            if ids
        ]
        shown, hidden = query.only_archived, not query.only_archived
        self.states = (shown, hidden) if with_report else (shown,)
        # The report ignores the ingest alias; the page honours it, so with an alias the
        # page needs lookups of its own (Metronome, not this code, decides what matches).
        self.alias_pass = bool(query.ingest_alias)
        passes: list[tuple[str, bool]] = [("", state) for state in self.states]
        if self.alias_pass:
            passes.append((query.ingest_alias, shown))
        self.groups: list[tuple[str, bool, int]] = []  # (alias, state, list index)
        self.lookups: list[list[CustomerQuery]] = []
        for alias, state in passes:
            for index, (is_customer_ids, ids) in enumerate(self.lists):
                self.groups.append((alias, state, index))
                self.lookups.append(
                    [_lookup(is_customer_ids, chunk, alias, state) for chunk in _chunks(ids)]
                )

    def _found(
        self, results: list[tuple[Customer, ...]], alias: str, state: bool
    ) -> list[tuple[Customer, ...]]:
        return [
            found
            for (group_alias, group_state, _), found in zip(self.groups, results, strict=True)
            if group_alias == alias and group_state == state
        ]

    def matches(self, results: list[tuple[Customer, ...]]) -> tuple[Customer, ...]:
        """The shown state's customers matching every pasted list (and the alias), in the
        first list's order: pasted order by batch, Metronome's order within one."""
        per_list = self._found(results, self.query.ingest_alias, self.query.only_archived)
        first, *others = per_list
        wanted = [{customer.id for customer in found} for found in others]
        return tuple(c for c in first if all(c.id in ids for ids in wanted))

    def report(self, results: list[tuple[Customer, ...]]) -> MatchReport:
        query = self.query
        shown_ids = _found_ids(self._found(results, "", query.only_archived))
        hidden_ids = _found_ids(self._found(results, "", not query.only_archived))
        pasted = (*query.customer_ids, *query.salesforce_account_ids)
        return MatchReport(
            pasted=len(pasted),
            matched=tuple(i for i in pasted if i in shown_ids),
            other_state=tuple(i for i in pasted if i not in shown_ids and i in hidden_ids),
            not_found=tuple(i for i in pasted if i not in shown_ids and i not in hidden_ids),
            other_state_is_archived=not query.only_archived,
        )


def _lookup(
    is_customer_ids: bool, chunk: tuple[str, ...], alias: str, only_archived: bool
) -> CustomerQuery:
    return CustomerQuery(
        customer_ids=chunk if is_customer_ids else (),
        salesforce_account_ids=() if is_customer_ids else chunk,
        ingest_alias=alias,
        only_archived=only_archived,
    )


def _found_ids(groups: Iterable[Sequence[Customer]]) -> set[str]:
    ids: set[str] = set()
    for customers in groups:
        for customer in customers:
            ids.add(customer.id)
            if customer.salesforce_account_id:
                ids.add(customer.salesforce_account_id)
    return ids


def _run(client: MetronomeClient, groups: list[list[CustomerQuery]]) -> list[tuple[Customer, ...]]:
    """Every lookup of every group through one pool; each group's customers merged in
    batch order, each batch in Metronome's order, each customer once."""
    flat = [lookup for group in groups for lookup in group]
    workers = max(1, min(len(flat), MAX_LOOKUP_THREADS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="customer-search") as pool:
        answers = iter(list(pool.map(lambda lookup: _fetch_all(client, lookup), flat)))
    merged: list[tuple[Customer, ...]] = []
    for group in groups:
        seen: dict[str, Customer] = {}
        for _ in group:
            for customer in next(answers):
                seen.setdefault(customer.id, customer)
        merged.append(tuple(seen.values()))
    return merged


def _fetch_all(client: MetronomeClient, query: CustomerQuery) -> list[Customer]:
    """Every customer of one API query, page after page in this thread (no pool in the
    pool); a cursor seen before or an endless run of empty pages is an error, not a loop."""
    customers: list[Customer] = []
    cursor: str | None = None
    seen: set[str] = set()
    empty_run = 0
    while True:
        page = client.list_customers(query, limit=MAX_PAGE_SIZE, cursor=cursor)
        customers.extend(page.customers)
        if page.next_page is None:
            return customers
        empty_run = 0 if page.customers else empty_run + 1
        if page.next_page in seen or empty_run > MAX_CONSECUTIVE_EMPTY_PAGES:
            raise MalformedResponse(
                "Metronome kept sending the same or empty pages; the search could not be completed."
            )
        seen.add(page.next_page)
        cursor = page.next_page
