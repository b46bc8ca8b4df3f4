"""`GET /v1/customers/{id}/invoices`: one page of a customer's invoices; and one invoice with
its line items, `GET /v1/customers/{id}/invoices/{invoice_id}` (its PDF: invoice_pdf.py).

Reference: https://docs.metronome.com/api-reference/invoices/list-invoices and the official
SDK's `client.v1.customers.invoices.retrieve`."""

from __future__ import annotations

from urllib.parse import quote

from customers.metronome.bounds import PageBound
from customers.metronome.errors import (
    BadRequest,
    MalformedResponse,
    invoice_not_found,
    not_found_or,
)
from customers.metronome.http import MAX_CONSECUTIVE_EMPTY_PAGES, HTTPClient
from customers.metronome.models import MAX_PAGE_SIZE, Invoice, InvoicePage


def invoice_path(customer_id: str, invoice_id: str) -> str:
    return f"/v1/customers/{quote(customer_id, safe='')}/invoices/{quote(invoice_id, safe='')}"


class InvoicesClient(HTTPClient):
    def get_invoice(self, customer_id: str, invoice_id: str) -> Invoice:
        """One invoice with its line items; InvoiceNotFound when Metronome has no such one."""
        try:
            answer = self._get(invoice_path(customer_id, invoice_id), {})
        except BadRequest as error:
            if error.status == 404:
                raise invoice_not_found(invoice_id) from None
            raise
        if not isinstance(answer, dict):
            raise MalformedResponse("Metronome sent an invoice the dashboard could not read.")
        invoice = Invoice.from_wire(answer.get("data"))
        if invoice.id != invoice_id or invoice.customer_id != customer_id:
            raise MalformedResponse("Metronome sent another invoice than the one asked for.")
        return invoice

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
        # Empty pages are few (the loop's count) and cheap, but each may wait out retries:
        # the same time budget as every loop over pages.
        bound = PageBound(self._paging_limits, what="invoices")
        unreadable = 0
        for _ in range(MAX_CONSECUTIVE_EMPTY_PAGES + 1):
            # The documented default order is ambiguous, so it is always sent.
            params = {"limit": str(limit), "sort": sort}
            if cursor:
                params["next_page"] = cursor
            try:
                items, next_page = self._get_page(path, params, limit=limit, noun="invoice")
            except BadRequest as error:
                raise not_found_or(error, customer_id) from None
            bound.take(len(items))
            invoices: list[Invoice] = []
            for item in items:
                try:
                    invoices.append(Invoice.from_wire(item))
                except MalformedResponse:
                    unreadable += 1
            if invoices or unreadable or not next_page:
                return InvoicePage(tuple(invoices), next_page, unreadable)
            if next_page in seen:
                break
            seen.add(next_page)
            cursor = next_page
        raise MalformedResponse(
            "Metronome kept sending empty pages of invoices; they could not be listed."
        )
