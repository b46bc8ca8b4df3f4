"""Seeded usage for a sandbox customer: one billable metric per product its invoices bill,
a day's value sized from those invoices' quantities, with a weekly rhythm (weekdays busy,
weekends quiet) and a little day-to-day noise.

Any window can be asked for, so each value is a pure function of (customer, metric, window
start): the same request always gets the same numbers, whatever the clock says. Before the
customer signed and after it was archived there is no usage (`value` null).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Metronome's billable metric IDs are UUIDs; these are stable per metric name.
_METRIC_NAMESPACE = uuid.UUID("0b1c6a3e-5d2f-4e8a-9c7b-1f2e3d4c5b6a")
# Monday first: how busy each weekday is compared with the week's average.
_WEEKDAY_SHAPE = (1.18, 1.22, 1.2, 1.16, 1.04, 0.62, 0.58)
# Seats are counted, not consumed: no weekly rhythm.
_FLAT_METRICS = frozenset({"Seats"})


@dataclass(frozen=True)
class Metric:
    id: str
    name: str
    per_day: float  # the average day, before rhythm and noise


def metrics_of(invoices: Sequence[Mapping[str, Any]]) -> tuple[Metric, ...]:
    """The customer's billable metrics, from the usage line items of its latest invoice."""
    latest = next((i for i in reversed(invoices) if i["type"] == "USAGE"), None)
    if latest is None:
        return ()
    metrics = []
    for item in latest["line_items"]:
        if item["type"] != "usage":
            continue
        name = item["name"]
        quantity = float(item.get("quantity", 0))
        per_day = quantity if name in _FLAT_METRICS else quantity / 30
        metrics.append(Metric(str(uuid.uuid5(_METRIC_NAMESPACE, name)), name, per_day))
    return tuple(metrics)


def _noise(customer_id: str, metric_id: str, start: datetime) -> float:
    """A number in [0, 1) fixed by its inputs."""
    digest = hashlib.blake2b(
        f"{customer_id}:{metric_id}:{start.isoformat()}".encode(), digest_size=8
    )
    return int.from_bytes(digest.digest(), "big") / 2**64


def value(
    customer_id: str,
    metric: Metric,
    start: datetime,
    end: datetime,
    active_from: datetime,
    active_until: datetime | None,
) -> float | None:
    """The metric's usage in [start, end), or None when the customer was not active then."""
    if end <= active_from or (active_until is not None and start >= active_until):
        return None
    days = (end - start) / timedelta(days=1)
    if days > 1.0:
        # A whole period (window_size NONE): the sum of its days.
        total = 0.0
        day = start
        while day < end:
            step = min(day + timedelta(days=1), end)
            total += value(customer_id, metric, day, step, active_from, active_until) or 0.0
            day = step
        return round(total, 2)
    rhythm = 1.0 if metric.name in _FLAT_METRICS else _WEEKDAY_SHAPE[start.weekday()]
    noise = 0.85 + 0.3 * _noise(customer_id, metric.id, start)
    amount = metric.per_day * rhythm * noise * days
    if metric.name in _FLAT_METRICS:
        return float(round(amount))
    return round(amount, 2)
