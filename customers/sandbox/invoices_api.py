"""What `GET /v1/customers/{id}/invoices` selects and in which order (the data itself is
`invoices.py`'s).

`GET /v1/customers/{id}/invoices` (invoices from `invoices.py`) makes these choices:
- `limit` defaults to 50 and `sort` to `date_asc` (the SDK's docstring says so);
- an invoice's date is its `issued_at`, or for an unissued one (a draft) the end of its
  billing period; ties are broken by ID;
- `starting_on` keeps invoices whose period starts at or after it, `ending_before` those
  whose period ends at or before it (a period's end is exclusive, so a November invoice
  ends at 1 December and `ending_before=<1 December>` keeps it);
- `status`, `type` and `credit_type_id` must be values Metronome knows, or it is a 400;
- the faults apply as to the list, empty pages (counted together with the list's) included.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .invoices import CREDIT_TYPES
from .wire import BadRequest, parse_timestamp

INVOICE_PARAMS = frozenset(
    {
        "limit",
        "next_page",
        "status",
        "type",
        "sort",
        "starting_on",
        "ending_before",
        "credit_type_id",
        "skip_zero_qty_line_items",
    }
)
INVOICE_STATUSES = frozenset({"DRAFT", "FINALIZED", "VOID"})
INVOICE_TYPES = frozenset({"USAGE", "USAGE_CONSOLIDATED", "SCHEDULED"})


def invoice_date(invoice: Mapping[str, Any]) -> tuple[datetime, str]:
    date = invoice.get("issued_at") or invoice["end_timestamp"]
    return datetime.fromisoformat(date), invoice["id"]


def select_invoices(
    invoices: tuple[Mapping[str, Any], ...], params: Mapping[str, str]
) -> list[Mapping[str, Any]]:
    """Filter, order and trim invoices as the query asks; 400 on values Metronome rejects."""
    status = params.get("status")
    if status is not None and status not in INVOICE_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(sorted(INVOICE_STATUSES))}")
    invoice_type = params.get("type")
    if invoice_type is not None and invoice_type not in INVOICE_TYPES:
        raise BadRequest(f"type must be one of {', '.join(sorted(INVOICE_TYPES))}")
    sort = params.get("sort", "date_asc")
    if sort not in ("date_asc", "date_desc"):
        raise BadRequest("sort must be date_asc or date_desc")
    credit_type_id = params.get("credit_type_id")
    if credit_type_id is not None and credit_type_id not in {c["id"] for c in CREDIT_TYPES}:
        raise BadRequest("credit_type_id is not a credit type of this account")
    skip_zero = params.get("skip_zero_qty_line_items", "false")
    if skip_zero not in ("true", "false"):
        raise BadRequest("skip_zero_qty_line_items must be true or false")
    starting_on = parse_timestamp("starting_on", params.get("starting_on"))
    ending_before = parse_timestamp("ending_before", params.get("ending_before"))

    selected = []
    for invoice in invoices:
        if status is not None and invoice["status"] != status:
            continue
        if invoice_type is not None and invoice["type"] != invoice_type:
            continue
        if credit_type_id is not None and invoice["credit_type"]["id"] != credit_type_id:
            continue
        start = datetime.fromisoformat(invoice["start_timestamp"])
        end = datetime.fromisoformat(invoice["end_timestamp"])
        if starting_on is not None and start < starting_on:
            continue
        if ending_before is not None and end > ending_before:
            continue
        if skip_zero == "true":
            items = [i for i in invoice["line_items"] if i.get("quantity", 1) != 0]
            invoice = {**invoice, "line_items": items}
        selected.append(invoice)
    if sort == "date_desc":
        selected.reverse()
    return selected
