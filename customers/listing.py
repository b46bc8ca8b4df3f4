"""Which customers the list page shows: the one call its views make, between the validated
state and the links.

A request flows one way: `expand_saved_search` replaces `search=<key>` by the stored filters
-> the form validates them into a `urlstate.ListState` -> `find` answers it (from the API,
the pasted-ID lookups or the customer index) -> the view builds the links from the state
and renders. Nothing here reads the request or builds a link.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.http import QueryDict

from customers import concurrency, display, lookups, metronome, search
from customers.index import live as index_live
from customers.index import search as index_search
from customers.index.live import LiveCustomer
from customers.index.search import Archived, IndexFilters, IndexResult
from customers.metronome import Customer, CustomerQuery, MetronomeClient
from customers.models import SavedSearch
from customers.salesforce import SalesforceId
from customers.urlstate import FILTER_PARAMS, ORDER_PASTED, ListState

logger = logging.getLogger(__name__)

# What `find` raises: the view shows it in the results region with a Retry link.
FAILURES = (metronome.MetronomeError, concurrency.Busy)
EXPIRED_LINK = (
    "That page link has expired or belongs to another search. Showing the first page instead."
)
ARCHIVED_NOTE = "archived"
ACTIVE_NOTE = "active"
NOT_INDEXED_NOTE = "new since the index was updated"


def expand_saved_search(params: QueryDict) -> tuple[QueryDict, bool]:
    """Replace `search=<key>` by the stored filters, keeping the URL's other parameters (page
    size, cursors, the Active/Archived toggle and the order, which every link beside the key
    spells out). Filters in the URL beside a key are ignored: the key's own are the search,
    so the page, its links and its CSV always agree. Returns
    the parameters and whether the key named nothing. Reads only."""
    key = params.get("search", "")
    if not key:
        return params, False
    expanded = QueryDict(mutable=True)
    # Keys are hex digests; anything else (a NUL byte is an error in PostgreSQL) names nothing.
    is_key = key.isascii() and key.isalnum()
    saved = SavedSearch.objects.filter(key=key[:32]).first() if is_key else None
    if saved is not None:
        for name in FILTER_PARAMS:
            if values := saved.params.get(name):
                expanded.setlist(name, [str(v) for v in values])
    for name, values in params.lists():
        if name != "search" and (name not in FILTER_PARAMS or name in ("only_archived", "order")):
            expanded.setlist(name, values)
    return expanded, saved is None


@dataclass(frozen=True, slots=True)
class Found:
    """One page of the list: the rows, and what the page says about them. `state` is the
    state answered (its first page when the link had expired)."""

    state: ListState
    rows: list[display.CustomerRow]
    customer_count: int
    report: search.MatchReport | None = None
    total: int | None = None  # a pasted-ID search's
    next_cursor: str | None = None
    index_result: IndexResult | None = None
    notice: str = ""
    # The index's answer was shown because Metronome could not be asked: why.
    stale_error: str = ""
    # The rows before the index's that the search box names exactly but the toggle hides
    # (or that the index does not hold yet).
    exact_extras: int = 0
    # For a pasted-ID search: the pasted ID each row matched, by customer ID.
    matched_as: dict[str, str] | None = None
    # The customers of the page, in order: what a saved view's chosen columns read. `rows`
    # is empty when columns are chosen, unless the rows carry notes (an index page).
    customers: tuple[Customer, ...] = ()


def find(
    client: MetronomeClient,
    state: ListState,
    *,
    user_id: object,
    salesforce_ids: Sequence[SalesforceId],
) -> Found:
    """The page `state` names. Raises one of FAILURES when Metronome cannot answer (a name
    search then still answers from the index, marked stale) or the person already runs as
    many long searches as allowed."""
    answer = _from_index if state.index_query is not None else _from_api
    # Pasted IDs are many calls of the company's one token: a person runs few such at once,
    # also beside an index filter (whose match report makes the same calls).
    if not state.query.has_id_filters:
        return answer(client, state, salesforce_ids)
    with concurrency.expensive_work(user_id):
        return answer(client, state, salesforce_ids)


def _from_api(
    client: MetronomeClient, state: ListState, salesforce_ids: Sequence[SalesforceId]
) -> Found:
    notice = ""
    try:
        page = _search(client, state, salesforce_ids)
    except metronome.BadRequest:
        if state.cursor is None:
            raise
        # A damaged or expired cursor: the search still makes sense from page one.
        notice, state = EXPIRED_LINK, state.first_page()
        page = _search(client, state, salesforce_ids)
    if page.restarted:  # a pasted-ID search's offset past its last match
        notice, state = EXPIRED_LINK, state.first_page()
    customers = page.customers
    # A saved view's chosen columns draw their own rows from `customers` (customers/columns.py):
    # the standard table's would be built for nothing (about 1 ms for 100).
    rows = [] if state.columns else display.customer_rows(customers)
    matched_as = None
    if page.report is not None:
        matched_as = _matched_as(page.customers, state.query, salesforce_ids)
        rows = [replace(row, matched_as=matched_as.get(row.key, "")) for row in rows]
    return Found(
        state=state,
        rows=rows,
        customer_count=len(customers),
        report=page.report,
        total=page.total,
        next_cursor=page.next_cursor,
        notice=notice,
        matched_as=matched_as,
        customers=tuple(customers),
    )


def _search(
    client: MetronomeClient, state: ListState, salesforce_ids: Sequence[SalesforceId]
) -> search.SearchPage:
    return search.search(
        client,
        state.query,
        limit=state.limit,
        cursor=state.cursor,
        salesforce_ids=salesforce_ids,
        refresh=state.refresh,
        pasted_order=state.order == ORDER_PASTED,
    )


def _matched_as(
    customers: Sequence[Customer], query: CustomerQuery, salesforce_ids: Sequence[SalesforceId]
) -> dict[str, str]:
    """Which pasted ID each customer matched (as pasted)."""
    wanted_ids = set(query.customer_ids)
    by_key = {salesforce_id.key: salesforce_id.typed for salesforce_id in salesforce_ids}
    matched: dict[str, str] = {}
    for customer in customers:
        if customer.id in wanted_ids:
            matched[customer.id] = customer.id
        elif customer.salesforce_account_id:
            key = lookups.salesforce_key(customer)
            if key in by_key:
                matched[customer.id] = by_key[key]
    return matched


def _from_index(
    client: MetronomeClient, state: ListState, salesforce_ids: Sequence[SalesforceId]
) -> Found:
    """The index finds this page's customers and gives the total; Metronome is re-read for
    their current values (customers/index/live.py), or, when it cannot answer, the
    index's values are shown marked possibly stale."""
    assert state.index_query is not None
    found = index_live.page(client, state.index_query, page=state.page or 1, per_page=state.limit)
    extras: tuple[LiveCustomer, ...] = ()
    report = None
    if not found.stale_error:
        extras = _exact_matches_elsewhere(client, state, found)
        if state.query.has_id_filters:
            # The match report says what became of each pasted ID, whatever else filters.
            report = search.search(
                client, state.query, limit=1, salesforce_ids=salesforce_ids
            ).report
            if report is not None and state.index_query.filters.archived is Archived.ALL:
                report = report.in_all_states()
    shown = (*extras, *found.customers)
    return Found(
        state=state,
        rows=display.live_rows(shown),
        customers=tuple(live.customer for live in shown),
        customer_count=len(extras) + len(found.customers),
        report=report,
        index_result=found.result,
        stale_error=found.stale_error,
        exact_extras=len(extras),
    )


def _exact_matches_elsewhere(
    client: MetronomeClient, state: ListState, found: index_live.IndexPage
) -> tuple[LiveCustomer, ...]:
    """Customers the search box names exactly that the page would not show: archived ones
    on the Active view (active ones on the Archived view), found by exact Metronome ID,
    Salesforce ID or name, and customers created since the last sync, found by an exact ID
    asked of Metronome. Only on the first page of a search with no other filter, so every
    other row still matches every filter."""
    query = state.index_query
    if query is None or not query.q.strip() or (state.page or 1) > 1:
        return ()
    if replace(query.filters, archived=Archived.ACTIVE) != IndexFilters():
        return ()
    shown = {live.customer.id for live in found.customers}
    candidates = list(search.exact_id_matches(client, query.q.strip()))
    if query.filters.archived is not Archived.ALL:
        hidden = Archived.ARCHIVED if query.filters.archived is Archived.ACTIVE else Archived.ACTIVE
        named = index_search.exact_name_matches(query.q, archived=hidden)
        known = {customer.id for customer in candidates}
        missing = [customer_id for customer_id in named if customer_id not in known]
        candidates += [live.customer for live in index_live.live(client, missing, hidden)]
    indexed = index_search.indexed_ids([customer.id for customer in candidates])
    extras: dict[str, LiveCustomer] = {}
    for customer in candidates:
        if customer.id in shown or customer.id in extras:
            continue
        archived = customer.archived_at is not None
        if customer.id not in indexed:
            note = NOT_INDEXED_NOTE
        elif archived and query.filters.archived is not Archived.ARCHIVED:
            note = ARCHIVED_NOTE
        elif not archived and query.filters.archived is Archived.ARCHIVED:
            note = ACTIVE_NOTE
        else:
            continue  # the index shows it where it belongs: on a later page, or not at all
        extras[customer.id] = LiveCustomer(customer, note)
    return tuple(extras.values())
