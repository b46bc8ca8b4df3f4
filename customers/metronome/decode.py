"""A page of `GET /v1/customers` read in one pass in C (msgspec), for the listings that read
every customer: paging, the export, the pasted-ID lookups; and for the index sync, each
customer's id and the bytes of its JSON exactly as sent, read in full only when it changed.

Parsing the JSON into dicts and then checking each field in Python (`parse_json`, then
`Customer.from_wire`) cost 6-7 µs a customer, three times what parsing alone costs; msgspec
parses and checks against the types below in one pass, about 1 µs a customer with the
`Customer`s built (bench/README.md, fifth pass).

This is a fast path, not a second set of rules. It declines (returns None) every page it
cannot vouch for reading as the checked readers would, and the caller reads that page the
checked way, with their messages: a field missing or of the wrong type, an unknown billable
status, a timestamp without a time zone, anything that is not valid UTF-8 JSON (msgspec
refuses every lone surrogate, escaped or not, which `parse_json` replaces; it checks the
UTF-8 only of the strings it keeps, so the bytes are checked whole first), years at the
ends of the calendar (`read_datetime` refuses a time that has no UTC), and a fraction of a
second past microseconds anywhere on the page (msgspec rounds it, `read_datetime` cuts it:
`23:59:59.9999996` on New Year's Eve would be another year).

Known, and left: in a field the dashboard does not read, an integer of more than 4,300
digits or nesting 995-999 deep is skipped here and refused by `json.loads`. The list reads
such a customer; its page (`get_customer`, the checked way) says Metronome sent something
it could not read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

from customers.metronome.errors import MalformedResponse
from customers.metronome.models import (
    UNREADABLE_CUSTOMER,
    BillableStatus,
    CurrentBillableStatus,
    Customer,
    CustomerPage,
)
from customers.metronome.wire import parse_json

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


class _Listed(msgspec.Struct, gc=False):
    id: str


class _ListedPage(msgspec.Struct, gc=False):
    data: list[msgspec.Raw]
    next_page: str | None = None


_PAGE = msgspec.json.Decoder(_CustomerPage)
_CUSTOMER = msgspec.json.Decoder(_Customer)
_LISTED_PAGE = msgspec.json.Decoder(_ListedPage)
_LISTED = msgspec.json.Decoder(_Listed)


# Years where a time zone can leave a time with no UTC, which `read_datetime` refuses.
_CALENDAR_ENDS = frozenset({1, 9999})
# Seven digits after a point, in a timestamp or not: rare enough that any such page is
# read the checked way rather than looked at closer.
_FRACTION_PAST_MICROSECONDS = re.compile(rb"\.[0-9]{7}")


def _valid_utf8(content: bytes) -> bool:
    """Every byte, including those of fields msgspec skips, as `json.loads` requires. About
    15 µs a page of 100 with accented names; nothing for an ASCII one."""
    if content.isascii():
        return True
    try:
        content.decode()
    except UnicodeDecodeError:
        return False
    return True


def _timestamps_read_alike(content: bytes) -> bool:
    return _FRACTION_PAST_MICROSECONDS.search(content) is None


def customer_page(content: bytes) -> CustomerPage | None:
    """The customers and the next page's cursor of a list answer, or None: read it the
    checked way (`parse_json`, then `Customer.from_wire` for each)."""
    if not (_valid_utf8(content) and _timestamps_read_alike(content)):
        return None
    try:
        page = _PAGE.decode(content)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    if any(map(_at_a_calendar_end, page.data)):
        return None
    customers = tuple([_built(c) for c in page.data])
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


def _built(c: _Customer) -> Customer:
    # Positional, in the fields' order, as `from_wire` builds it (cheaper).
    status = c.current_billable_status
    return Customer(
        c.id,
        c.name,
        c.external_id,
        c.ingest_aliases,
        c.custom_fields,
        c.customer_config.salesforce_account_id or None,
        c.created_at,
        c.updated_at,
        c.archived_at,
        None if status is None else CurrentBillableStatus(status.value, status.effective_at),
    )


def customer(content: bytes) -> Customer:
    """One customer's JSON (a span `listed_page` cut) read in full: in C when it is
    well-formed, else by `Customer.from_wire`, with every check and its message."""
    if not (_valid_utf8(content) and _timestamps_read_alike(content)):
        return Customer.from_wire(parse_json(content))
    try:
        decoded = _CUSTOMER.decode(content)
    except (msgspec.DecodeError, RecursionError):
        return Customer.from_wire(parse_json(content))
    if _at_a_calendar_end(decoded):
        return Customer.from_wire(parse_json(content))
    return _built(decoded)


@dataclass(frozen=True, slots=True)
class ListedPage:
    """A page of customers as the index sync first reads it: each one's id, and the bytes
    of its JSON exactly as Metronome sent them (equal bytes, the same customer)."""

    ids: list[str]
    spans: list[bytes]
    next_page: str | None


def listed_page(content: bytes) -> ListedPage | None:
    """Each customer's id and JSON span, or None: read the page the checked way
    (`parse_json`, then `listed_items`)."""
    if not _valid_utf8(content):
        return None
    try:
        page = _LISTED_PAGE.decode(content)
        ids = [_LISTED.decode(span).id for span in page.data]
    except (msgspec.DecodeError, RecursionError):
        return None
    return ListedPage(ids, [bytes(span) for span in page.data], page.next_page or None)


_SPAN_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def listed_items(items: list[object], next_page: str | None) -> ListedPage:
    """`listed_page` for a page's items parsed the checked way: each must be an object with
    a string id, else MalformedResponse; its span is its JSON written again, the same
    bytes for the same values every time."""
    ids: list[str] = []
    spans: list[bytes] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise MalformedResponse(UNREADABLE_CUSTOMER)
        # By json.dumps, which writes NaN and Infinity back as they came: written as null
        # (as msgspec writes them), a customer the checked readers refuse would be read
        # as one they accept, with the fingerprint of its valid self.
        spans.append(_SPAN_ENCODER.encode(item).encode())
        ids.append(item["id"])
    return ListedPage(ids, spans, next_page)
