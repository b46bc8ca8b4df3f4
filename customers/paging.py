"""Links between pages of results. Metronome's cursors only go forwards, so each page's URL
carries the cursors of the pages before it (`prev`), and Previous works after a reload or
from a link pasted into a ticket, not only through the browser's history."""

from dataclasses import dataclass

from django.urls import reverse

from customers.forms import url_query


@dataclass(frozen=True)
class Paging:
    base_params: dict[str, list[str]]  # the search itself: filters, or `search=<key>`
    cursor: str | None
    trail: list[str]  # cursors of pages 2..n-1, oldest first
    limit: int
    next_cursor: str | None
    rows: int

    @property
    def page_number(self) -> int:
        return len(self.trail) + 2 if self.cursor else 1

    @property
    def first_row(self) -> int:
        return (self.page_number - 1) * self.limit + 1

    @property
    def last_row(self) -> int:
        return self.first_row + self.rows - 1

    def _url(self, cursor: str | None, trail: list[str]) -> str:
        params = dict(self.base_params)
        if cursor:
            params["next_page"] = [cursor]
        if trail:
            params["prev"] = trail
        query = url_query(params)
        return f"{reverse('customers:list')}?{query}" if query else reverse("customers:list")

    @property
    def next_url(self) -> str | None:
        if not self.next_cursor:
            return None
        trail = [*self.trail, self.cursor] if self.cursor else []
        return self._url(self.next_cursor, trail)

    @property
    def previous_url(self) -> str | None:
        if self.page_number == 1:
            return None
        if not self.trail:
            return self.first_url
        return self._url(self.trail[-1], self.trail[:-1])

    @property
    def first_url(self) -> str:
        return self._url(None, [])
