"""A customer as one row of the customers table: every value ready to show.

Django's template engine spends microseconds on each variable lookup and each `date`
filter; 100 rows of raw `Customer`s made the table about 90% of the page's time. Here dates
are formatted once, links built once and the status spelled out, so the table (a Jinja2
template, templates/jinja2/customers/_table.html) only prints strings (see
bench/profile_table.py for the numbers).

Metronome's data is outside input: every string is capped for display, so one hostile
name or a customer with thousands of aliases cannot blow up the page. The CSV export and the
customer view show the values whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from django.conf import settings
from django.urls import reverse

from customers.index.live import LiveCustomer
from customers.metronome import Customer

MAX_SHOWN_CHARS = 120  # longer names, IDs and aliases end in "…"
MAX_SHOWN_ALIASES = 20  # past these, "+N" still counts them all
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
BILLABLE_LABELS = {"billable": "Billable", "unbillable": "Unbillable"}


@dataclass(frozen=True, slots=True)
class CustomerRow:
    # The whole ID, for the row's data-customer-id (the page's contract with outside
    # scripts); `id` is the one shown, capped like every other shown value.
    key: str
    id: str
    name: str
    detail_url: str
    metronome_url: str
    first_alias: str  # the first ingest alias, or the external ID when there are none
    more_aliases: tuple[str, ...]  # the rest, behind "+N"
    more_count: int
    salesforce_id: str
    salesforce_url: str  # empty without SALESFORCE_BASE_URL
    billable: str  # "billable", "unbillable" or "unset": the badge's modifier
    billable_label: str
    # Dates as "26 Nov 2026" in UTC, like every time on the dashboard; "" when absent.
    billable_since: str
    created: str
    updated: str
    archived: str
    # Set when Metronome's answer differs from the index's in a way the search relied on:
    # "archived since the index was updated", "no longer in Metronome".
    note: str = ""
    # For a pasted-ID search: the pasted ID (as pasted) this row matched.
    matched_as: str = ""


def customer_rows(customers: Iterable[Customer]) -> list[CustomerRow]:
    list_url = reverse("customers:list")
    app_url = settings.METRONOME_APP_URL
    salesforce_url = settings.SALESFORCE_BASE_URL
    return [customer_row(customer, list_url, app_url, salesforce_url) for customer in customers]


def live_rows(customers: Iterable[LiveCustomer]) -> list[CustomerRow]:
    """Rows of an index search's page, re-read from Metronome, each with its note."""
    list_url = reverse("customers:list")
    app_url = settings.METRONOME_APP_URL
    salesforce_url = settings.SALESFORCE_BASE_URL
    return [
        customer_row(live.customer, list_url, app_url, salesforce_url, note=live.note)
        for live in customers
    ]


def metronome_customer_url(app_url: str, customer_id: str) -> str:
    """The customer in Metronome's own web app."""
    return f"{app_url}/customers/{quote(customer_id, safe='')}"


def salesforce_account_url(salesforce_base_url: str, salesforce_id: str) -> str:
    """The account in Salesforce, or "" without SALESFORCE_BASE_URL or an ID. The ID is
    Metronome's text, quoted whole: one of `../../secur/logout.jsp` must not walk the org's
    paths (Django's `urlencode` filter leaves `/` as it is)."""
    if not (salesforce_id and salesforce_base_url):
        return ""
    return f"{salesforce_base_url}/lightning/r/Account/{quote(salesforce_id, safe='')}/view"


def customer_row(
    customer: Customer, list_url: str, app_url: str, salesforce_base_url: str, *, note: str = ""
) -> CustomerRow:
    """A customer's cells and links as the table shows them; `list_url` is the customers
    page's own path (reverse("customers:list")), under which each customer's view is."""
    aliases = list(customer.ingest_aliases)
    if customer.external_id and customer.external_id not in customer.ingest_aliases:
        aliases.append(customer.external_id)
    salesforce_id = customer.salesforce_account_id or ""
    status = customer.billable_status
    billable = status.value.value if status else "unset"
    quoted_id = quote(customer.id, safe="")
    # Positional, in the fields' order: 18 keyword arguments cost a dataclass's __init__
    # about 2 µs more, 100 times a page.
    return CustomerRow(
        customer.id,  # key
        _capped(customer.id),  # id
        _capped(customer.name),  # name
        # From the root, not relative to the page: with a customer's panel open the page's
        # address is that customer's, under which a relative link leads nowhere (a 404).
        f"{list_url}{quoted_id}/",  # detail_url
        f"{app_url}/customers/{quoted_id}",  # metronome_url
        _capped(aliases[0]) if aliases else "",  # first_alias
        tuple(_capped(alias) for alias in aliases[1 : MAX_SHOWN_ALIASES + 1]),  # more_aliases
        max(len(aliases) - 1, 0),  # more_count
        _capped(salesforce_id),  # salesforce_id
        salesforce_account_url(salesforce_base_url, salesforce_id),  # salesforce_url
        billable,  # billable
        BILLABLE_LABELS.get(billable, "Not set"),  # billable_label
        _date(status.effective_at) if status and status.effective_at else "",  # billable_since
        _date(customer.created_at),  # created
        _date(customer.updated_at),  # updated
        _date(customer.archived_at) if customer.archived_at else "",  # archived
        note,  # note
    )


def _capped(text: str) -> str:
    return isolated(text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…")


# Embeddings, overrides and isolates (U+202A-202E, U+2066-2069): a name holding a
# right-to-left override would reverse the text after it, in its cell, a heading or the
# window's title.
_DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def isolated(text: str) -> str:
    """`text` as is, or, when it holds a direction control, without them and between a
    first-strong isolate and its pop (a <bdi> in plain text, so it works in a <title> and an
    attribute too). The controls go: a pop of its own would end the isolate early and let
    an override after it reverse the rest of the line."""
    if text.isascii() or not _DIRECTION_CONTROLS.search(text):
        return text
    return f"\u2068{_DIRECTION_CONTROLS.sub('', text)}\u2069"


def _date(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
