"""`GET /v1/customers/{id}/invoices`: one page of a customer's invoices.

Reference: https://docs.metronome.com/api-reference/invoices/list-invoices"""

from __future__ import annotations

from urllib.parse import quote

from customers.metronome.errors import BadRequest, MalformedResponse, not_found_or
from customers.metronome.http import MAX_CONSECUTIVE_EMPTY_PAGES, HTTPClient
from customers.metronome.models import MAX_PAGE_SIZE, Invoice, InvoicePage


class InvoicesClient(HTTPClient):
    def list_invoices(
        self,
        customer_id: str,
        *,
        limit: int = 10,
        sort: str = "date_desc",
        cursor: str | None = None,
    ) -> InvoicePage:
        """One page of a customer's invoices, newest first by default.

        Metronome may answer an empty page that still has a cursor; those are followed, so
        an empty result always means there are no (more) invoices."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
        if sort not in ("date_asc", "date_desc"):
            raise ValueError(f"sort must be date_asc or date_desc, got {sort!r}")
        path = f"/v1/customers/{quote(customer_id, safe='')}/invoices"
        seen: set[str] = set()
        for _ in range(MAX_CONSECUTIVE_EMPTY_PAGES + 1):
            # The documented default order is ambiguous, so it is always sent.
            params = {"limit": str(limit), "sort": sort}
            if cursor:
                params["next_page"] = cursor
            try:
                items, next_page = self._get_page(path, params, limit=limit, noun="invoice")
            except BadRequest as error:
                raise not_found_or(error, customer_id) from None
            invoices = tuple(Invoice.from_wire(item) for item in items)
            if invoices or not next_page:
                return InvoicePage(invoices=invoices, next_page=next_page)
            if next_page in seen:
                break
            seen.add(next_page)
            cursor = next_page
        raise MalformedResponse(
            "Metronome kept sending empty pages of invoices; they could not be listed."
        )
