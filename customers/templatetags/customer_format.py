"""How the customer view shows Metronome's free text: whole, up to a bound.

The view shows values whole (the table caps them far shorter, see customers/display.py), but
Metronome's answers are outside input: one field of megabytes, or thousands of aliases, would
make a page of tens of megabytes. The CSV export always has every value whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from django import template

from customers.display import isolated

register = template.Library()

MAX_SHOWN_CHARS = 5_000
MAX_SHOWN_ITEMS = 200


@register.filter
def capped(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARS:
        return isolated(text)
    more = len(text) - MAX_SHOWN_CHARS
    return f"{isolated(text[:MAX_SHOWN_CHARS])}… ({more:,} more characters in the CSV)"


@register.filter
def first_items(items: Sequence[object]) -> Sequence[object]:
    return items[:MAX_SHOWN_ITEMS]


@register.filter
def items_beyond(items: Sequence[object]) -> int:
    return max(len(items) - MAX_SHOWN_ITEMS, 0)
