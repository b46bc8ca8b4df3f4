"""A page of `GET /v1/customers` read in one pass in C (msgspec), for the listings that read
every customer: paging, the export, the pasted-ID lookups.

Parsing the JSON into dicts and then checking each field in Python (`parse_json`, then
`Customer.from_wire`) cost 6-7 µs a customer, three times what parsing alone costs; msgspec
parses and checks against the types below in one pass, about 1 µs a customer with the
`Customer`s built (bench/README.md, fifth pass).

This is a fast path, not a second set of rules. It declines (returns None) every page it
cannot vouch for reading as the checked readers would, and the caller reads that page the
checked way, with their messages: a field missing or of the wrong type, an unknown billable
status, a timestamp without a time zone, anything that is not valid UTF-8 JSON (msgspec
refuses every lone surrogate, escaped or not, which `parse_json` replaces), and years at
the ends of the calendar (`read_datetime` refuses a time that has no UTC). Where the two
differ in the valid timestamps they accept, msgspec reads RFC 3339 more widely (a lowercase
`t` or `z`; a fraction past microseconds is rounded, not cut): the same instant, never a
wrong one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from customers.metronome.models import (
    BillableStatus,
    CurrentBillableStatus,
    Customer,
    CustomerPage,
)

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]


# The wire's shapes (metronome-api.md, CustomerDetail). A field without a default must be
# present, as `from_wire`'s `data[...]` requires it; `gc=False`: none of them holds a cycle.
class _CustomerConfig(msgspec.Struct, gc=False):
    salesforce_account_id: str | None


class _BillableStatus(msgspec.Struct, gc=False):
    value: BillableStatus
    effective_at: Timestamp | None = None


class _Customer(msgspec.Struct, gc=False):
    id: str
    name: str
    external_id: str
    ingest_aliases: tuple[str, ...]
    custom_fields: dict[str, str]
    customer_config: _CustomerConfig
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None
    current_billable_status: _BillableStatus | None = None


class _CustomerPage(msgspec.Struct, gc=False):
    data: list[_Customer]
    next_page: str | None = None


_PAGE = msgspec.json.Decoder(_CustomerPage)


# Years where a time zone can leave a time with no UTC, which `read_datetime` refuses.
_CALENDAR_ENDS = frozenset({1, 9999})


def customer_page(content: bytes) -> CustomerPage | None:
    """The customers and the next page's cursor of a list answer, or None: read it the
    checked way (`parse_json`, then `Customer.from_wire` for each)."""
    try:
        page = _PAGE.decode(content)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    if any(map(_at_a_calendar_end, page.data)):
        return None
    customers = tuple(
        [
            # Positional, in the fields' order, as `from_wire` builds it (cheaper).
            Customer(
                c.id,
                c.name,
                c.external_id,
                c.ingest_aliases,
                c.custom_fields,
                c.customer_config.salesforce_account_id or None,
                c.created_at,
                c.updated_at,
                c.archived_at,
                (
                    None
                    if (s := c.current_billable_status) is None
                    else CurrentBillableStatus(s.value, s.effective_at)
                ),
            )
            for c in page.data
        ]
    )
    return CustomerPage(customers, page.next_page or None)


def _at_a_calendar_end(c: _Customer) -> bool:
    status = c.current_billable_status
    return (
        c.created_at.year in _CALENDAR_ENDS
        or c.updated_at.year in _CALENDAR_ENDS
        or (c.archived_at is not None and c.archived_at.year in _CALENDAR_ENDS)
        or (
            status is not None
            and status.effective_at is not None
            and status.effective_at.year in _CALENDAR_ENDS
        )
    )
