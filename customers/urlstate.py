"""The customers page's state as a URL, and back: the only code that builds its links.

A page's URL holds the search (the filters, or `search=<key>` naming stored filters too
long for a URL), the page size, and where in the results it is: `next_page` (the cursor of
this page), `prev` (the cursors of the pages before it, so Previous works after a reload or
from a link in a ticket: Metronome's cursors only go forwards), `page` (its number) and
`page_sig` (the dashboard's signature of that number, see `page_links`).
Empty parameters are left out, and every yes/no parameter says `true` or `false` (older
links' `1`, `on`, `yes` and `0`, `off`, `no` still read; forms.py reads them). Links are
built once, from the validated state (`ListState`, made by the form); nothing here reads or
writes the database: a stored search is expanded before the form sees it
(`listing.expand_saved_search`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from django.conf import settings
from django.http import QueryDict
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.datastructures import MultiValueDict

from customers.index.query import IndexQuery
from customers.index.search import Archived, Billable, IndexResult, Sort
from customers.metronome import CustomerQuery

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
# How a pasted-ID search orders its rows: `pasted` is paste order, else creation order
# (`created` says so explicitly: beside a stored search's key, it overrides the key's order).
ORDER_PASTED = "pasted"
ORDER_CREATED = "created"
ORDERS = ((ORDER_CREATED, "Creation order"), (ORDER_PASTED, "Paste order"))
FILTER_PARAMS = (
    "salesforce_account_ids",
    "customer_ids",
    "ingest_alias",
    "only_archived",
    "order",
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


def index_params(query: IndexQuery) -> dict[str, str | list[str]]:
    """An index search's own parameters (its ID filters are the API's), empty ones left out."""
    filters = query.filters
    custom = f"{filters.custom_field[0]}={filters.custom_field[1]}" if filters.custom_field else ""

    def day(value: date | None) -> str:
        return value.isoformat() if value else ""

    params = {
        "q": query.q,
        "only_archived": "all" if filters.archived is Archived.ALL else "",
        "billable": [b.value for b in Billable if b in filters.billable],
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
    """`params` URL-encoded in the given order, empty values left out. A QueryDict gives
    every value of a name (its `items()` would give only the last: `billable=billable&
    billable=unbillable` became `billable=unbillable`)."""
    encoded = QueryDict(mutable=True)
    pairs = params.lists() if isinstance(params, MultiValueDict) else params.items()
    for name, value in pairs:
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
    order: str = "",
) -> dict[str, str | list[str]]:
    """What names the search in every link of its pages: its filters (with the index
    search's, when the index answers it), or the key of the stored filters, and the page
    size when it is not the default. Beside a key, the toggle is spelled out when Archived,
    or when the URL gave it (an older stored search may hold `only_archived=true`, which a
    URL's `false` overrides)."""
    params: dict[str, str | list[str]]
    if saved_key:
        params = {"search": saved_key}
        if query.only_archived or toggle_in_url:
            params["only_archived"] = "true" if query.only_archived else "false"
        if index_query is not None and index_query.filters.archived is Archived.ALL:
            params["only_archived"] = "all"
    else:
        params = {**filter_params(query, pasted_text)}
        if index_query is not None:
            params = {**params, **index_params(index_query)}
    # Only pasted IDs have an order to choose; creation order is the default, spelt out
    # only beside a stored key, whose own order it overrides.
    if order and query.has_id_filters and (saved_key or order != ORDER_CREATED):
        params["order"] = order
    if limit != DEFAULT_PAGE_SIZE:
        params["limit"] = str(limit)
    return params


def switch_state_url(search: Params, *, to_archived: bool) -> str:
    """The first page of the same search with the Active/Archived toggle switched."""
    params = dict(search)
    params["only_archived"] = "true" if to_archived else "false" if "search" in params else ""
    return list_url(params)


def list_url_as_given(params: QueryDict) -> str:
    """The list page with `params` as a request gave them (every value of each, empty ones
    left out): where an error page's "back" link leads."""
    return list_url(dict(params.lists()))


SHOWN_CUSTOMERS = {
    Archived.ACTIVE: "active customers",
    Archived.ARCHIVED: "archived customers",
    Archived.ALL: "customers",
}


@dataclass(frozen=True, slots=True)
class ListState:
    """The customers page's state, validated (the form's `state()`): the one object its
    links, its CSV links and which customers it shows are read from, as admin's ChangeList.

    `index_query` is set when the customer index answers the page; `cursor`, `trail` and
    `page` are where in the results it is."""

    query: CustomerQuery
    limit: int = DEFAULT_PAGE_SIZE
    index_query: IndexQuery | None = None
    saved_key: str | None = None
    pasted_text: Mapping[str, str] = field(default_factory=dict)
    toggle_in_url: bool = False
    order: str = ""
    cursor: str | None = None
    trail: tuple[str, ...] = ()
    page: int | None = None
    page_sig: str = ""  # what vouches for `page` beside a cursor (see `page_links`)
    refresh: bool = False
    # Saved views (customers/saved_views.py): the chosen columns (`columns.ColumnChoice.param`)
    # and the open view's slug. Every link keeps them; no search depends on them.
    columns: str = ""
    view: str = ""

    @property
    def archived(self) -> Archived:
        """Which customers are shown: active, archived or all (only the index does all)."""
        if self.index_query is not None:
            return self.index_query.filters.archived
        return Archived.ARCHIVED if self.query.only_archived else Archived.ACTIVE

    @property
    def only_archived(self) -> str:
        """`archived` as the URL says it: "false", "true" or "all"."""
        return {Archived.ACTIVE: "false", Archived.ARCHIVED: "true", Archived.ALL: "all"}[
            self.archived
        ]

    @property
    def shown_customers(self) -> str:
        return SHOWN_CUSTOMERS[self.archived]

    @property
    def is_filtered(self) -> bool:
        return self.index_query is not None or self.query.is_filtered

    def search_params(self) -> dict[str, str | list[str]]:
        return search_params(
            self.query,
            saved_key=self.saved_key,
            limit=self.limit,
            pasted_text=self.pasted_text,
            toggle_in_url=self.toggle_in_url,
            index_query=self.index_query,
            order=self.order,
        )

    def link_params(self) -> dict[str, str | list[str]]:
        """What every link of the page keeps: the search, and the columns and open view."""
        return {**self.search_params(), "columns": self.columns, "view": self.view}

    def position_params(self) -> dict[str, str | list[str]]:
        """Where in the results the page is, as the URL gave it."""
        if self.index_query is not None:
            return {"page": str(self.page) if self.page and self.page > 1 else ""}
        return {
            "next_page": self.cursor or "",
            "page": str(self.page) if self.cursor and self.page else "",
            "page_sig": self.page_sig if self.cursor else "",
            "prev": list(self.trail),
        }

    def get_query_string(self, new: Params | None = None, remove: Iterable[str] = ()) -> str:
        """This page's query string, with `new` set and `remove` left out (ChangeList's)."""
        params = {**self.link_params(), **self.position_params(), **(new or {})}
        for name in remove:
            params.pop(name, None)
        return query_string(params)

    def url(self, new: Params | None = None, remove: Iterable[str] = ()) -> str:
        query = self.get_query_string(new, remove)
        return f"{reverse('customers:list')}?{query}" if query else reverse("customers:list")

    def download_url(self, view: str = "customers:export") -> str:
        """A CSV of the whole search (every page, whatever the page size)."""
        query = query_string({**self.link_params(), "limit": "", "view": ""})
        return f"{reverse(view)}?{query}" if query else reverse(view)

    def first_page(self) -> ListState:
        return replace(self, cursor=None, trail=(), page=None, page_sig="")

    def page_links(self, *, next_cursor: str | None, rows: int) -> PageLinks:
        return page_links(
            self.link_params(),
            cursor=self.cursor,
            trail=self.trail,
            page=self.page,
            limit=self.limit,
            next_cursor=next_cursor,
            rows=rows,
            query_key=self.query.fingerprint(),
            signature=self.page_sig,
            offset_cursor=self.query.has_id_filters,
        )

    def index_page_links(self, result: IndexResult) -> IndexPageLinks:
        return index_page_links(self.link_params(), result)

    def sort_links(self) -> dict[str, SortLink]:
        return sort_links(self.link_params(), self.index_query.sort if self.index_query else None)

    def switch_state_url(self) -> str:
        return switch_state_url(self.link_params(), to_archived=not self.query.only_archived)

    def order_links(self) -> list[tuple[str, str, bool]]:
        """A pasted-ID search's orders, each (label, first page's link, whether shown)."""
        shown = self.order or ORDER_CREATED
        return [
            (
                label,
                self.first_page().url(
                    {"order": "" if order == ORDER_CREATED and not self.saved_key else order}
                ),
                shown == order,
            )
            for order, label in ORDERS
        ]

    def narrowing_params(self) -> dict[str, str | list[str]]:
        """What narrows a pasted-ID search's rows beyond its paste boxes, spelled out even
        when a stored search's key names them: the index's search and filters (not its
        sort) and an ingest alias. The match report counts every match without them."""
        spelled = replace(self, saved_key=None).search_params()
        return {
            name: value
            for name, value in spelled.items()
            if value and (name == "ingest_alias" or (name in INDEX_PARAMS and name != "sort"))
        }

    def every_match_params(self) -> dict[str, str | list[str]]:
        """The same paste without what narrows it, spelled out (columns and view kept)."""
        narrowing = self.narrowing_params()
        spelled = replace(self, saved_key=None).search_params()
        params = {name: value for name, value in spelled.items() if name not in narrowing}
        params.update(columns=self.columns, view=self.view)
        return params

    def every_match_url(self) -> str | None:
        """The first page of `every_match_params`, when that fits a link. A paste of
        hundreds of IDs does not: its page offers `every_match_fields` to store instead."""
        params = self.every_match_params()
        return list_url(params) if fits_in_url(params) else None

    def every_match_fields(self) -> list[tuple[str, str]]:
        """`every_match_params` as the hidden fields of the form that stores them (only a
        POST may store a search)."""
        return form_fields(self.every_match_params())


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Where a page of results is, and its links, as plain values for the template.
    `page_number` is None when the link's position cannot be vouched for (see
    `page_links`): the rows are shown, unnumbered."""

    page_number: int | None
    first_row: int | None
    last_row: int | None
    first_url: str
    previous_url: str | None  # None when the trail back was cut: First still works
    next_url: str | None
    this_url: str  # this page's own link (without `refresh`)
    refresh_url: str  # this page, asking Metronome again instead of the cache


# The salt of a page link's position signature (`page_sig`), and how much of it a link
# carries: 16 URL-safe characters, 96 bits, where a guess has no chance.
_POSITION_SALT = "customers.urlstate.page-position"
_POSITION_SIGNATURE_LENGTH = 16


def position_signature(
    search: str,
    cursor: str,
    trail: Sequence[str],
    limit: int,
    number: int,
    *,
    secret: str | bytes | None = None,
) -> str:
    """What vouches that `cursor`, in the search `search` (its query's fingerprint) at
    `limit` rows a page and after the cursors `trail`, is page `number`. Metronome's cursors
    are opaque, so a page's number is the dashboard's own word, signed into the links it
    builds (`page_sig`): neither a `page=` nor a `prev` cursor typed into a link, nor other
    filters beside its cursor, can relabel its rows, or the page its Previous leads to."""
    message = json.dumps([search, limit, number, cursor, list(trail)])
    digest = salted_hmac(_POSITION_SALT, message, secret=secret, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode()[:_POSITION_SIGNATURE_LENGTH]


def _signed_position(
    search: str, cursor: str, trail: Sequence[str], limit: int, page: int | None, signature: str
) -> int | None:
    """The page number a link's signature vouches for, or None. Keys being rotated out
    (SECRET_KEY_FALLBACKS) still vouch for the links they signed."""
    if page is None or len(signature) != _POSITION_SIGNATURE_LENGTH:
        return None
    for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        expected = position_signature(search, cursor, trail, limit, page, secret=secret)
        if constant_time_compare(signature, expected):
            return page
    return None


def page_links(
    search: Params,
    *,
    cursor: str | None,
    trail: Sequence[str],
    page: int | None,
    limit: int,
    next_cursor: str | None,
    rows: int,
    query_key: str = "",
    signature: str = "",
    offset_cursor: bool = False,
) -> PageLinks:
    """The links of one page. `search` is `search_params(...)`; `cursor` is this page's,
    `trail` the cursors of the pages before it (oldest first, maybe cut short), `page` the
    page number the URL gave and `signature` its `page_sig`; `query_key` names the search
    (its query's fingerprint) for the signature. The number shown is the
    cursor's own when it is an offset (`offset_cursor`: a pasted-ID search), else the URL's
    when its signature vouches for it. A link whose position nobody vouches for (a `page=`
    or `prev` edited by hand, or a link from before positions were signed) shows its rows
    unnumbered, and so do the pages its Next and Previous lead to: First starts over."""
    number = _page_number(query_key, cursor, trail, page, limit, signature, offset_cursor)

    def link_params(
        cursor: str | None, trail: Sequence[str], number: int | None, refresh: bool = False
    ) -> Params:
        paging: dict[str, str | list[str]] = {"next_page": cursor or ""}
        last: Params = {"refresh": "true"} if refresh else {}  # counted in the room too
        signed = bool(cursor) and number is not None and number > 1 and not offset_cursor
        if cursor and number is not None and number > 1:
            paging["page"] = str(number)
        if signed:
            paging["page_sig"] = "-" * _POSITION_SIGNATURE_LENGTH  # its room, signed below
        # Keep the newest cursors that fit: Previous then stops where the kept ones end.
        room = MAX_QUERY_STRING - len(query_string({**search, **paging, **last}))
        kept: list[str] = []
        for earlier in reversed(trail):
            room -= len(query_string({"prev": earlier})) + 1
            if room < 0:
                break
            kept.insert(0, earlier)
        if signed:
            assert cursor is not None and number is not None
            paging["page_sig"] = position_signature(query_key, cursor, kept, limit, number)
        return {**search, **paging, "prev": kept, **last}

    def link(cursor: str | None, trail: Sequence[str], number: int | None) -> str:
        return list_url(link_params(cursor, trail, number))

    def step(number: int | None, by: int) -> int | None:
        return None if number is None else number + by

    if not cursor or number == 1:
        previous_url = None
    elif number == 2:
        previous_url = link(None, (), 1)
    elif trail:
        previous_url = link(trail[-1], trail[:-1], step(number, -1))
    else:
        previous_url = None
    next_trail = [*trail, cursor] if cursor else []
    first_row = None if number is None else (number - 1) * limit + 1
    if offset_cursor and cursor and cursor.isascii() and cursor.isdigit():
        first_row = int(cursor) + 1
    return PageLinks(
        page_number=number,
        first_row=first_row,
        last_row=None if first_row is None else first_row + rows - 1,
        first_url=link(None, (), 1),
        previous_url=previous_url,
        next_url=link(next_cursor, next_trail, step(number, 1)) if next_cursor else None,
        this_url=link(cursor, trail, number),
        refresh_url=list_url(link_params(cursor, trail, number, refresh=True)),
    )


def _page_number(
    query_key: str,
    cursor: str | None,
    trail: Sequence[str],
    page: int | None,
    limit: int,
    signature: str,
    offset_cursor: bool,
) -> int | None:
    if not cursor:
        return 1
    if offset_cursor:
        # An offset off the page boundaries (typed by hand) numbers its rows, not a page.
        if cursor.isascii() and cursor.isdigit() and int(cursor) % limit == 0:
            return int(cursor) // limit + 1
        return None
    return _signed_position(query_key, cursor, trail, limit, page, signature)


@dataclass(frozen=True, slots=True)
class PageNumber:
    number: int
    url: str
    current: bool


@dataclass(frozen=True, slots=True)
class IndexPageLinks:
    """The links of one page of an index search, which has a total (exact, or "more than
    10,000") and page numbers.
    Names shared with PageLinks mean the same, so the template reads either."""

    page_number: int
    page_count: int
    total: int
    total_shown: str  # "1,284", or "more than 10,000" past the index's count cap
    first_row: int
    last_row: int
    first_url: str
    previous_url: str | None
    next_url: str | None
    numbers: tuple[PageNumber | None, ...]  # None marks a gap ("…")
    last_url: str | None = None  # None past the count cap, where the last page is not known

    @property
    def past_the_end(self) -> bool:
        """A page number beyond the search's matches (an old link, or one typed by hand)."""
        return self.total > 0 and self.page_number > 1 and self.first_row == 0


def index_page_links(search: Params, result: IndexResult) -> IndexPageLinks:
    """The links of one page of an index search: `search` is `search_params(...)`."""

    def link(number: int) -> str:
        return list_url({**search, "page": str(number) if number > 1 else ""})

    count, current = result.page_count, result.page
    # Past the count cap the last page is not known: no number claims to be it.
    last = {count} if result.total_exact else set()
    shown = sorted(
        {1, *last}
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
    return IndexPageLinks(
        page_number=current,
        page_count=count,
        total=result.total,
        total_shown=result.total_shown,
        first_row=result.first_row,
        last_row=result.last_row,
        first_url=link(1),
        previous_url=link(current - 1) if 1 < current <= count else None,
        next_url=link(current + 1) if current < count else None,
        numbers=tuple(numbers) if count > 1 else (),
        last_url=link(count) if result.total_exact else None,
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


def sort_links(search: Params, current: Sort | None) -> dict[str, SortLink]:
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


def hidden_fields(state: ListState) -> list[tuple[str, str]]:
    """The search's filters as (name, value) pairs, one per value: the hidden fields of the
    form that stores a search too long for a link (with the columns and the open view)."""
    return form_fields(state.link_params())


def form_fields(params: Mapping[str, str | list[str]]) -> list[tuple[str, str]]:
    """A search's link parameters as a stored search's form fields, one per value."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if name in FILTER_PARAMS or name in ("limit", "columns", "view"):
            pairs += [(name, v) for v in ([value] if isinstance(value, str) else value) if v]
    return pairs
