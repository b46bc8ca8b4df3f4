"""customers/search.py: pasted-ID searches looked up in batches through one flat pool, the
page cut from the match report's own lookups, and the lookups reused for later pages."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import httpx
import pytest
from fake_metronome import (
    Script,
    customer_id,
    ids_in,
    make_client,
    page,
    params_of,
    salesforce_id,
    sandbox_client,
    wire_customer,
)

from customers import search
from customers.metronome import CustomerQuery, InvalidCursor
from customers.sandbox import SandboxAPI


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture(scope="module")
def big_sandbox() -> SandboxAPI:
    return SandboxAPI(1500)


@pytest.fixture
def long_id_list(big_sandbox) -> tuple[tuple[str, ...], set[str]]:
    """250 pasted customer IDs (active, archived and unknown ones) and the IDs of the active
    customers among them, worked out from the data rather than by the search."""
    picked = big_sandbox.customers[::6][:230]
    unknown = [customer_id(10**9 + n) for n in range(20)]
    ids = (
        tuple(c["id"] for c in picked[:115]) + tuple(unknown) + tuple(c["id"] for c in picked[115:])
    )
    active = {c["id"] for c in picked if not c.get("archived_at")}
    assert len(ids) == 250 and 150 < len(active) < 230
    return ids, active


def walk(client, query: CustomerQuery, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        result = search.search(client, query, limit=limit, cursor=cursor)
        pages.append([c.id for c in result.customers])
        cursor = result.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 50, "paging does not end"


# --- Batches ---------------------------------------------------------------------------------


def test_ids_over_100_are_looked_up_in_concurrent_batches_in_both_states(sleeps):
    # Every call waits until three are in flight at once: sequential calls break the barrier.
    all_in_flight = threading.Barrier(3, timeout=5)

    def handler(request: httpx.Request) -> httpx.Response:
        all_in_flight.wait()
        return page([])

    script = Script(handler)
    ids = tuple(customer_id(n) for n in range(250))

    search.search(make_client(script, sleeps), CustomerQuery(customer_ids=ids), limit=50)

    sent = [(ids_in(r, "customer_ids"), params_of(r)["only_archived"]) for r in script.requests]
    assert len(sent) == 6
    assert all(len(batch) <= 100 for batch, _ in sent)
    for state in (["false"], ["true"]):
        batches = [batch for batch, sent_state in sent if sent_state == state]
        assert Counter(i for batch in batches for i in batch) == Counter(ids)


def test_two_long_lists_are_each_looked_up_on_their_own_never_in_pairs(sleeps):
    script = Script(page([]))
    query = CustomerQuery(
        customer_ids=tuple(customer_id(n) for n in range(1000)),
        salesforce_account_ids=tuple(salesforce_id(n) for n in range(1000)),
    )

    search.search(make_client(script, sleeps), query, limit=50)

    # 10 batches of each list, in each of the two states: 40, not the 100 pairs of batches
    # (per state) that one query with both lists would take.
    assert len(script.requests) == 40
    for request in script.requests:
        sent = params_of(request)
        assert ("customer_ids" in sent) != ("salesforce_account_ids" in sent)


def test_with_both_lists_pasted_the_page_shows_the_customers_matching_both(sleeps, big_sandbox):
    active = [c for c in big_sandbox.customers if not c.get("archived_at")]
    with_salesforce = [c for c in active if c["customer_config"]["salesforce_account_id"]]
    both = with_salesforce[:120]
    only_ids = with_salesforce[120:150]
    query = CustomerQuery(
        customer_ids=tuple(c["id"] for c in both + only_ids),
        salesforce_account_ids=tuple(
            dict.fromkeys(c["customer_config"]["salesforce_account_id"] for c in both)
        ),
    )
    shared = {  # customers outside `both` who share one of its Salesforce IDs
        c["id"]
        for c in active
        if c["customer_config"]["salesforce_account_id"] in query.salesforce_account_ids
    }

    found = [i for p in walk(sandbox_client(big_sandbox, sleeps), query, 100) for i in p]

    assert set(found) == {c["id"] for c in both} & shared == {c["id"] for c in both}


def test_paging_a_long_search_visits_every_match_once_in_a_stable_order(
    sleeps, big_sandbox, long_id_list
):
    ids, active = long_id_list
    client = sandbox_client(big_sandbox, sleeps)
    query = CustomerQuery(customer_ids=ids)

    pages = walk(client, query, 40)

    visited = [i for p in pages for i in p]
    assert len(visited) == len(set(visited))
    assert set(visited) == active
    assert all(len(p) == 40 for p in pages[:-1]) and 0 < len(pages[-1]) <= 40
    search.cache.clear()
    assert walk(client, query, 40) == pages


def test_the_export_pages_of_a_long_search_hold_every_match(sleeps, big_sandbox, long_id_list):
    ids, active = long_id_list
    client = sandbox_client(big_sandbox, sleeps)
    before = big_sandbox.request_count

    pages = list(search.iter_pages(client, CustomerQuery(customer_ids=ids), page_size=40))

    assert sorted(c.id for p in pages for c in p.customers) == sorted(active)
    # Only the shown state is looked up: no match report for a download.
    assert big_sandbox.request_count - before == 3


def test_a_long_search_is_merged_in_the_same_order_whichever_batch_answers_first(sleeps):
    ids = tuple(customer_id(n) for n in range(250))

    def run(first_batch_answers_last: bool) -> list[str]:
        others_answered = threading.Event()
        answered = Counter[str]()
        lock = threading.Lock()

        def handler(request: httpx.Request) -> httpx.Response:
            wanted = ids_in(request, "customer_ids")
            is_first_batch = customer_id(0) in wanted
            if first_batch_answers_last and is_first_batch:
                assert others_answered.wait(timeout=5)
            numbers = sorted(int(uuid.UUID(i)) for i in wanted)
            response = page([wire_customer(n) for n in numbers if n % 3 == 0])
            if not is_first_batch:
                with lock:
                    answered["others"] += 1
                    if answered["others"] == 2:
                        others_answered.set()
            return response

        search.cache.clear()
        result = search.search(
            make_client(handler, sleeps), CustomerQuery(customer_ids=ids), limit=100
        )
        return [c.id for c in result.customers]

    assert run(first_batch_answers_last=True) == run(first_batch_answers_last=False)


def test_an_id_pasted_twice_in_different_batches_is_listed_once(sleeps, big_sandbox):
    active = [c["id"] for c in big_sandbox.customers if not c.get("archived_at")][:150]
    # The first 50 again at the end, so each of them lands in two batches.
    ids = (*active, *active[:50])

    pages = walk(sandbox_client(big_sandbox, sleeps), CustomerQuery(customer_ids=ids), 100)

    assert sorted(i for p in pages for i in p) == sorted(active)


@pytest.mark.parametrize("cursor", ["nonsense", "-1", "1e3", "١٢", "9" * 20, "batch.eyJvIjo0MH0"])
def test_a_cursor_that_is_not_an_offset_is_rejected(sleeps, big_sandbox, long_id_list, cursor):
    ids, _ = long_id_list
    client = sandbox_client(big_sandbox, sleeps)

    with pytest.raises(InvalidCursor, match="page one"):
        search.search(client, CustomerQuery(customer_ids=ids), limit=40, cursor=cursor)


def test_an_offset_past_the_end_is_an_empty_last_page(sleeps, big_sandbox, long_id_list):
    ids, _ = long_id_list
    found = search.search(
        sandbox_client(big_sandbox, sleeps),
        CustomerQuery(customer_ids=ids),
        limit=40,
        cursor="5000",
    )
    assert (found.customers, found.next_cursor) == ((), None)


def test_an_endless_run_of_fresh_cursors_is_an_error_not_a_loop(sleeps):
    cursors = iter(range(10**6))
    script = Script(lambda request: page([], next_page=f"c{next(cursors)}"))
    query = CustomerQuery(customer_ids=(customer_id(1),))

    with pytest.raises(search.MalformedResponse):
        search.search(make_client(script, sleeps), query, limit=10)


# --- The match report -------------------------------------------------------------------------

ACTIVE, ARCHIVED, NO_SALESFORCE = 1, 2, 3
UNKNOWN_ID, UNKNOWN_SALESFORCE_ID = customer_id(404), salesforce_id(404)


@pytest.fixture
def small_sandbox() -> SandboxAPI:
    return SandboxAPI(
        [
            wire_customer(ACTIVE, archived_at=None),
            wire_customer(ARCHIVED, archived_at="2025-02-02T00:00:00Z"),
            wire_customer(NO_SALESFORCE, customer_config={"salesforce_account_id": None}),
        ]
    )


def _assert_counts_add_up(report) -> None:
    parts = (report.matched, report.other_state, report.not_found)
    assert report.pasted == sum(len(part) for part in parts)
    assert len({i for part in parts for i in part}) == sum(len(part) for part in parts)


def test_in_the_active_view_archived_ids_are_reported_as_archived_not_as_not_found(
    sleeps, small_sandbox
):
    query = CustomerQuery(
        customer_ids=(customer_id(ACTIVE), customer_id(ARCHIVED), UNKNOWN_ID),
        salesforce_account_ids=(salesforce_id(ARCHIVED), UNKNOWN_SALESFORCE_ID),
    )

    report = search.search(sandbox_client(small_sandbox, sleeps), query, limit=10).report

    assert report.pasted == 5
    assert report.matched == (customer_id(ACTIVE),)
    assert report.other_state == (customer_id(ARCHIVED), salesforce_id(ARCHIVED))
    assert report.other_state_is_archived
    assert report.not_found == (UNKNOWN_ID, UNKNOWN_SALESFORCE_ID)
    _assert_counts_add_up(report)


def test_in_the_archived_view_archived_ids_match_and_active_ones_are_reported_as_active(
    sleeps, small_sandbox
):
    query = CustomerQuery(
        customer_ids=(customer_id(ACTIVE), customer_id(ARCHIVED), UNKNOWN_ID),
        salesforce_account_ids=(salesforce_id(ARCHIVED), salesforce_id(ACTIVE)),
        only_archived=True,
    )

    report = search.search(sandbox_client(small_sandbox, sleeps), query, limit=10).report

    assert report.matched == (customer_id(ARCHIVED), salesforce_id(ARCHIVED))
    assert report.other_state == (customer_id(ACTIVE), salesforce_id(ACTIVE))
    assert not report.other_state_is_archived
    assert report.not_found == (UNKNOWN_ID,)
    _assert_counts_add_up(report)


@pytest.mark.parametrize("only_archived", [False, True])
def test_ids_that_exist_are_never_reported_as_not_found_whichever_toggle_is_on(
    sleeps, small_sandbox, only_archived
):
    existing = tuple(customer_id(n) for n in (ACTIVE, ARCHIVED, NO_SALESFORCE))
    query = CustomerQuery(customer_ids=(*existing, UNKNOWN_ID), only_archived=only_archived)

    report = search.search(sandbox_client(small_sandbox, sleeps), query, limit=10).report

    assert report.not_found == (UNKNOWN_ID,)
    assert set(report.matched) | set(report.other_state) == set(existing)
    _assert_counts_add_up(report)


def test_the_match_report_looks_up_customer_ids_and_salesforce_ids_each_on_their_own(
    sleeps, small_sandbox
):
    # The list filters AND the two ID lists; the report must still find each pasted ID.
    query = CustomerQuery(
        customer_ids=(customer_id(ACTIVE),), salesforce_account_ids=(salesforce_id(ARCHIVED),)
    )

    report = search.search(sandbox_client(small_sandbox, sleeps), query, limit=10).report

    assert report.not_found == ()
    assert report.matched == (customer_id(ACTIVE),)
    assert report.other_state == (salesforce_id(ARCHIVED),)
    _assert_counts_add_up(report)


def test_the_match_report_ignores_the_ingest_alias_filter(sleeps, small_sandbox):
    query = CustomerQuery(customer_ids=(customer_id(ACTIVE),), ingest_alias="no-such-alias")

    report = search.search(sandbox_client(small_sandbox, sleeps), query, limit=10).report

    assert report.matched == (customer_id(ACTIVE),)


def test_a_search_without_pasted_ids_is_one_request_and_has_no_report(sleeps):
    script = Script(page([wire_customer(1)]))

    found = search.search(make_client(script, sleeps), CustomerQuery(ingest_alias="x"), limit=10)

    assert found.report is None and len(found.customers) == 1
    assert len(script.requests) == 1


def test_the_match_report_covers_more_than_100_pasted_ids(sleeps, big_sandbox, long_id_list):
    ids, active = long_id_list
    archived = {c["id"] for c in big_sandbox.customers if c.get("archived_at")} & set(ids)
    assert archived

    report = search.search(
        sandbox_client(big_sandbox, sleeps), CustomerQuery(customer_ids=ids), limit=10
    ).report

    assert report.pasted == 250
    assert set(report.matched) == active
    assert set(report.other_state) == archived
    assert set(report.not_found) == set(ids) - active - archived
    _assert_counts_add_up(report)


# --- Calls and threads per page view ---------------------------------------------------------


class CountingTransport(httpx.BaseTransport):
    """Passes requests to the sandbox, counting them and the most threads alive at once."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.calls = 0
        self.peak_threads = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.calls += 1
            self.peak_threads = max(self.peak_threads, threading.active_count())
        return self.inner.handle_request(request)


@pytest.fixture
def counted(install_client) -> CountingTransport:
    from customers.sandbox import SandboxTransport

    api = SandboxAPI(2500)
    transport = CountingTransport(SandboxTransport(api))
    transport.api = api
    install_client(transport)
    return transport


def view(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def next_link(body: str) -> str:
    import re

    return re.search(r'<a rel="next" href="([^"]+)"', body).group(1).replace("&amp;", "&")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("customer_ids", "salesforce_ids", "first_page_calls"),
    [
        (300, 0, 6),  # 3 batches, in each of the two states; the page is cut from them
        (1000, 0, 20),
        (1000, 1000, 40),  # each list once per state, intersected here: not 2 x 100 pairs
    ],
)
def test_a_pasted_search_calls_the_api_once_per_batch_and_not_again_for_page_two(
    finance_client, counted, customer_ids, salesforce_ids, first_page_calls
):
    active = [c for c in counted.api.customers if not c.get("archived_at")]
    with_salesforce = [c for c in active if c["customer_config"]["salesforce_account_id"]]
    form = {"customer_ids": "\n".join(c["id"] for c in with_salesforce[:customer_ids])}
    if salesforce_ids:
        form["salesforce_account_ids"] = "\n".join(
            c["customer_config"]["salesforce_account_id"] for c in with_salesforce[:salesforce_ids]
        )
    stored = finance_client.post("/customers/", form)
    assert stored.status_code == 303
    baseline_threads = threading.active_count()

    first = view(finance_client, stored.url)
    assert counted.calls == first_page_calls
    # One flat pool: the request's thread and at most MAX_LOOKUP_THREADS lookups.
    assert counted.peak_threads <= baseline_threads + search.MAX_LOOKUP_THREADS

    second = view(finance_client, next_link(first))
    assert counted.calls == first_page_calls, "page 2 is cut from the cached lookups"
    assert "Rows 51–100" in second
