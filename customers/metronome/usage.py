"""A customer's usage per billable metric and day: `POST /v1/usage` with `window_size: DAY`.

Reference: the official SDK's `UsageListResponse` (metronome-sdk 4.12, `client.v1.usage.list`):
one row per customer, metric and window, `value` null when there was none; `next_page` goes
in the query string. `starting_on` and `ending_before` must be UTC midnights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from customers.metronome.http import HTTPClient
from customers.metronome.lists import (
    Bounded,
    collect,
    optional_amount,
    page_of,
)
from customers.metronome.wire import read_datetime, read_text

DAYS = 30
MAX_METRICS = 20
MAX_PAGES = 20
# Metronome's page size here is undocumented; a page larger than this is not one.
MAX_PAGE_ITEMS = 1000
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class UsageDay:
    start: datetime  # the day, from 00:00 UTC
    value: float | None  # None: Metronome has no usage for that day


@dataclass(frozen=True, slots=True)
class MetricUsage:
    id: str
    name: str
    days: tuple[UsageDay, ...]  # every day of the period, oldest first

    @property
    def total(self) -> float:
        return sum(day.value for day in self.days if day.value is not None)

    @property
    def peak(self) -> float:
        return max((day.value for day in self.days if day.value is not None), default=0.0)


@dataclass(frozen=True, slots=True)
class Usage:
    starting_on: datetime
    ending_before: datetime
    metrics: tuple[MetricUsage, ...]
    more: bool = False  # more metrics in Metronome than shown
    unreadable: int = 0


@dataclass(frozen=True, slots=True)
class _Row:
    metric_id: str
    metric_name: str
    start: datetime
    value: float | None


def last_days(today: datetime, days: int = DAYS) -> tuple[datetime, datetime]:
    """The `days` whole UTC days before `today`'s: [start, end)."""
    end = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - days * ONE_DAY, end


class UsageClient(HTTPClient):
    def daily_usage(
        self, customer_id: str, *, starting_on: datetime, ending_before: datetime
    ) -> Usage:
        """Usage per metric and day in [starting_on, ending_before), two UTC midnights."""
        day_count = round((ending_before - starting_on) / ONE_DAY)
        body = {
            "customer_ids": [customer_id],
            "starting_on": _wire_time(starting_on),
            "ending_before": _wire_time(ending_before),
            "window_size": "DAY",
        }

        def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
            params = {"next_page": cursor} if cursor else {}
            answer = self.post_for_customer(customer_id, "/v1/usage", body, params)
            return page_of(answer, "next_page", "usage rows")

        def read(data: Mapping[str, Any]) -> _Row:
            if read_text(data["customer_id"]) != customer_id:
                raise ValueError("a usage row of another customer")
            start = read_datetime(data["start_timestamp"]).astimezone(UTC)
            if not starting_on <= start < ending_before or start.time() != datetime.min.time():
                raise ValueError("a usage row outside the days asked for")
            value = optional_amount(data.get("value"))
            return _Row(
                read_text(data["billable_metric_id"]),
                read_text(data["billable_metric_name"]),
                start,
                value,
            )

        rows = collect(
            fetch,
            read,
            what="usage rows",
            max_items=(MAX_METRICS + 1) * day_count,
            max_pages=MAX_PAGES,
            max_page_items=MAX_PAGE_ITEMS,
        )
        return _per_metric(rows, starting_on, day_count)


def _per_metric(rows: Bounded[_Row], starting_on: datetime, day_count: int) -> Usage:
    names: dict[str, str] = {}
    values: dict[str, dict[datetime, float | None]] = {}
    for row in rows.items:
        names.setdefault(row.metric_id, row.metric_name)
        # The first row of a day counts; a repeat of it is Metronome's mistake, not more usage.
        values.setdefault(row.metric_id, {}).setdefault(row.start, row.value)
    more = rows.more or len(names) > MAX_METRICS
    days = [starting_on + index * ONE_DAY for index in range(day_count)]
    metrics = tuple(
        MetricUsage(
            id=metric_id,
            name=names[metric_id],
            days=tuple(UsageDay(day, values[metric_id].get(day)) for day in days),
        )
        for metric_id in list(names)[:MAX_METRICS]
    )
    return Usage(
        starting_on=starting_on,
        ending_before=starting_on + day_count * ONE_DAY,
        metrics=tuple(sorted(metrics, key=lambda m: m.name.casefold())),
        more=more,
        unreadable=rows.unreadable,
    )


def _wire_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
