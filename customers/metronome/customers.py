"""`GET /v1/customers` and `GET /v1/customers/{id}`: one page, every page (fetched ahead,
each customer kept once, never in circles), or one customer. Pasted-ID searches longer than
the API takes at once are `customers/search.py`'s job.

Reference: https://docs.metronome.com/api-reference/customers/list-customers"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from functools import partial
from urllib.parse import quote

from customers.metronome.bounds import PageBound
from customers.metronome.errors import BadRequest, MalformedResponse, not_found_or
from customers.metronome.http import MAX_CONSECUTIVE_EMPTY_PAGES, HTTPClient, logger
from customers.metronome.models import (
    MAX_IDS_PER_REQUEST,
    MAX_PAGE_SIZE,
    Customer,
    CustomerPage,
    CustomerQuery,
    Row,
    RowPage,
)
from customers.metronome.prefetch import prefetched
from customers.metronome.wire import wire_id


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
        """Every page of the query, to the end, as `Customer`s. The next page is fetched
        while the caller works on the current one, so a consumer that writes rows waits on
        the API once. `max_rows`: see `follow_cursors`."""
        pages = self.iter_read_pages(
            query, Customer.from_wire, page_size=page_size, max_rows=max_rows
        )
        try:
            for page in pages:
                yield CustomerPage(page.rows, page.next_page)
        finally:
            pages.close()  # stops the prefetch

    def iter_read_pages(
        self,
        query: CustomerQuery,
        read: Callable[[object], Row],
        *,
        page_size: int = MAX_PAGE_SIZE,
        max_rows: int | None = None,
    ) -> Generator[RowPage[Row], None, None]:
        """`iter_pages` with each customer's JSON read by `read`, which must check it as
        `Customer.from_wire` does and raise MalformedResponse where that would."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        _refuse_batches(query)
        # One thread fetches page after page into a one-page queue (so at most two pages
        # ahead), sending each request as soon as it has the cursor.
        yield from prefetched(
            [partial(self.follow_cursors, query, page_size, read, max_rows=max_rows)],
            ahead=1,
            thread_name="metronome-prefetch",
        )

    def follow_cursors(
        self,
        query: CustomerQuery,
        page_size: int,
        read: Callable[[object], Row],
        *,
        max_rows: int | None = None,
    ) -> Iterator[RowPage[Row]]:
        """The pages of one API listing, fetched in the caller's thread, each customer read
        by `read` and kept once, refusing to go round in circles: a cursor sent twice, or
        pages of nothing but customers already sent, mean the listing would never end (or
        end with rows twice), so it fails visibly. Nor does it go on for ever with new
        cursors and new customers: past `max_rows` (what the caller knows is plausible),
        PAGING_MAX_ROWS or PAGING_MAX_SECONDS it raises PagingLimitReached (bounds.py).
        `iter_read_pages` is the same with the next page fetched ahead."""
        bound = PageBound(self._paging_limits, max_rows=max_rows)
        cursor: str | None = None
        seen_cursors: set[str] = set()
        # hash() of each ID rather than the ID: 100,000 small ints, not 100,000 strings.
        seen_customers: set[int] = set()
        empty_run = 0
        while True:
            items, next_page = self._fetch_wire_page(query, page_size, cursor)
            bound.take(len(items))
            rows = [read(item) for item in items]  # each checked before any is kept
            ids = [hash(wire_id(item)) for item in items]
            kept: list[Row] = []
            for id_, row in zip(ids, rows, strict=True):
                if id_ not in seen_customers:  # also twice within this page: kept once
                    seen_customers.add(id_)
                    kept.append(row)
            fresh = tuple(kept)
            if items and not fresh:
                raise MalformedResponse(
                    "Metronome sent a page of customers it had already sent; the list could "
                    "not be completed."
                )
            if len(fresh) < len(items):
                logger.warning(
                    "Metronome repeated %d customers of earlier pages; each is kept once",
                    len(items) - len(fresh),
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
            if items and next_page in seen_cursors:
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
        return Customer.from_wire(body.get("data"))

    def _fetch_page(self, query: CustomerQuery, limit: int, cursor: str | None) -> CustomerPage:
        items, next_page = self._fetch_wire_page(query, limit, cursor)
        customers = tuple(Customer.from_wire(item) for item in items)
        if len({customer.id for customer in customers}) < len(customers):
            # The same customer twice on one page: shown once.
            logger.warning("Metronome repeated customers within one page; each is kept once")
            customers = tuple({c.id: c for c in reversed(customers)}.values())[::-1]
        return CustomerPage(customers, next_page)

    def _fetch_wire_page(
        self, query: CustomerQuery, limit: int, cursor: str | None
    ) -> tuple[list[object], str | None]:
        """One page's customers as Metronome sent them (each still to be read) and its
        cursor, the page itself checked: a list, a string cursor, no more than `limit`."""
        params = {**query.wire_params(), "limit": str(limit)}
        if cursor:
            params["next_page"] = cursor
        return self._get_page("/v1/customers", params, limit=limit, noun="customer")


def _refuse_batches(query: CustomerQuery) -> None:
    if query.needs_batches:
        raise ValueError(
            f"Metronome takes at most {MAX_IDS_PER_REQUEST} IDs per filter; "
            "customers.search looks longer lists up in batches"
        )
