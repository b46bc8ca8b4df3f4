"""The project's client and Metronome's official Python SDK, pointed at the same sandbox
server over HTTP, must find exactly the same customers in the same order, for every filter.

The SDK is the reference for the wire format (see ../shared/metronome-api.md): if our
encoding of a filter or our handling of the cursor drifted from it, the two lists differ.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from customers import search
from customers.metronome import CustomerQuery, MetronomeClient
from customers.sandbox import SANDBOX_TOKEN, SandboxServer
from tests.fake_metronome import customers_of

# Small pages, so every list below spans several pages in both clients.
PAGE_SIZE = 37


@pytest.fixture(scope="module")
def ours(sandbox_server: SandboxServer) -> Iterator[MetronomeClient]:
    client = MetronomeClient(base_url=sandbox_server.url, bearer_token=SANDBOX_TOKEN, max_retries=0)
    yield client
    client.close()


def _salesforce_id(customer: dict[str, Any]) -> str | None:
    return (customer.get("customer_config") or {}).get("salesforce_account_id")


def _filter_cases(customers: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """SDK keyword arguments for each filter, picked from the sandbox's data so that every
    case matches customers on more than one page."""
    archived = [c for c in customers if c.get("archived_at")]
    salesforce_counts = Counter(_salesforce_id(c) for c in customers if _salesforce_id(c))
    # Salesforce IDs shared by an archived customer and its active replacement, plus others.
    shared = [sf for sf, count in salesforce_counts.items() if count > 1]
    salesforce_ids = [*shared[:20], *(sf for sf in salesforce_counts if sf not in shared)][:100]
    alias_counts = Counter(alias for c in customers for alias in c["ingest_aliases"])
    shared_alias = alias_counts.most_common(1)[0][0]
    return {
        "no filter": {},
        "customer_ids": {"customer_ids": [c["id"] for c in customers[::15]][:100]},
        "salesforce_account_ids": {"salesforce_account_ids": salesforce_ids},
        "ingest_alias": {"ingest_alias": shared_alias},
        "only_archived": {"only_archived": True},
        "combination": {
            "customer_ids": [c["id"] for c in archived[:100]],
            "salesforce_account_ids": [
                _salesforce_id(c) for c in archived[50:] if _salesforce_id(c)
            ][:100],
            "only_archived": True,
        },
    }


CASE_NAMES = [
    "no filter",
    "customer_ids",
    "salesforce_account_ids",
    "ingest_alias",
    "only_archived",
    "combination",
]


def _as_query(kwargs: dict[str, Any]) -> CustomerQuery:
    return CustomerQuery(
        customer_ids=tuple(kwargs.get("customer_ids", ())),
        salesforce_account_ids=tuple(kwargs.get("salesforce_account_ids", ())),
        ingest_alias=kwargs.get("ingest_alias", ""),
        only_archived=kwargs.get("only_archived", False),
    )


@pytest.mark.parametrize("case", CASE_NAMES)
def test_the_sdk_and_our_client_list_the_same_customers_in_the_same_order(
    sdk, ours, sandbox_server, case
):
    kwargs = _filter_cases(sandbox_server.api.customers)[case]

    before = sandbox_server.api.request_count
    # Auto-pagination: iterating the SDK's page object follows next_page to the end.
    sdk_ids = [customer.id for customer in sdk.v1.customers.list(limit=PAGE_SIZE, **kwargs)]
    sdk_requests = sandbox_server.api.request_count - before

    before = sandbox_server.api.request_count
    our_ids = [c.id for c in customers_of(ours, _as_query(kwargs), page_size=PAGE_SIZE)]
    our_requests = sandbox_server.api.request_count - before

    assert our_ids == sdk_ids
    assert len(set(sdk_ids)) == len(sdk_ids)
    if case == "ingest_alias":
        # The alias is shared by an archived customer and its active replacement.
        holders = [
            c for c in sandbox_server.api.customers if kwargs["ingest_alias"] in c["ingest_aliases"]
        ]
        assert sdk_ids == [c["id"] for c in holders if not c.get("archived_at")]
        assert len(holders) == 2
    else:
        assert len(sdk_ids) > PAGE_SIZE, "the case should span several pages"
    assert sdk_requests >= math.ceil(len(sdk_ids) / PAGE_SIZE)
    assert our_requests == sdk_requests


def test_the_unfiltered_list_is_every_active_customer(sdk, sandbox_server):
    active = {c["id"] for c in sandbox_server.api.customers if not c.get("archived_at")}

    sdk_ids = [customer.id for customer in sdk.v1.customers.list(limit=100)]

    assert sorted(sdk_ids) == sorted(active)


def test_our_parsed_customers_agree_with_the_sdk_models_field_by_field(sdk, ours):
    for only_archived in (False, True):
        theirs = list(sdk.v1.customers.list(limit=100, only_archived=only_archived))
        mine = list(customers_of(ours, CustomerQuery(only_archived=only_archived)))
        assert len(mine) == len(theirs) > 0
        for model, customer in zip(theirs, mine, strict=True):
            assert customer.id == model.id
            assert customer.name == model.name
            assert customer.external_id == model.external_id
            assert list(customer.ingest_aliases) == model.ingest_aliases
            assert dict(customer.custom_fields) == model.custom_fields
            assert customer.salesforce_account_id == model.customer_config.salesforce_account_id
            assert customer.created_at == model.created_at
            assert customer.updated_at == model.updated_at
            assert customer.archived_at == model.archived_at
            status = model.current_billable_status
            if status is None:
                assert customer.billable_status is None
            else:
                assert customer.billable_status is not None
                assert customer.billable_status.value == status.value
                assert customer.billable_status.effective_at == status.effective_at


@pytest.mark.django_db  # a pasted-ID search asks the customer index (never synced here)
def test_a_query_over_100_ids_finds_what_the_sdk_finds_100_at_a_time(sdk, ours, sandbox_server):
    ids = [c["id"] for c in sandbox_server.api.customers[::5]][:250]

    sdk_ids = [
        customer.id
        for start in range(0, len(ids), 100)
        for customer in sdk.v1.customers.list(
            customer_ids=ids[start : start + 100], limit=PAGE_SIZE
        )
    ]
    our_ids = [
        c.id
        for page in search.iter_pages(
            ours, CustomerQuery(customer_ids=tuple(ids)), page_size=PAGE_SIZE
        )
        for c in page.customers
    ]

    assert len(sdk_ids) > 200
    assert sorted(our_ids) == sorted(sdk_ids)
    assert len(set(our_ids)) == len(our_ids)


def test_the_sdk_reads_the_sandboxs_invoices_as_our_client_does(sdk, ours, sandbox_server):
    """The sandbox's invoices fit the SDK's own models, and both clients see the same ones,
    newest first, with the same totals, credit types and dates."""
    customers = sandbox_server.api.customers
    with_invoices = [c for c in customers[:200] if c.get("archived_at") is None][:5]
    for customer in with_invoices:
        sdk_page = sdk.v1.customers.invoices.list(
            customer_id=customer["id"], limit=12, sort="date_desc"
        )
        expected = list(sdk_page.data)
        assert len(expected) == 12
        page = ours.list_invoices(customer["id"], limit=12)
        assert [i.id for i in page.invoices] == [i.id for i in expected]
        for mine, theirs in zip(page.invoices, expected, strict=True):
            assert (mine.status, mine.type, mine.total) == (
                theirs.status,
                theirs.type,
                theirs.total,
            )
            assert mine.credit_type.name == theirs.credit_type.name
            assert mine.issued_at == theirs.issued_at
            assert mine.start_timestamp == theirs.start_timestamp
            assert len(mine.line_items) == len(theirs.line_items)
            assert mine.external_status == (
                theirs.external_invoice.external_status if theirs.external_invoice else None
            )
