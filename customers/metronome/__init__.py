"""The dashboard's only code that talks to Metronome.

Reference: https://docs.metronome.com/api-reference/customers/list-customers
and ../shared/metronome-api.md for the wire format as the official SDKs speak it.

- `errors.py`: the handful of `MetronomeError`s whose messages a support person can act on;
- `wire.py`: reading untrusted answers: the JSON, and checked readers of each field;
- `models.py`: the typed values callers get (`Customer`, `CustomerPage`, `Invoice`...) and
  the `CustomerQuery` of the customer list;
- `http.py`: the pooled httpx.Client, the SDKs' retry rules, time and size limits;
- `customers.py`, `invoices.py` (and `invoice_pdf.py`), `contracts.py`, `balances.py`,
  `alerts.py`, `usage.py`: one file per resource area, each with its typed values;
  `client.py` joins them; `lists.py` reads the customer page's lists within bounds;
- `prefetch.py`: fetching listings ahead of their consumer, in the background (the sync);
- `bounds.py`: the ceiling on rows and time of every loop over pages.

Callers never see httpx or JSON. Which Metronome (the real one or the sandbox) and the
process's one client are `customers/wiring.py`'s.
"""

from customers.metronome.bounds import PagingLimitReached, PagingLimits, TooManyRows
from customers.metronome.client import MetronomeClient
from customers.metronome.errors import (
    BadRequest,
    CustomerNotFound,
    InvalidCursor,
    InvoiceNotFound,
    MalformedResponse,
    MetronomeError,
    MetronomeTimeout,
    MetronomeUnavailable,
    RateLimited,
    TokenRejected,
)
from customers.metronome.models import (
    BILLABLE_STATUS_BY_VALUE,
    MAX_IDS_PER_REQUEST,
    MAX_PAGE_SIZE,
    UNREADABLE_CUSTOMER,
    BillableStatus,
    CreditType,
    CurrentBillableStatus,
    Customer,
    CustomerPage,
    CustomerQuery,
    Invoice,
    InvoiceLineItem,
    InvoicePage,
    RowPage,
)

__all__ = [
    "BILLABLE_STATUS_BY_VALUE",
    "MAX_IDS_PER_REQUEST",
    "MAX_PAGE_SIZE",
    "UNREADABLE_CUSTOMER",
    "BadRequest",
    "BillableStatus",
    "CreditType",
    "CurrentBillableStatus",
    "Customer",
    "CustomerNotFound",
    "CustomerPage",
    "CustomerQuery",
    "InvalidCursor",
    "Invoice",
    "InvoiceLineItem",
    "InvoiceNotFound",
    "InvoicePage",
    "MalformedResponse",
    "MetronomeClient",
    "MetronomeError",
    "MetronomeTimeout",
    "MetronomeUnavailable",
    "PagingLimitReached",
    "PagingLimits",
    "RateLimited",
    "RowPage",
    "TokenRejected",
    "TooManyRows",
]
