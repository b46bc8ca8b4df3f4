"""What the customer view shows, region by region: the customer, its contracts, commits and
credits, alerts, usage and invoices, each read from Metronome on its own and cached like the
list's pages.

Every region is one call (or a few bounded pages) of its own endpoint, and the page asks for
all of them at once through one small pool, so with 100 ms per call the page waits about
one call, not six. A region that fails carries its error, and only it: the others still show.
Answers are cached for `API_PAGE_CACHE_SECONDS` per customer and region (never per person:
everyone who may view customers sees the same ones); `refresh` asks Metronome again.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe

from customers import metronome
from customers.kept_pool import KeptPool
from customers.metronome import usage

logger = logging.getLogger(__name__)

REGIONS = ("contracts", "balances", "alerts", "usage", "invoices")
# A year of monthly invoices, and their scheduled ones.
RECENT_INVOICES = 12
# One thread per region; the customer is read in the request's own thread meanwhile.
PAGE_THREADS = len(REGIONS)
# Kept, not made for each page: starting five threads for every page spread its six calls
# over about 2 ms more (bench/README.md).
region_pool = KeptPool("customer-view", PAGE_THREADS)


# What each region failing is called on the page ("Could not load ...").
REGION_TITLES = {
    "contracts": "contracts",
    "balances": "commits and credits",
    "alerts": "alerts",
    "usage": "usage",
    "invoices": "invoices",
}


@dataclass(frozen=True, slots=True)
class Region:
    """One region's answer: `data` when it loaded, else `error`, a message for a person."""

    name: str
    data: Any = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def _fetch(client: metronome.MetronomeClient, customer_id: str, name: str, now: datetime) -> Any:
    if name == "contracts":
        return client.list_contracts(customer_id)
    if name == "balances":
        return client.list_balances(customer_id)
    if name == "alerts":
        return client.list_alerts(customer_id)
    if name == "usage":
        start, end = usage.last_days(now)
        return client.daily_usage(customer_id, starting_on=start, ending_before=end)
    if name == "invoices":
        return client.list_invoices(customer_id, limit=RECENT_INVOICES, sort="date_desc")
    raise ValueError(f"no region {name!r}")


def _cache_key(name: str, customer_id: str, now: datetime) -> str:
    # Usage covers the last 30 whole days: a new day is a new answer.
    day = f":{now.date().isoformat()}" if name == "usage" else ""
    return f"customer-region:v2:{name}:{customer_id}{day}"


# A refresh asks Metronome again only for an answer older than this: pressing Refresh (or a
# script sending refresh=1) over and over costs six calls of the company's token at most
# once in that time per customer, and the answer is that fresh anyway.
REFRESH_AFTER_SECONDS = 5


def _cached(key: str, fetch: Callable[[], Any], *, refresh: bool) -> Any:
    """The answer cached under `key` (with when it was fetched), else `fetch()`'s."""
    seconds = settings.API_PAGE_CACHE_SECONDS
    if seconds:
        found = cache.get(key)
        if isinstance(found, tuple) and len(found) == 2:
            fetched_at, answer = found
            if not refresh or time.time() - fetched_at < REFRESH_AFTER_SECONDS:
                return answer
    answer = fetch()  # a failure raises: only answers are cached
    if seconds:
        cache.set(key, (time.time(), answer), timeout=seconds)
    return answer


def load_region(
    client: metronome.MetronomeClient,
    customer_id: str,
    name: str,
    *,
    now: datetime,
    refresh: bool = False,
) -> Region:
    try:
        data = _cached(
            _cache_key(name, customer_id, now),
            lambda: _fetch(client, customer_id, name, now),
            refresh=refresh,
        )
    except metronome.MetronomeError as error:
        logger.warning("Customer %s: %s failed: %s", customer_id, name, error)
        return Region(name, error=str(error))
    return Region(name, data=data)


def load_customer(
    client: metronome.MetronomeClient, customer_id: str, *, refresh: bool = False
) -> metronome.Customer:
    """The customer (cached like the regions); raises MetronomeError."""
    return _cached(  # type: ignore[no-any-return]
        f"customer:v2:{customer_id}",
        lambda: client.get_customer(customer_id),
        refresh=refresh,
    )


class RegionHtml:
    """A region's HTML, drawn in the region's own thread as soon as its answer is in. The
    page's template reads it where the region stands (`__html__`, as Django's and Jinja2's
    engines read safe text), waiting for it there: everything on the page before that point
    is drawn while the slower answers are still awaited."""

    __slots__ = ("drawing", "read")

    def __init__(self, drawing: Future[str]) -> None:
        self.drawing = drawing
        self.read = False

    def __html__(self) -> str:
        self.read = True
        return self.drawing.result()  # a region's own failure raises where it is shown

    def __str__(self) -> SafeString:
        # Django's engine makes a value text before it escapes it: the text must stay safe.
        return mark_safe(self.__html__())  # noqa: S308 (the region's own template escaped it)


@dataclass(frozen=True, slots=True)
class Page:
    customer: metronome.Customer | None
    customer_error: metronome.MetronomeError | None
    regions: dict[str, RegionHtml]

    def wait(self) -> None:
        """Every region finished, shown or not, so no region's thread works for a page
        after its answer: a page that shows none ("not found"), or one whose drawing
        failed. Raises nothing; a failure no page showed is logged."""
        _settle(self.regions)


def _settle(regions: dict[str, RegionHtml]) -> None:
    futures.wait([region.drawing for region in regions.values()])
    for name, region in regions.items():
        failure = region.drawing.exception()
        if failure is not None and not region.read:
            logger.error("The %s region failed", name, exc_info=failure)


def _load_and_render(
    client: metronome.MetronomeClient,
    customer_id: str,
    name: str,
    now: datetime,
    refresh: bool,
    render: Callable[[Region], str],
) -> str:
    return render(load_region(client, customer_id, name, now=now, refresh=refresh))


def load_page(
    client: metronome.MetronomeClient,
    customer_id: str,
    *,
    now: datetime,
    render: Callable[[Region], str],
    refresh: bool = False,
) -> Page:
    """The customer, and every region asked for side by side and drawn by `render` in its
    own thread as soon as its answer is in. Returns when the customer is read: the regions
    are awaited where the page shows them (RegionHtml), and by `Page.wait`."""
    # Each region's log lines carry the request's ID like the rest of the request's.
    drawing = {
        name: region_pool.submit(
            functools.partial(_load_and_render, client, customer_id, name, now, refresh, render)
        )
        for name in REGIONS
    }
    regions = {name: RegionHtml(future) for name, future in drawing.items()}
    try:
        found, problem = load_customer(client, customer_id, refresh=refresh), None
    except metronome.MetronomeError as error:
        found, problem = None, error
    except BaseException:
        _settle(regions)  # no page will wait for them
        raise
    return Page(found, problem, regions)
