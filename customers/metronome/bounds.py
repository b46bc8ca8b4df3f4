"""A ceiling on every loop over Metronome's pages.

Metronome's answers are untrusted input: an API that always answers with a new cursor and
new customers would keep an export streaming and a sync reading for ever (issue 22 saw 30 MB
in 89 s, and 400,000 customers in 150 s, and going). Every loop that follows cursors counts
what it read against a `PageBound` (`MetronomeClient._follow` does, so every listing, export,
sync, pasted-ID lookup and invoice list gets one): a ceiling on rows, the smaller of
PAGING_MAX_ROWS and what the caller knows is plausible (the index's last count with
headroom: `customers.index.search.plausible_customer_count`), and a wall-clock budget,
PAGING_MAX_SECONDS. Past either
it raises `PagingLimitReached`, a MetronomeError in our own words: the export aborts
visibly, the sync fails and keeps the previous index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from customers.metronome.errors import MalformedResponse


class PagingLimitReached(MalformedResponse):
    """A loop over Metronome's pages passed its ceiling on rows or time."""


class TooManyRows(PagingLimitReached):
    """A loop over Metronome's pages read more rows than its ceiling: a caller whose ceiling
    is not the account's size (a look-up of a few IDs) says so in its own words."""


@dataclass(frozen=True, slots=True)
class PagingLimits:
    """The configured ceilings (PAGING_MAX_ROWS, PAGING_MAX_SECONDS)."""

    max_rows: int = 1_000_000
    max_seconds: float = 3600.0


class PageBound:
    """Counts the rows of one loop over pages; `take` raises PagingLimitReached past the
    ceiling on rows or past the time budget."""

    def __init__(
        self,
        limits: PagingLimits,
        *,
        max_rows: int | None = None,
        what: str = "customers",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rows = limits.max_rows if max_rows is None else min(max_rows, limits.max_rows)
        self.max_seconds = limits.max_seconds
        self.what = what
        self.rows = 0
        self.pages = 0
        self._clock = clock
        self._started = clock()

    def take(self, rows: int) -> None:
        self.rows += rows
        self.pages += 1
        if self.rows > self.max_rows:
            raise TooManyRows(
                f"Metronome kept sending {self.what}: more than {self.max_rows:,}, far more "
                "than this account has, so the dashboard stopped reading. If this keeps "
                "happening, tell the dashboard's developers."
            )
        if self._clock() - self._started > self.max_seconds:
            raise PagingLimitReached(
                f"Reading {self.what} from Metronome took longer than "
                f"{self.max_seconds:g} s ({self.rows:,} read in {self.pages:,} pages), so "
                "the dashboard stopped. Try again later; if this keeps happening, tell the "
                "dashboard's developers."
            )
