"""Reading the lists the customer page asks for (contracts, balances, alerts, usage): pages
followed within bounds, each item checked on its own.

Metronome's answers are untrusted input. A list is read page after page up to a number of
items and of pages; beyond either, the caller shows what it has and says "more in
Metronome". A cursor sent twice is an error, never a loop. An item that cannot be read is
left out and counted, so one odd commit does not hide the other nine, and the page says how
many it could not show.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from customers.metronome.errors import MalformedResponse
from customers.metronome.models import CreditType
from customers.metronome.wire import read_text

T = TypeVar("T")

# Metronome's built-in credit type for US dollars, the unit of a contract's amounts when the
# contract names none.
USD_CENTS = CreditType(id="2714e483-4ff1-48e4-9e25-ac732e8f24f2", name="USD (cents)")
# Larger than any real balance (ten trillion dollars in cents): beyond it, a number is broken.
MAX_AMOUNT = 1e15
# Errors an item reader may raise for a field that is missing or of the wrong shape.
ITEM_ERRORS = (AttributeError, KeyError, TypeError, ValueError, OverflowError)


@dataclass(frozen=True, slots=True)
class Bounded(Generic[T]):
    """A list as far as the dashboard read it: `more` when Metronome holds more than
    `items`, `unreadable` items Metronome sent that could not be read (and are not shown)."""

    items: tuple[T, ...]
    more: bool = False
    unreadable: int = 0


def amount(value: object) -> float:
    """A finite amount no larger than MAX_AMOUNT either way."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_AMOUNT:
        raise ValueError("amount out of range")
    return number


def optional_amount(value: object) -> float | None:
    return None if value is None else amount(value)


def optional_text(value: object) -> str | None:
    return None if value is None else read_text(value)


def credit_type_or_usd(data: object) -> CreditType:
    return USD_CENTS if data is None else CreditType.from_wire(data)


def page_of(
    body: object, cursor_field: str, what: str, *, or_field: str | None = None
) -> tuple[list[Any], str | None]:
    """A page's items and the cursor of the next one (`cursor_field`, else `or_field`), the
    page itself checked."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedResponse(
            f"Metronome sent a list of {what} the dashboard could not read. "
            "If this keeps happening, tell the dashboard's developers."
        )
    cursor = body.get(cursor_field)
    if cursor is None and or_field is not None:
        cursor = body.get(or_field)
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedResponse(f"Metronome sent a page cursor for {what} that is not text.")
    return body["data"], cursor or None


def collect(
    fetch: Callable[[str | None], tuple[list[Any], str | None]],
    read: Callable[[Mapping[str, Any]], T],
    *,
    what: str,
    max_items: int,
    max_pages: int,
    max_page_items: int,
) -> Bounded[T]:
    """Follow `fetch(cursor) -> (items, next cursor)` from the first page, reading each item
    with `read`, until the list ends, `max_items` are read or `max_pages` fetched."""
    items: list[T] = []
    unreadable = 0
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(max_pages):
        raw, next_cursor = fetch(cursor)
        if len(raw) > max_page_items:
            raise MalformedResponse(
                f"Metronome sent {len(raw):,} {what} on one page, more than the "
                f"{max_page_items:,} the dashboard reads; it shows no page that large."
            )
        for item in raw:
            if len(items) == max_items:
                return Bounded(tuple(items), more=True, unreadable=unreadable)
            try:
                if not isinstance(item, dict):
                    raise TypeError("an item must be an object")
                items.append(read(item))
            except ITEM_ERRORS:
                unreadable += 1
        if not next_cursor:
            return Bounded(tuple(items), more=False, unreadable=unreadable)
        if next_cursor in seen:
            raise MalformedResponse(
                f"Metronome sent a page cursor for {what} it had sent before; following it "
                "would never end."
            )
        seen.add(next_cursor)
        cursor = next_cursor
    return Bounded(tuple(items), more=True, unreadable=unreadable)
