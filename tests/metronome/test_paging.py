"""Paging through the list endpoints: following `next_page`, a page at a time, and
the guards against a misbehaving API (a repeated cursor, a page size it would reject).
"""

from __future__ import annotations

import pytest

from customers.metronome import (
    BadRequest,
    Customer,
    CustomerQuery,
    MalformedResponse,
)
from tests.fake_metronome import (
    Script,
    customer_id,
    customers_of,
    error,
    make_client,
    page,
    params_of,
    wire_customer,
)

# --- 3. Paging ---------------------------------------------------------------------------------


def test_iter_pages_follows_next_page_past_empty_pages_until_it_is_null(sleeps):
    script = Script(
        page([wire_customer(1), wire_customer(2)], next_page="p2"),
        page([], next_page="p3"),
        page([], next_page="p4"),
        page([wire_customer(3)], next_page=None),
        page([wire_customer(99)]),  # never asked for: the previous page was the last
    )

    found = [c.id for c in customers_of(make_client(script, sleeps), CustomerQuery())]

    assert found == [customer_id(1), customer_id(2), customer_id(3)]
    cursors = [params_of(r).get("next_page", [None])[0] for r in script.requests]
    assert cursors == [None, "p2", "p3", "p4"]


def test_iter_pages_gives_up_on_an_endless_run_of_empty_pages(sleeps):
    script = Script(page([], next_page="again"))

    with pytest.raises(MalformedResponse, match="empty pages"):
        for _ in make_client(script, sleeps).iter_pages(CustomerQuery()):
            pass
    assert len(script.requests) < 100


def test_iter_pages_asks_for_a_page_only_when_the_consumer_does(sleeps):
    """A consumer that stops (an export whose browser went away) costs no call for a page
    nobody reads."""
    script = Script(*(page([wire_customer(n)], next_page=str(n + 1)) for n in range(1, 4)))
    pages = make_client(script, sleeps).iter_pages(CustomerQuery(), page_size=1)

    first = next(pages)
    assert len(script.requests) == 1
    next(pages)
    pages.close()

    assert [c.id for c in first.customers] == [customer_id(1)]
    assert len(script.requests) == 2


def test_an_error_on_a_later_page_reaches_the_consumer(sleeps):
    script = Script(page([wire_customer(1)], next_page="2"), error(400, "next_page is stale"))
    pages = make_client(script, sleeps).iter_pages(CustomerQuery(), page_size=1)

    assert next(pages).customers[0].id == customer_id(1)
    with pytest.raises(BadRequest, match=r"refused the request as not valid \(HTTP 400\)"):
        next(pages)


# --- Guards against a misbehaving API -------------------------------------------------------


def test_a_cursor_that_points_back_at_the_same_rows_stops_instead_of_looping_forever():
    script = Script(page([wire_customer(1)], "cursor-a"), page([wire_customer(2)], "cursor-a"))
    client = make_client(script, [])
    with pytest.raises(MalformedResponse, match="cursor it had sent before"):
        list(customers_of(client, CustomerQuery()))
    assert len(script.requests) == 2


@pytest.mark.parametrize("page_size", [0, 101])
def test_iter_pages_refuses_a_page_size_the_api_would_reject(page_size):
    script = Script(page([]))
    client = make_client(script, [])
    with pytest.raises(ValueError, match="page_size"):
        next(client.iter_pages(CustomerQuery(), page_size=page_size))
    assert script.requests == []


@pytest.mark.parametrize("header", [{"Retry-After": "inf"}, {"retry-after-ms": "nan"}])
def test_a_non_finite_retry_after_falls_back_to_backoff(header):
    sleeps: list[float] = []
    script = Script(error(429, headers=header), page([]))
    client = make_client(script, sleeps)
    list(customers_of(client, CustomerQuery()))
    assert len(sleeps) == 1 and 0.375 <= sleeps[0] <= 0.5


@pytest.mark.parametrize(
    "overrides",
    [
        {"ingest_aliases": "alias"},
        {"custom_fields": None},
        {"customer_config": {"salesforce_account_id": 42}},
        {"external_id": None},
    ],
)
def test_required_fields_of_the_wrong_type_are_a_malformed_response(overrides):
    with pytest.raises(MalformedResponse):
        Customer.from_wire(wire_customer(1, **overrides))


def test_a_missing_required_field_is_a_malformed_response():
    for field in ("external_id", "ingest_aliases", "custom_fields", "customer_config"):
        data = wire_customer(1)
        del data[field]
        with pytest.raises(MalformedResponse):
            Customer.from_wire(data)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+02:34:48", "9999-12-31T23:59:59-05:00"])
def test_a_timestamp_with_no_utc_equivalent_is_an_unreadable_customer(moment):
    # The page and the CSV show every time in UTC; this one overflowed there, a 500.
    with pytest.raises(MalformedResponse):
        Customer.from_wire({**wire_customer(1), "updated_at": moment})
