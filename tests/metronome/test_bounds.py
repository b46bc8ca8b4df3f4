"""Every loop over Metronome's pages has a ceiling (customers/metronome/bounds.py): an API
that answers a new cursor and new customers for ever stops the export (visibly, audited),
the sync (failed, the previous index kept) and every listing, on rows or on time."""

import itertools
import threading
import time

import httpx
import pytest
from django.utils import timezone

from customers.index import sync as index_sync
from customers.metronome import CustomerQuery, MetronomeClient, PagingLimitReached, PagingLimits
from customers.metronome.bounds import PageBound
from customers.models import ExportAudit, IndexedCustomer, SyncRun
from tests.fake_metronome import BASE_URL, TOKEN, wire_customer


class EndlessAPI:
    """Metronome gone wrong: every page full of customers never sent before, and a cursor
    never sent before, for ever; customers' invoices likewise. Counts what it was asked."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.requests = 0
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests += 1
            limit = int(request.url.params.get("limit", "100"))
            numbers = [next(self._numbers) for _ in range(limit)]
        if self.delay:
            time.sleep(self.delay)
        if request.url.path.endswith("/invoices"):
            return httpx.Response(200, json={"data": [], "next_page": f"c{numbers[0]}"})
        archived = request.url.params.get("only_archived") == "true"
        customers = [
            wire_customer(n, archived_at="2024-06-01T00:00:00Z" if archived else None)
            for n in numbers
        ]
        return httpx.Response(200, json={"data": customers, "next_page": f"c{numbers[0]}"})


def endless_client(api: EndlessAPI, **limits) -> MetronomeClient:
    return MetronomeClient(
        base_url=BASE_URL,
        bearer_token=TOKEN,
        transport=httpx.MockTransport(api),
        sleep=lambda seconds: None,
        paging_limits=PagingLimits(**limits),
    )


def test_a_listing_stops_past_the_callers_plausible_ceiling():
    api = EndlessAPI()
    client = endless_client(api)
    read = 0
    with pytest.raises(PagingLimitReached, match="more than 1,000, far more than this account"):
        for page in client.follow_customers(CustomerQuery(), 100, max_rows=1000):
            read += len(page.rows)
    assert read == 1000
    assert api.requests == 11


def test_a_listing_stops_past_the_configured_maximum_whatever_the_caller_says():
    api = EndlessAPI()
    client = endless_client(api, max_rows=500)
    with pytest.raises(PagingLimitReached, match="more than 500"):
        for _ in client.iter_pages(CustomerQuery(), page_size=100, max_rows=10_000):
            pass
    assert api.requests <= 6 + 2  # the pages read, and at most two fetched ahead


def test_a_listing_stops_at_its_time_budget():
    api = EndlessAPI(delay=0.02)
    client = endless_client(api, max_seconds=0.3)
    with pytest.raises(PagingLimitReached, match=r"took longer than 0.3 s \(\d+ read in"):
        for _ in client.iter_pages(CustomerQuery(), page_size=10):
            pass
    assert api.requests < 1000


def test_the_bound_counts_rows_and_time_with_the_clock_it_is_given():
    now = [0.0]
    bound = PageBound(PagingLimits(max_rows=250, max_seconds=60), clock=lambda: now[0])
    bound.take(100)
    bound.take(100)
    now[0] = 59.0
    bound.take(50)
    with pytest.raises(PagingLimitReached, match="more than 250"):
        bound.take(1)
    timed = PageBound(PagingLimits(max_seconds=60), clock=lambda: now[0])
    now[0] = 120.0
    with pytest.raises(PagingLimitReached, match=r"longer than 60 s \(5 read in 1 pages\)"):
        timed.take(5)


def test_an_endless_invoice_list_stops_too():
    api = EndlessAPI()
    client = endless_client(api)
    with pytest.raises(Exception, match="kept sending empty pages of invoices"):
        client.list_invoices(str(wire_customer(1)["id"]))
    assert api.requests <= 51


# --- The export and the sync, with an index that says how many customers there are ------------


def index_of(count: int) -> None:
    SyncRun.objects.create(
        started_at=timezone.now(),
        finished_at=timezone.now(),
        outcome=SyncRun.Outcome.SUCCEEDED,
        seen=count,
    )


@pytest.mark.django_db
def test_an_endless_export_aborts_visibly_past_the_indexs_count_with_headroom(
    finance_client, install_client, settings
):
    settings.PAGING_HEADROOM = 1.5
    index_of(1000)  # a ceiling of 1,000 × 1.5 + 1,000 = 2,500 customers
    api = EndlessAPI()
    install_client(httpx.MockTransport(api))

    response = finance_client.get("/customers/export.csv")
    assert response.status_code == 200
    received = []
    with pytest.raises(PagingLimitReached):
        for chunk in response.streaming_content:
            received.append(chunk)

    audit = ExportAudit.objects.get()
    assert audit.outcome == ExportAudit.Outcome.FAILED
    assert audit.rows_written <= 2500
    assert "more than 2,500, far more than this account has" in audit.error
    assert api.requests <= 25 + 2


@pytest.mark.django_db
def test_an_endless_sync_fails_and_keeps_the_previous_index(install_client, settings):
    from customers.sandbox import SandboxAPI, SandboxTransport

    settings.PAGING_HEADROOM = 1.5
    first = index_sync.sync(install_client(SandboxTransport(SandboxAPI(300))))
    assert first.outcome == SyncRun.Outcome.SUCCEEDED and first.seen == 300
    before = set(IndexedCustomer.objects.values_list("id", flat=True))
    api = EndlessAPI()
    client = install_client(httpx.MockTransport(api))

    run = index_sync.sync(client)  # a ceiling of 300 × 1.5 + 1,000 = 1,450 per listing

    assert run.outcome == SyncRun.Outcome.FAILED
    assert "more than 1,450, far more than this account has" in run.error
    assert "The index is as the previous sync left it." in run.error
    assert set(IndexedCustomer.objects.values_list("id", flat=True)) == before
    assert api.requests <= 2 * (15 + 1) + 4 + 2
