"""`GET /v1/customers` and `GET /v1/customers/{id}`: one page, every page (each customer
kept once, never in circles), or one customer. Pasted-ID searches longer than
the API takes at once are `customers/search.py`'s job.

Reference: https://docs.metronome.com/api-reference/customers/list-customers"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from urllib.parse import quote

from customers.metronome import decode
from customers.metronome.bounds import PageBound
from customers.metronome.errors import BadRequest, MalformedResponse, not_found_or
from customers.metronome.http import (
    MAX_CONSECUTIVE_EMPTY_PAGES,
    HTTPClient,
    check_page_size,
    checked_page,
    logger,
)
from customers.metronome.models import (
    MAX_IDS_PER_REQUEST,
    MAX_PAGE_SIZE,
    Customer,
    CustomerPage,
    CustomerQuery,
    Row,
    RowPage,
)
from customers.metronome.redaction import mentions_token
from customers.metronome.seen import SeenKeys
from customers.metronome.wire import parse_json


class CustomersClient(HTTPClient):
    def list_customers(
        self, query: CustomerQuery, *, limit: int = 50, cursor: str | None = None
    ) -> CustomerPage:
        """One page of customers. `cursor` is the previous page's `next_page`."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
        _refuse_batches(query)
        return self._fetch_page(query, limit, cursor)

    def iter_pages(
        self,
        query: CustomerQuery,
        *,
        page_size: int = MAX_PAGE_SIZE,
        max_rows: int | None = None,
    ) -> Generator[CustomerPage, None, None]:
        """Every page of the query, to the end, as `Customer`s, each fetched when the caller
        asks for it. `max_rows`: see `follow_customers`.

        In the caller's thread: a thread fetching the next page while the caller wrote the
        current one saved nothing measurable at 20 ms a call, and with no latency its
        hand-overs of the interpreter lock cost an export a sixth more CPU than it saved
        (bench/README.md, twentieth pass)."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        _refuse_batches(query)
        for page in self.follow_customers(query, page_size, max_rows=max_rows):
            yield CustomerPage(page.rows, page.next_page)

    def follow_customers(
        self, query: CustomerQuery, page_size: int, *, max_rows: int | None = None
    ) -> Iterator[RowPage[Customer]]:
        """The pages of one API listing as `Customer`s, fetched in the caller's thread, each
        customer kept once, never in circles (see `follow_listed`)."""

        def fetch(cursor: str | None) -> tuple[Sequence[Customer], list[str], str | None]:
            page = self._fetch_customers(query, page_size, cursor)
            customers, next_page = page.customers, page.next_page
            return customers, [customer.id for customer in customers], next_page

        return self._follow(fetch, max_rows)

    def follow_listed(
        self,
        query: CustomerQuery,
        page_size: int,
        read: Callable[[str, bytes], Row],
        *,
        max_rows: int | None = None,
    ) -> Iterator[RowPage[Row]]:
        """The pages of one API listing, fetched in the caller's thread, each customer given
        to `read` as its id and the bytes of its JSON as Metronome sent them (the index sync
        fingerprints those, and reads a customer in full with `decode.customer` only when it
        changed, or every one kept in a first sync), and kept once, refusing to go round in
        circles: a cursor sent twice, or pages of nothing but customers already sent, mean
        the listing would never end (or end with rows twice), so it fails visibly. Nor does
        it go on for ever with new cursors and new customers: past `max_rows` (what the
        caller knows is plausible), PAGING_MAX_ROWS or PAGING_MAX_SECONDS it raises
        PagingLimitReached (bounds.py)."""

        def fetch(cursor: str | None) -> tuple[Sequence[Row], list[str], str | None]:
            page = self._fetch_listed(query, page_size, cursor)
            rows = [read(id_, span) for id_, span in zip(page.ids, page.spans, strict=True)]
            return rows, page.ids, page.next_page

        return self._follow(fetch, max_rows)

    def _follow(
        self,
        fetch: Callable[[str | None], tuple[Sequence[Row], list[str], str | None]],
        max_rows: int | None,
    ) -> Iterator[RowPage[Row]]:
        """`fetch(cursor) -> (rows, their customers' IDs, next cursor)` from the first page
        to the last, within the bounds `follow_listed` describes."""
        bound = PageBound(self._paging_limits, max_rows=max_rows)
        cursor: str | None = None
        seen_cursors: set[str] = set()
        # hash() of each ID rather than the ID (seen.py).
        seen_customers = SeenKeys()
        empty_run = 0
        while True:
            rows, ids, next_page = fetch(cursor)
            bound.take(len(rows))
            # Twice within this page too: kept once.
            new = seen_customers.add_all([hash(id_) for id_ in ids])
            fresh = (
                tuple(rows)
                if all(new)
                else tuple(row for row, is_new in zip(rows, new, strict=True) if is_new)
            )
            if rows and not fresh:
                raise MalformedResponse(
                    "Metronome sent a page of customers it had already sent; the list could "
                    "not be completed."
                )
            if len(fresh) < len(rows):
                logger.warning(
                    "Metronome repeated %d customers of earlier pages; each is kept once",
                    len(rows) - len(fresh),
                )
            empty_run = 0 if fresh else empty_run + 1
            if empty_run > MAX_CONSECUTIVE_EMPTY_PAGES:
                raise MalformedResponse(
                    "Metronome kept sending empty pages; the list could not be completed."
                )
            yield RowPage(fresh, next_page)
            if not next_page:
                return
            # An empty page may hand back the cursor it was asked with (keep asking: the
            # empty run above bounds that); after rows, a cursor seen before is a cycle.
            if rows and next_page in seen_cursors:
                raise MalformedResponse(
                    "Metronome sent a page cursor it had sent before; following it would "
                    "never end, so the list could not be completed."
                )
            seen_cursors.add(next_page)
            cursor = next_page

    def get_customer(self, customer_id: str) -> Customer:
        """One customer, archived or not (`GET /v1/customers/{id}`)."""
        try:
            body = self._get(f"/v1/customers/{quote(customer_id, safe='')}", {})
        except BadRequest as error:
            raise not_found_or(error, customer_id) from None
        if not isinstance(body, dict):
            raise MalformedResponse("Metronome sent a customer the dashboard could not read.")
        customer = Customer.from_wire(body.get("data"))
        # Another customer's values under this one's address would be believed, as an
        # invoice's would (checked the same way in invoices.py).
        if _uuid_value(customer.id) != _uuid_value(customer_id):
            raise MalformedResponse("Metronome sent another customer than the one asked for.")
        return customer

    def _fetch_page(self, query: CustomerQuery, limit: int, cursor: str | None) -> CustomerPage:
        page = self._fetch_customers(query, limit, cursor)
        # The list page puts the cursor in its Next link, which reaches the browser (an
        # export's and a sync's cursors never leave the server). Looked at as written and one
        # encoding deep, as a cursor is often base64 of JSON: 0.6 ms; every nesting, 1.2 ms.
        if page.next_page and mentions_token(page.next_page, self._token, levels=1):
            raise MalformedResponse("Metronome sent a page link the dashboard cannot use.")
        customers = page.customers
        if len({customer.id for customer in customers}) < len(customers):
            # The same customer twice on one page: shown once.
            logger.warning("Metronome repeated customers within one page; each is kept once")
            customers = tuple({c.id: c for c in reversed(customers)}.values())[::-1]
            return CustomerPage(customers, page.next_page)
        return page

    def _fetch_customers(
        self, query: CustomerQuery, limit: int, cursor: str | None
    ) -> CustomerPage:
        """One page's customers and its cursor: read in C when the page is well-formed
        (`decode.customer_page`), else checked item by item by `Customer.from_wire`, whose
        messages say what was wrong."""
        body = self._request(
            "GET", "/v1/customers", _page_params(query, limit, cursor), decode=_typed_or_json
        )
        if isinstance(body, CustomerPage):
            check_page_size(len(body.customers), limit=limit, noun="customer")
            return body
        items, next_page = checked_page(body, limit=limit, noun="customer")
        return CustomerPage(tuple([Customer.from_wire(item) for item in items]), next_page)

    def _fetch_listed(
        self, query: CustomerQuery, limit: int, cursor: str | None
    ) -> decode.ListedPage:
        """One page's customer IDs and JSON spans (`decode.listed_page`), else the page
        checked the slow way, each item an object with a string id."""
        body = self._request(
            "GET", "/v1/customers", _page_params(query, limit, cursor), decode=_listed_or_json
        )
        if isinstance(body, decode.ListedPage):
            check_page_size(len(body.ids), limit=limit, noun="customer")
            return body
        items, next_page = checked_page(body, limit=limit, noun="customer")
        return decode.listed_items(items, next_page)


def _uuid_value(text: str) -> str:
    """A customer ID as compared: one UUID in any of its spellings, else the text."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def _page_params(query: CustomerQuery, limit: int, cursor: str | None) -> dict[str, str]:
    params = {**query.wire_params(), "limit": str(limit)}
    if cursor:
        params["next_page"] = cursor
    return params


def _typed_or_json(content: bytes) -> CustomerPage | object:
    """A list answer read in C, or its JSON to be checked the slow way."""
    return decode.customer_page(content) or parse_json(content)


def _listed_or_json(content: bytes) -> decode.ListedPage | object:
    return decode.listed_page(content) or parse_json(content)


def _refuse_batches(query: CustomerQuery) -> None:
    if query.needs_batches:
        raise ValueError(
            f"Metronome takes at most {MAX_IDS_PER_REQUEST} IDs per filter; "
            "customers.search looks longer lists up in batches"
        )
