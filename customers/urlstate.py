"""The customers page's state as a URL, and back: the only code that builds its links.

A page's URL holds the search (the filters, or `search=<key>` naming stored filters too
long for a URL), the page size, and where in the results it is: `next_page` (the cursor of
this page), `prev` (the cursors of the pages before it, so Previous works after a reload or
from a link in a ticket: Metronome's cursors only go forwards) and `page` (its number).
Empty parameters are left out. Links are built once, in the view, from validated values;
nothing here writes to the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from django.http import QueryDict
from django.urls import reverse

from customers.index.query import IndexQuery
from customers.index.search import Archived, IndexResult, Sort
from customers.metronome import CustomerQuery
from customers.models import SavedSearch

# Past this many characters a query string risks proxies' and gunicorn's request-line limits
# (about 8 KB): longer filters are POSTed and stored, and a page link drops its oldest
# `prev` cursors (so Previous, past them, gives way to First). The page and its script
# read this one value (see the `data-max-query-string` attribute in list.html).
MAX_QUERY_STRING = 6000
# Salesforce IDs that fit in a link: 18 characters each and a comma, encoded as %2C.
SALESFORCE_IDS_PER_LINK = MAX_QUERY_STRING // len("001Dn00000AbCdEIAZ%2C")
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 50

# What only the customer index answers (the form's `uses_index`).
INDEX_PARAMS = (
    "q",
    "billable",
    "created_from",
    "created_to",
    "updated_from",
    "updated_to",
    "no_salesforce_id",
    "custom_field",
    "sort",
)
FILTER_PARAMS = (
    "salesforce_account_ids",
    "customer_ids",
    "ingest_alias",
    "only_archived",
    *INDEX_PARAMS,
)
# Page numbers shown either side of the current one.
PAGE_NUMBERS_AROUND = 2
Params = Mapping[str, str | Sequence[str]]


def filter_params(
    query: CustomerQuery, pasted_text: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The query's filters as canonical URL parameters, empty ones left out. The ID lists
    are the compacted paste boxes when `pasted_text` gives them (the form's `pasted_text`:
    the IDs as pasted and the values ignored, so the next page reports them too), else the
    normalised IDs."""
    texts = pasted_text or {}
    params = {
        "salesforce_account_ids": texts.get("salesforce_account_ids")
        or ",".join(query.salesforce_account_ids),
        "customer_ids": texts.get("customer_ids") or ",".join(query.customer_ids),
        "ingest_alias": query.ingest_alias,
        "only_archived": "true" if query.only_archived else "",
    }
    return {name: value for name, value in params.items() if value}


def stored_filters(query: CustomerQuery, pasted_text: Mapping[str, str]) -> dict[str, str]:
    """What a stored search holds: its filters but the Active/Archived toggle, which travels
    in the URL beside the key, so switching it needs no other stored search."""
    params = filter_params(query, pasted_text)
    params.pop("only_archived", None)
    return params


def index_params(query: IndexQuery) -> dict[str, str]:
    """An index search's own parameters (its ID filters are the API's), empty ones left out."""
    filters = query.filters
    custom = f"{filters.custom_field[0]}={filters.custom_field[1]}" if filters.custom_field else ""

    def day(value: date | None) -> str:
        return value.isoformat() if value else ""

    params = {
        "q": query.q,
        "only_archived": "all" if filters.archived is Archived.ALL else "",
        "billable": filters.billable.value if filters.billable else "",
        "created_from": day(filters.created_from),
        "created_to": day(filters.created_to),
        "updated_from": day(filters.updated_from),
        "updated_to": day(filters.updated_to),
        "no_salesforce_id": "true" if filters.no_salesforce_id else "",
        "custom_field": custom,
        "sort": query.sort.value if query.sort else "",
    }
    return {name: value for name, value in params.items() if value}


def query_string(params: Params) -> str:
    """`params` URL-encoded in the given order, empty values left out."""
    encoded = QueryDict(mutable=True)
    for name, value in params.items():
        values = [value] if isinstance(value, str) else list(value)
        if values := [v for v in values if v]:
            encoded.setlist(name, values)
    return encoded.urlencode()


def list_url(params: Params) -> str:
    query = query_string(params)
    return f"{reverse('customers:list')}?{query}" if query else reverse("customers:list")


def fits_in_url(params: Params) -> bool:
    return len(query_string(params)) <= MAX_QUERY_STRING


def search_params(
    query: CustomerQuery,
    *,
    saved_key: str | None,
    limit: int,
    pasted_text: Mapping[str, str] | None = None,
    toggle_in_url: bool = False,
    index_query: IndexQuery | None = None,
) -> dict[str, str]:
    """What names the search in every link of its pages: its filters (with the index
    search's, when the index answers it), or the key of the stored filters, and the page
    size when it is not the default. Beside a key, the toggle is spelled out when Archived,
    or when the URL gave it (an older stored search may hold `only_archived=true`, which a
    URL's `false` overrides)."""
    if saved_key:
        params = {"search": saved_key}
        if query.only_archived or toggle_in_url:
            params["only_archived"] = "true" if query.only_archived else "false"
        if index_query is not None and index_query.filters.archived is Archived.ALL:
            params["only_archived"] = "all"
    else:
        params = filter_params(query, pasted_text)
        if index_query is not None:
            params = {**params, **index_params(index_query)}
    if limit != DEFAULT_PAGE_SIZE:
        params["limit"] = str(limit)
    return params


def switch_state_url(search: Mapping[str, str], *, to_archived: bool) -> str:
    """The first page of the same search with the Active/Archived toggle switched."""
    params = dict(search)
    params["only_archived"] = "true" if to_archived else "false" if "search" in params else ""
    return list_url(params)


def expand_saved_search(params: QueryDict) -> tuple[QueryDict, bool]:
    """Replace `search=<key>` by the stored filters, keeping the URL's other parameters (page
    size, cursors, the Active/Archived toggle). Filters in the URL beside a key are ignored:
    the key's own are the search, so the page, its links and its CSV always agree. Returns
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
        if name != "search" and (name not in FILTER_PARAMS or name == "only_archived"):
            expanded.setlist(name, values)
    return expanded, saved is None


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Where a page of results is, and its links, as plain values for the template."""

    page_number: int
    first_row: int
    last_row: int
    first_url: str
    previous_url: str | None  # None when the trail back was cut: First still works
    next_url: str | None
    export_query: str
    this_url: str  # this page's own link (without `refresh`)
    refresh_url: str  # this page, asking Metronome again instead of the cache


def page_links(
    search: Mapping[str, str],
    *,
    cursor: str | None,
    trail: Sequence[str],
    page: int | None,
    limit: int,
    next_cursor: str | None,
    rows: int,
) -> PageLinks:
    """The links of one page. `search` is `search_params(...)`; `cursor` is this page's,
    `trail` the cursors of the pages before it (oldest first, maybe cut short), `page` the
    page number the URL gave (derived from the trail when absent)."""
    number = max(page or 0, len(trail) + 2) if cursor else 1

    def link(cursor: str | None, trail: Sequence[str], number: int) -> str:
        paging = {"next_page": cursor or "", "page": str(number) if number > 1 else ""}
        # Keep the newest cursors that fit: Previous then stops where the kept ones end.
        room = MAX_QUERY_STRING - len(query_string({**search, **paging}))
        kept: list[str] = []
        for earlier in reversed(trail):
            room -= len(query_string({"prev": earlier})) + 1
            if room < 0:
                break
            kept.insert(0, earlier)
        return list_url({**search, **paging, "prev": kept})

    if number == 1:
        previous_url = None
    elif number == 2:
        previous_url = link(None, (), 1)
    elif trail:
        previous_url = link(trail[-1], trail[:-1], number - 1)
    else:
        previous_url = None
    next_trail = [*trail, cursor] if cursor else []
    export = {name: value for name, value in search.items() if name != "limit"}
    this_url = link(cursor, trail, number)
    return PageLinks(
        page_number=number,
        first_row=(number - 1) * limit + 1,
        last_row=(number - 1) * limit + rows,
        first_url=link(None, (), 1),
        previous_url=previous_url,
        next_url=link(next_cursor, next_trail, number + 1) if next_cursor else None,
        export_query=query_string(export),
        this_url=this_url,
        refresh_url=f"{this_url}{'&' if '?' in this_url else '?'}refresh=1",
    )


@dataclass(frozen=True, slots=True)
class PageNumber:
    number: int
    url: str
    current: bool


@dataclass(frozen=True, slots=True)
class IndexPageLinks:
    """The links of one page of an index search, which has a true total and page numbers.
    Names shared with PageLinks mean the same, so the template reads either."""

    page_number: int
    page_count: int
    total: int
    total_shown: str  # "1,284"
    first_row: int
    last_row: int
    first_url: str
    previous_url: str | None
    next_url: str | None
    numbers: tuple[PageNumber | None, ...]  # None marks a gap ("…")
    export_query: str


def index_page_links(search: Mapping[str, str], result: IndexResult) -> IndexPageLinks:
    """The links of one page of an index search: `search` is `search_params(...)`."""

    def link(number: int) -> str:
        return list_url({**search, "page": str(number) if number > 1 else ""})

    count, current = result.page_count, result.page
    shown = sorted(
        {1, count}
        | set(
            range(
                max(1, current - PAGE_NUMBERS_AROUND), min(count, current + PAGE_NUMBERS_AROUND) + 1
            )
        )
    )
    numbers: list[PageNumber | None] = []
    for number in shown:
        if numbers and (previous := numbers[-1]) is not None and number > previous.number + 1:
            numbers.append(None)
        numbers.append(PageNumber(number, link(number), number == current))
    export = {name: value for name, value in search.items() if name != "limit"}
    return IndexPageLinks(
        page_number=current,
        page_count=count,
        total=result.total,
        total_shown=f"{result.total:,}",
        first_row=result.first_row,
        last_row=result.last_row,
        first_url=link(1),
        previous_url=link(current - 1) if 1 < current <= count else None,
        next_url=link(current + 1) if current < count else None,
        numbers=tuple(numbers) if count > 1 else (),
        export_query=query_string(export),
    )


@dataclass(frozen=True, slots=True)
class SortLink:
    url: str
    aria_sort: str  # "ascending", "descending", or "" when the column is not the sort


SORTABLE = {
    "name": (Sort.NAME, Sort.NAME_DESC),
    "created": (Sort.CREATED, Sort.CREATED_DESC),
    "updated": (Sort.UPDATED, Sort.UPDATED_DESC),
}


def sort_links(search: Mapping[str, str], current: Sort | None) -> dict[str, SortLink]:
    """A link per sortable column: ascending first, descending when it is the ascending
    sort already. A new sort starts at page one."""
    base = {name: value for name, value in search.items() if name not in ("sort", "page")}
    links: dict[str, SortLink] = {}
    for column, (ascending, descending) in SORTABLE.items():
        next_sort = descending if current is ascending else ascending
        aria = (
            "ascending" if current is ascending else "descending" if current is descending else ""
        )
        links[column] = SortLink(list_url({**base, "sort": next_sort.value}), aria)
    return links
