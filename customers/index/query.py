"""A search of the index as a value: the form builds it, urlstate turns it into links, the
page and the CSV export run it."""

from __future__ import annotations

from dataclasses import dataclass

from customers.index.search import IndexFilters, Sort


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """A search of the index as the page's form validated it."""

    q: str
    filters: IndexFilters
    sort: Sort | None
