"""customers/search.py: pasted-ID searches looked up in batches through one flat pool, the
page cut from the match report's own lookups, and the lookups reused for later pages."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import httpx
import pytest

from customers import search
from customers.metronome import BadRequest, CustomerQuery, InvalidCursor, MalformedResponse
from customers.salesforce import SalesforceId, normalise, to_18
from customers.sandbox import SandboxAPI
from tests.fake_metronome import (
    Script,
    customer_id,
    error,
    ids_in,
    make_client,
    page,
    params_of,
    salesforce_id,
    sandbox_client,
    wire_customer,
)

# A pasted-ID search asks the customer index what it knows of the IDs (never synced here:
# every form in both states, as these tests expect).
pytestmark = pytest.mark.django_db


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


def test_an_offset_past_the_last_match_gives_the_first_page_marked_restarted(
    sleeps, big_sandbox, long_id_list
):
    # An empty page there would read as "nothing matched" beside a report of matches; the
    # first page comes from the same lookups (listing.find says the link had expired).
    ids, active = long_id_list
    client = sandbox_client(big_sandbox, sleeps)
    query = CustomerQuery(customer_ids=ids)
    last = search.search(client, query, limit=40, cursor=str(len(active) - 1))
    assert len(last.customers) == 1 and last.next_cursor is None

    first = search.search(client, query, limit=40)
    past = search.search(client, query, limit=40, cursor=str(len(active)))
    assert past.restarted and not first.restarted
    assert [c.id for c in past.customers] == [c.id for c in first.customers]
    assert past.next_cursor == first.next_cursor == "40"


def test_an_endless_run_of_fresh_cursors_is_an_error_not_a_loop(sleeps):
    cursors = iter(range(10**6))
    script = Script(lambda request: page([], next_page=f"c{next(cursors)}"))
    query = CustomerQuery(customer_ids=(customer_id(1),))

    with pytest.raises(MalformedResponse):
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
        # Each list once per state, intersected here, not 2 x 100 pairs: 10 batches of
        # customer IDs and 20 of Salesforce IDs (each sent in both forms, 50 to a call).
        (1000, 1000, 60),
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


# --- Salesforce IDs in either form ------------------------------------------------------------

STORES_18, STORES_15, STORES_LOWER, ARCHIVED_15, SHARED_15, SHARED_18 = 11, 12, 13, 14, 15, 16


def _id15(n: int) -> str:
    return f"001Dn{n:05d}AbCdE"


def _sf_sandbox() -> SandboxAPI:
    def holding(n: int, stored: str, **overrides: object) -> dict:
        return wire_customer(n, customer_config={"salesforce_account_id": stored}, **overrides)

    return SandboxAPI(
        [
            holding(STORES_18, to_18(_id15(STORES_18))),
            holding(STORES_15, _id15(STORES_15)),
            # A copy a spreadsheet lower-cased before it was written to Metronome.
            holding(STORES_LOWER, to_18(_id15(STORES_LOWER)).lower()),
            holding(ARCHIVED_15, _id15(ARCHIVED_15), archived_at="2025-02-02T00:00:00Z"),
            # One Salesforce account, two customers, each storing its own form of the ID.
            holding(SHARED_15, _id15(SHARED_15)),
            holding(SHARED_18, to_18(_id15(SHARED_15))),
        ]
    )


def _pasted(*typed: str) -> tuple[CustomerQuery, tuple[SalesforceId, ...]]:
    ids = tuple(normalise(t) for t in typed)
    return CustomerQuery(salesforce_account_ids=tuple(i.key for i in ids)), ids


def test_a_pasted_salesforce_id_finds_its_customer_whichever_form_metronome_stores(sleeps):
    query, ids = _pasted(
        _id15(STORES_18),  # 15 pasted, 18 stored
        to_18(_id15(STORES_15)),  # 18 pasted, 15 stored
        to_18(_id15(STORES_LOWER)).lower(),  # case changed, stored with the same change
        to_18(_id15(ARCHIVED_15)),
        _id15(999),
    )

    found = search.search(
        sandbox_client(_sf_sandbox(), sleeps), query, limit=10, salesforce_ids=ids
    )

    assert [c.id for c in found.customers] == [
        customer_id(n) for n in (STORES_18, STORES_15, STORES_LOWER)
    ]
    report = found.report
    assert report.matched == (
        _id15(STORES_18),
        to_18(_id15(STORES_15)),
        to_18(_id15(STORES_LOWER)).lower(),
    )
    assert report.other_state == (to_18(_id15(ARCHIVED_15)),)
    assert report.not_found == (_id15(999),)
    assert report.matched_as == (
        search.OtherForm(_id15(STORES_18), to_18(_id15(STORES_18))),
        search.OtherForm(to_18(_id15(STORES_15)), _id15(STORES_15)),
        search.OtherForm(to_18(_id15(ARCHIVED_15)), _id15(ARCHIVED_15)),
    )
    assert found.total == 3
    _assert_counts_add_up(report)


def test_one_salesforce_id_held_by_several_customers_is_reported_with_how_many(sleeps):
    query, ids = _pasted(_id15(SHARED_15))

    found = search.search(
        sandbox_client(_sf_sandbox(), sleeps), query, limit=10, salesforce_ids=ids
    )

    assert {c.id for c in found.customers} == {customer_id(SHARED_15), customer_id(SHARED_18)}
    assert found.report.shared == (search.SharedId(_id15(SHARED_15), shown=2, other_state=0),)
    assert found.report.matched_as == (search.OtherForm(_id15(SHARED_15), to_18(_id15(SHARED_15))),)


def test_salesforce_ids_go_out_in_both_forms_fifty_pasted_ids_to_a_call(sleeps):
    script = Script(page([]))
    query, ids = _pasted(*(_id15(n) for n in range(120)))

    search.search(make_client(script, sleeps), query, limit=50, salesforce_ids=ids)

    shown_state = [r for r in script.requests if params_of(r)["only_archived"] == ["false"]]
    sent = [ids_in(r, "salesforce_account_ids") for r in shown_state]
    assert [len(values) for values in sent] == [100, 100, 40]
    for pasted in ids:
        [call] = [values for values in sent if pasted.key in values]
        assert pasted.key[:15] in call
    assert len(script.requests) == 6


def test_a_customer_the_api_adds_for_no_pasted_id_is_neither_shown_nor_counted(sleeps):
    stranger = wire_customer(77, customer_config={"salesforce_account_id": _id15(77)})
    holder = wire_customer(1, customer_config={"salesforce_account_id": _id15(1)})
    query, ids = _pasted(_id15(1))

    def answer(request: httpx.Request) -> httpx.Response:
        active = params_of(request)["only_archived"] == ["false"]
        return page([holder, stranger] if active else [])

    found = search.search(make_client(answer, sleeps), query, limit=10, salesforce_ids=ids)

    assert [c.id for c in found.customers] == [customer_id(1)]
    assert found.report.matched == (_id15(1),) and found.report.shared == ()


def test_without_the_pasted_forms_the_keys_are_looked_up_in_both_forms(sleeps):
    script = Script(page([]))
    key = to_18(_id15(3))

    search.search(
        make_client(script, sleeps), CustomerQuery(salesforce_account_ids=(key,)), limit=10
    )

    assert ids_in(script.requests[0], "salesforce_account_ids") == [key, key[:15]]


def test_pasted_forms_that_do_not_belong_to_the_query_are_refused(sleeps):
    query, _ = _pasted(_id15(1))
    with pytest.raises(ValueError, match="do not belong"):
        search.search(
            make_client(Script(page([])), sleeps),
            query,
            limit=10,
            salesforce_ids=(normalise(_id15(2)),),
        )


def test_the_export_pages_of_a_query_metronome_pages_itself_are_the_clients_job(sleeps):
    script = Script(page([]))

    with pytest.raises(ValueError, match="Metronome pages this query itself"):
        next(search.iter_pages(make_client(script, sleeps), CustomerQuery(customer_ids=("a",))))
    assert script.requests == []


def test_the_export_of_salesforce_ids_finds_customers_storing_either_form(sleeps):
    query, ids = _pasted(_id15(STORES_18), to_18(_id15(STORES_15)))

    pages = list(
        search.iter_pages(sandbox_client(_sf_sandbox(), sleeps), query, salesforce_ids=ids)
    )

    assert [c.id for p in pages for c in p.customers] == [
        customer_id(STORES_18),
        customer_id(STORES_15),
    ]


# --- The API page cache ------------------------------------------------------------------------


def test_a_page_fetched_twice_makes_one_api_call_and_refresh_makes_another(sleeps):
    script = Script(page([wire_customer(1)], next_page="c2"))
    client = make_client(script, sleeps)
    query = CustomerQuery(ingest_alias="x")

    first = search.search(client, query, limit=10)
    again = search.search(client, query, limit=10)
    assert len(script.requests) == 1
    assert again == first

    search.search(client, query, limit=10, refresh=True)
    assert len(script.requests) == 2


def test_pages_are_cached_by_query_limit_and_cursor(sleeps):
    script = Script(page([wire_customer(1)]))
    client = make_client(script, sleeps)

    for query, limit, cursor in [
        (CustomerQuery(), 10, None),
        (CustomerQuery(), 25, None),
        (CustomerQuery(), 10, "c2"),
        (CustomerQuery(only_archived=True), 10, None),
        (CustomerQuery(), 10, None),  # the first again
    ]:
        search.search(client, query, limit=limit, cursor=cursor)

    assert len(script.requests) == 4


def test_a_failed_page_is_not_cached(sleeps):
    script = Script(error(400, "bad cursor"), page([wire_customer(1)]))
    client = make_client(script, sleeps)

    with pytest.raises(BadRequest):
        search.search(client, CustomerQuery(), limit=10)
    found = search.search(client, CustomerQuery(), limit=10)

    assert [c.id for c in found.customers] == [customer_id(1)]
    assert len(script.requests) == 2


def test_a_page_cache_of_zero_seconds_asks_every_time(sleeps, settings):
    settings.API_PAGE_CACHE_SECONDS = 0
    script = Script(page([]))
    client = make_client(script, sleeps)

    search.search(client, CustomerQuery(), limit=10)
    search.search(client, CustomerQuery(), limit=10)

    assert len(script.requests) == 2


def test_refresh_looks_pasted_ids_up_again(sleeps):
    script = Script(page([]))
    client = make_client(script, sleeps)
    query = CustomerQuery(customer_ids=(customer_id(1),))

    search.search(client, query, limit=10)
    search.search(client, query, limit=10)
    assert len(script.requests) == 2  # both states, once
    search.search(client, query, limit=10, refresh=True)
    assert len(script.requests) == 4
