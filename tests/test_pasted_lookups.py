"""Pasted-ID lookups that ask Metronome only what can match, told by a fresh customer index
(customers/lookups.py, customers/index/known_ids.py): never fewer customers than asking for
every form in both states, with the index up to date or stale, and the fewer calls that buys.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from customers import lookups, search
from customers.index import sync as index_sync
from customers.metronome import CustomerQuery
from customers.models import SyncRun
from customers.salesforce import normalise, to_18
from customers.sandbox import SandboxAPI
from tests.fake_metronome import customer_id, sandbox_client, wire_customer

ARCHIVED_AT = "2024-06-01T00:00:00Z"


def salesforce_15(n: int) -> str:
    """A 15-character Salesforce ID, mixed case (so its 18-character form differs)."""
    return f"001Xy{n:010d}"


def customer(n: int, *, form: int = 18, archived: bool = False, **changes: Any) -> dict:
    stored = to_18(salesforce_15(n)) if form == 18 else salesforce_15(n)
    return wire_customer(
        n,
        customer_config={"salesforce_account_id": stored},
        **({"archived_at": ARCHIVED_AT} if archived else {}),
        **changes,
    )


def account(count: int) -> list[dict]:
    """Customers 1..count: 18- and 15-character forms, a tenth archived."""
    return [
        customer(n, form=18 if n % 3 else 15, archived=n % 10 == 0) for n in range(1, count + 1)
    ]


@pytest.fixture
def sleeps() -> list[float]:
    return []


def synced(customers: list[dict], sleeps: list[float]) -> None:
    run = index_sync.sync(sandbox_client(SandboxAPI(customers), sleeps))
    assert run.outcome == SyncRun.Outcome.SUCCEEDED


def searched(
    api: SandboxAPI, query: CustomerQuery, sleeps: list[float], *, pasted=None
) -> tuple[set[str], search.MatchReport | None, int]:
    """The customers of the search (every page), its report, and the calls it made."""
    client = sandbox_client(api, sleeps)
    before = api.request_count
    found = search.search(client, query, limit=1000, salesforce_ids=pasted, refresh=True)
    assert found.next_cursor is None
    return {c.id for c in found.customers}, found.report, api.request_count - before


def both_ways(api, query, sleeps, settings, *, pasted=None):
    """The search with the index trusted, then with it ignored (every form, both states)."""
    cheap = searched(api, query, sleeps, pasted=pasted)
    settings.PASTED_IDS_INDEX_MAX_AGE_SECONDS = 0
    try:
        full = searched(api, query, sleeps, pasted=pasted)
    finally:
        settings.PASTED_IDS_INDEX_MAX_AGE_SECONDS = 3600
    return cheap, full


def salesforce_query(numbers, *, forms=(15,)) -> tuple[CustomerQuery, tuple]:
    typed = [
        (salesforce_15(n) if form == 15 else to_18(salesforce_15(n)))
        for n in numbers
        for form in forms
    ]
    pasted = tuple(dict((s.key, s) for s in map(normalise, typed)).values())
    return CustomerQuery(salesforce_account_ids=tuple(s.key for s in pasted)), pasted


@pytest.fixture(autouse=True)
def trusted_for_an_hour(settings):
    settings.PASTED_IDS_INDEX_MAX_AGE_SECONDS = 3600


# --- Never fewer -------------------------------------------------------------------------


def stale_account() -> tuple[list[dict], list[dict]]:
    """The account at the last sync, and now. Since the sync: customers 4 and 12 stored their
    Salesforce ID again in the other form, 7 and 8 were archived, 9 was deleted, 41 was
    created, and 42 was created and archived."""
    before = account(40)
    now = [dict(c) for c in before]
    now[3] = customer(4, form=15)  # was 18
    now[11] = customer(12, form=18)  # was 15
    now[6] = customer(7, form=18, archived=True)
    now[7] = customer(8, form=18, archived=True)
    del now[8]  # customer 9
    now += [customer(41, form=18), customer(42, form=15, archived=True)]
    return before, now


@pytest.mark.django_db
@pytest.mark.parametrize("forms", [(15,), (18,), (15, 18)])
def test_a_stale_index_never_finds_fewer_salesforce_matches_than_every_form_in_both_states(
    sleeps, settings, forms
):
    before, now = stale_account()
    synced(before, sleeps)
    api = SandboxAPI(now)
    query, pasted = salesforce_query(range(1, 45), forms=forms)

    (cheap, cheap_report, _), (full, full_report, _) = both_ways(
        api, query, sleeps, settings, pasted=pasted
    )

    assert full  # the comparison means something
    assert cheap == full
    assert cheap_report == full_report


@pytest.mark.django_db
@pytest.mark.parametrize("only_archived", [False, True])
def test_a_stale_index_never_finds_fewer_customers_by_id_or_by_both_lists(
    sleeps, settings, only_archived
):
    before, now = stale_account()
    synced(before, sleeps)
    api = SandboxAPI(now)
    numbers = range(1, 45)
    ids = tuple(customer_id(n) for n in numbers)
    _, pasted = salesforce_query(numbers)
    for query in (
        CustomerQuery(customer_ids=ids, only_archived=only_archived),
        CustomerQuery(
            customer_ids=ids,
            salesforce_account_ids=tuple(s.key for s in pasted),
            only_archived=only_archived,
        ),
    ):
        (cheap, cheap_report, _), (full, full_report, _) = both_ways(
            api, query, sleeps, settings, pasted=pasted if query.salesforce_account_ids else None
        )
        assert full
        assert cheap == full
        assert cheap_report == full_report


@pytest.mark.django_db
def test_an_index_older_than_its_trust_is_not_asked(sleeps, settings):
    before, now = stale_account()
    synced(before, sleeps)
    SyncRun.objects.update(finished_at=SyncRun.objects.get().finished_at - timedelta(hours=2))
    api = SandboxAPI(now)
    query, pasted = salesforce_query(range(1, 45))
    _, _, calls = searched(api, query, sleeps, pasted=pasted)
    settings.PASTED_IDS_INDEX_MAX_AGE_SECONDS = 0
    _, _, calls_without_index = searched(api, query, sleeps, pasted=pasted)
    assert calls == calls_without_index == 2  # 44 IDs, both forms: one call per state


# --- Fewer calls ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_with_a_fresh_index_300_salesforce_ids_take_at_most_6_calls(sleeps):
    customers = account(300)
    synced(customers, sleeps)
    query, pasted = salesforce_query(range(1, 301))

    found, report, calls = searched(SandboxAPI(customers), query, sleeps, pasted=pasted)

    assert calls <= 6  # was 12: both forms, 50 IDs a call, in both states
    assert len(found) == 270 and report is not None and len(report.other_state) == 30


@pytest.mark.django_db
def test_with_a_fresh_index_1000_plus_1000_ids_take_at_most_20_calls(sleeps):
    customers = [customer(n, form=18 if n % 3 else 15) for n in range(1, 2001)]
    synced(customers, sleeps)
    _, pasted = salesforce_query(range(1001, 2001))
    query = CustomerQuery(
        customer_ids=tuple(customer_id(n) for n in range(1, 1001)),
        salesforce_account_ids=tuple(s.key for s in pasted),
    )

    found, report, calls = searched(SandboxAPI(customers), query, sleeps, pasted=pasted)

    assert calls <= 20  # was 60: 10 + 20 calls, in both states
    assert found == set()  # two lists of different customers: nobody is in both
    assert report is not None and len(report.matched) == 2000


@pytest.mark.django_db
def test_customer_ids_whose_customers_the_salesforce_lookups_fetch_are_not_asked_again(sleeps):
    customers = [customer(n, form=18 if n % 3 else 15) for n in range(1, 1001)]
    synced(customers, sleeps)
    _, pasted = salesforce_query(range(1, 1001))
    query = CustomerQuery(
        customer_ids=tuple(customer_id(n) for n in range(1, 1001)),
        salesforce_account_ids=tuple(s.key for s in pasted),
    )

    found, report, calls = searched(SandboxAPI(customers), query, sleeps, pasted=pasted)

    assert calls == 10  # the Salesforce IDs' stored forms, 100 a call; no customer ID call
    assert len(found) == 1000
    assert report is not None and len(report.matched) == 2000


# --- Batches -------------------------------------------------------------------------------


def test_without_the_index_50_salesforce_ids_go_to_a_call_in_both_forms_and_both_states():
    _, pasted = salesforce_query(range(1, 121))
    query = CustomerQuery(salesforce_account_ids=tuple(s.key for s in pasted))
    (listed,) = lookups.pasted_lists(query, pasted)
    for state in (False, True):
        assert [len(batch) for batch in listed.batches[state]] == [100, 100, 40]
        values = [value for batch in listed.batches[state] for value in batch]
        assert values == [value for s in pasted for value in s.wire_values]


def test_an_ids_forms_are_never_split_between_two_calls():
    pasted = (
        normalise("0015500001WO1ZiABL"),  # 1 value
        *[normalise(to_18(salesforce_15(n)).lower()) for n in range(40)],  # 3 values each
        *[normalise(salesforce_15(n)) for n in range(100, 110)],  # 2 values each
    )
    query = CustomerQuery(salesforce_account_ids=tuple(s.key for s in pasted))
    (listed,) = lookups.pasted_lists(query, pasted)
    batches = listed.batches[False]
    assert all(len(batch) <= 100 for batch in batches)
    for s in pasted:
        assert sum(set(s.wire_values) <= set(batch) for batch in batches) == 1
