"""customers/metronome/, driven at the HTTP boundary: `httpx.MockTransport` for exact
control of every answer, and the project's sandbox where a realistic API is needed.

Retries never really sleep: every client gets `sleep=sleeps.append`, so the waits the client
chose are recorded instead of spent.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import logging
import re
import socket
import threading
import tomllib
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fake_metronome import (
    TOKEN,
    Script,
    customer_id,
    customers_of,
    error,
    ids_in,
    make_client,
    page,
    params_of,
    salesforce_id,
    wire_customer,
)

import dashboard
from customers import wiring
from customers.metronome import (
    BadRequest,
    BillableStatus,
    CurrentBillableStatus,
    Customer,
    CustomerQuery,
    InvalidCursor,
    MalformedResponse,
    MetronomeClient,
    MetronomeError,
    MetronomeTimeout,
    MetronomeUnavailable,
    RateLimited,
    TokenRejected,
)
from customers.metronome import http as metronome_http
from customers.metronome.redaction import mentions_token
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxServer, SandboxTransport

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sleeps() -> list[float]:
    return []


# --- 1. Query encoding and headers -------------------------------------------------------------


def test_id_lists_are_sent_as_one_comma_joined_value(sleeps):
    script = Script(page([]))
    client = make_client(script, sleeps)

    client.list_customers(
        CustomerQuery(customer_ids=("a", "b"), salesforce_account_ids=("s1", "s2"))
    )

    raw_query = script.requests[0].url.query.decode()
    assert "customer_ids=a%2Cb" in raw_query.split("&")
    assert "salesforce_account_ids=s1%2Cs2" in raw_query.split("&")
    assert len(re.findall(r"(?:^|&)customer_ids=", raw_query)) == 1


@pytest.mark.parametrize(("only_archived", "wire"), [(True, "true"), (False, "false")])
def test_booleans_are_sent_in_lowercase(sleeps, only_archived, wire):
    script = Script(page([]))
    make_client(script, sleeps).list_customers(CustomerQuery(only_archived=only_archived))

    assert params_of(script.requests[0])["only_archived"] == [wire]


def test_empty_filters_are_left_out_rather_than_sent_empty(sleeps):
    script = Script(page([]))
    make_client(script, sleeps).list_customers(CustomerQuery(ingest_alias=""), limit=10)

    sent = params_of(script.requests[0])
    assert set(sent) == {"only_archived", "limit"}
    assert all(value != [""] for value in sent.values())


def test_ingest_alias_and_limit_are_sent(sleeps):
    script = Script(page([]))
    make_client(script, sleeps).list_customers(CustomerQuery(ingest_alias="acme prod"), limit=37)

    sent = params_of(script.requests[0])
    assert sent["ingest_alias"] == ["acme prod"]
    assert sent["limit"] == ["37"]


def test_next_page_is_sent_back_verbatim_with_the_same_filters(sleeps):
    cursor = "eyJvIjo1MH0+/ with spaces%26and&amps=="
    script = Script(page([wire_customer(1)], next_page=cursor), page([wire_customer(2)]))
    client = make_client(script, sleeps)
    query = CustomerQuery(customer_ids=("a", "b"), ingest_alias="x", only_archived=True)

    customers = list(customers_of(client, query, page_size=1))

    assert [c.id for c in customers] == [customer_id(1), customer_id(2)]
    first, second = (params_of(request) for request in script.requests)
    assert "next_page" not in first
    assert second.pop("next_page") == [cursor]
    assert second == first


def test_list_customers_sends_the_cursor_it_is_given(sleeps):
    script = Script(page([]))
    query = CustomerQuery(salesforce_account_ids=("s1",))

    make_client(script, sleeps).list_customers(query, limit=5, cursor="opaque-cursor_1")

    assert params_of(script.requests[0])["next_page"] == ["opaque-cursor_1"]


@pytest.mark.parametrize("limit", [0, -1, 101, 1000])
def test_limit_outside_1_to_100_raises_value_error_before_any_request(sleeps, limit):
    script = Script(page([]))
    client = make_client(script, sleeps)

    with pytest.raises(ValueError, match="limit"):
        client.list_customers(CustomerQuery(), limit=limit)
    with pytest.raises(ValueError, match="limit"):
        client.list_customers(CustomerQuery(customer_ids=tuple(map(str, range(150)))), limit=limit)
    assert script.requests == []


@pytest.mark.parametrize("limit", [1, 100])
def test_limits_at_both_ends_of_the_range_are_accepted(sleeps, limit):
    script = Script(page([]))
    make_client(script, sleeps).list_customers(CustomerQuery(), limit=limit)

    assert params_of(script.requests[0])["limit"] == [str(limit)]


def test_every_request_carries_the_token_accept_and_a_user_agent_naming_the_dashboard(
    sleeps, settings
):
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    script = Script(error(503), page([]))

    make_client(script, sleeps, user_agent=settings.METRONOME_USER_AGENT).list_customers(
        CustomerQuery()
    )

    assert len(script.requests) == 2  # the retry carries them too
    for request in script.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/json"
        user_agent = request.headers["User-Agent"]
        assert project["name"] in user_agent
        assert project["version"] in user_agent
        assert dashboard.__version__ == project["version"]


# --- 2. The API's 100-ID limit -----------------------------------------------------------------


def test_exactly_100_ids_go_in_a_single_request(sleeps):
    script = Script(page([]))
    ids = tuple(customer_id(n) for n in range(100))

    make_client(script, sleeps).list_customers(CustomerQuery(customer_ids=ids))

    assert len(script.requests) == 1
    assert ids_in(script.requests[0], "customer_ids") == list(ids)


def test_more_than_100_ids_are_refused_before_any_request(sleeps):
    script = Script(page([]))
    query = CustomerQuery(customer_ids=tuple(customer_id(n) for n in range(101)))
    client = make_client(script, sleeps)

    with pytest.raises(ValueError, match=r"customers\.search"):
        client.list_customers(query)
    with pytest.raises(ValueError, match=r"customers\.search"):
        next(client.iter_pages(query))
    assert script.requests == []


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


def test_iter_pages_requests_the_next_page_before_the_consumer_finishes_the_current_one(sleeps):
    requested = {n: threading.Event() for n in (1, 2, 3)}

    def handler(request: httpx.Request) -> httpx.Response:
        n = int(params_of(request).get("next_page", ["1"])[0])
        requested[n].set()
        return page([wire_customer(n)], next_page=str(n + 1) if n < 3 else None)

    pages = make_client(handler, sleeps).iter_pages(CustomerQuery(), page_size=1)

    first = next(pages)
    # The consumer still holds page 1 and has not asked for more: page 2 is already on its way.
    assert requested[2].wait(timeout=5)
    assert [c.id for c in first.customers] == [customer_id(1)]
    second = next(pages)
    assert requested[3].wait(timeout=5)
    assert [c.id for c in second.customers] == [customer_id(2)]
    assert [c.id for p in pages for c in p.customers] == [customer_id(3)]


def test_a_consumer_that_stops_early_does_not_wait_for_the_prefetched_page(sleeps):
    release = threading.Event()
    second_requested = threading.Event()
    seen_cursors: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = params_of(request).get("next_page", [None])[0]
        seen_cursors.append(cursor)
        if cursor is None:
            return page([wire_customer(1)], next_page="2")
        second_requested.set()
        release.wait(timeout=5)
        return page([wire_customer(2)], next_page="3")

    pages = make_client(handler, sleeps).iter_pages(CustomerQuery(), page_size=1)

    def consume_one_page_then_stop() -> None:
        next(pages)
        assert second_requested.wait(timeout=5)
        pages.close()

    consumer = threading.Thread(target=consume_one_page_then_stop)
    consumer.start()
    consumer.join(timeout=3)
    stuck = consumer.is_alive()
    release.set()
    consumer.join(timeout=5)
    assert not stuck, "closing the iterator waited for the page it will never read"
    assert seen_cursors == [None, "2"]


def test_an_error_on_a_prefetched_page_reaches_the_consumer(sleeps):
    script = Script(page([wire_customer(1)], next_page="2"), error(400, "next_page is stale"))
    pages = make_client(script, sleeps).iter_pages(CustomerQuery(), page_size=1)

    assert next(pages).customers[0].id == customer_id(1)
    with pytest.raises(BadRequest, match=r"refused the request as not valid \(HTTP 400\)"):
        next(pages)


# --- 4. Retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_until_success(sleeps, status):
    script = Script(error(status), error(status), page([wire_customer(1)]))

    result = make_client(script, sleeps, max_retries=2).list_customers(CustomerQuery())

    assert [c.id for c in result.customers] == [customer_id(1)]
    assert len(script.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(sleeps, status):
    script = Script(error(status), page([]))

    with pytest.raises(MetronomeError):
        make_client(script, sleeps).list_customers(CustomerQuery())
    assert len(script.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        httpx.ConnectError,
        httpx.ReadError,
    ],
)
def test_timeouts_and_connection_errors_are_retried(sleeps, failure):
    script = Script(failure, page([wire_customer(1)]))

    result = make_client(script, sleeps).list_customers(CustomerQuery())

    assert [c.id for c in result.customers] == [customer_id(1)]
    assert len(script.requests) == 2
    assert len(sleeps) == 1


def test_x_should_retry_false_stops_the_retry_of_a_503(sleeps):
    script = Script(error(503, headers={"x-should-retry": "false"}), page([]))

    with pytest.raises(MetronomeUnavailable):
        make_client(script, sleeps).list_customers(CustomerQuery())
    assert len(script.requests) == 1
    assert sleeps == []


def test_x_should_retry_true_makes_a_400_retried(sleeps):
    script = Script(error(400, headers={"x-should-retry": "true"}), page([wire_customer(1)]))

    result = make_client(script, sleeps).list_customers(CustomerQuery())

    assert len(result.customers) == 1
    assert len(script.requests) == 2


def test_retry_after_ms_is_honoured_before_retry_after(sleeps):
    headers = {"retry-after-ms": "1250", "retry-after": "7"}
    script = Script(error(429, headers=headers), page([]))

    make_client(script, sleeps).list_customers(CustomerQuery())

    assert sleeps == [1.25]


def test_retry_after_in_seconds_is_honoured(sleeps):
    script = Script(error(503, headers={"retry-after": "3"}), page([]))

    make_client(script, sleeps).list_customers(CustomerQuery())

    assert sleeps == [3.0]


class FakeClock:
    """Stands in for the `time` module inside customers.metronome.http: sleeping moves it on."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(metronome_http, "time", fake)
    return fake


def test_retry_after_as_an_http_date_is_honoured(clock):
    when = email.utils.formatdate(clock.time() + 7, usegmt=True)
    script = Script(error(429, headers={"retry-after": when}), page([]))

    make_client(script, clock.slept, sleep=clock.sleep).list_customers(CustomerQuery())

    assert clock.slept == [pytest.approx(7.0)]


@pytest.mark.parametrize("retry_after", ["61", "120", "0", "-5", "soon"])
def test_a_retry_after_that_is_too_long_or_unusable_falls_back_to_backoff(sleeps, retry_after):
    script = Script(error(503, headers={"retry-after": retry_after}), page([]))

    make_client(script, sleeps).list_customers(CustomerQuery())

    assert len(sleeps) == 1
    assert 0.375 <= sleeps[0] <= 0.5


def test_backoff_doubles_from_half_a_second_and_is_capped_at_8_seconds(sleeps, monkeypatch):
    monkeypatch.setattr(metronome_http, "random", SimpleNamespace(random=lambda: 0.0))
    script = Script(error(503))

    with pytest.raises(MetronomeUnavailable):
        make_client(script, sleeps, max_retries=7, retry_budget=1000).list_customers(
            CustomerQuery()
        )

    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_jitter_shortens_each_wait_by_at_most_a_quarter(sleeps, monkeypatch):
    monkeypatch.setattr(metronome_http, "random", SimpleNamespace(random=lambda: 0.999999))
    script = Script(error(503))

    with pytest.raises(MetronomeUnavailable):
        make_client(script, sleeps, max_retries=6, retry_budget=1000).list_customers(
            CustomerQuery()
        )

    nominal = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert sleeps == pytest.approx([n * 0.75 for n in nominal], rel=1e-5)


def test_backoff_jitter_varies_between_retries():
    first_waits = []
    for _ in range(20):
        waits: list[float] = []
        with contextlib.suppress(MetronomeUnavailable):
            make_client(Script(error(503)), waits, max_retries=1).list_customers(CustomerQuery())
        first_waits.append(waits[0])
    assert all(0.375 <= w <= 0.5 for w in first_waits)
    assert len(set(first_waits)) > 1


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_bounds_the_number_of_attempts(sleeps, max_retries):
    script = Script(error(500))

    with pytest.raises(MetronomeUnavailable):
        make_client(script, sleeps, max_retries=max_retries, retry_budget=1000).list_customers(
            CustomerQuery()
        )

    assert len(script.requests) == max_retries + 1
    assert len(sleeps) == max_retries


def test_a_rate_limit_longer_than_the_retry_budget_fails_at_once_saying_how_long_to_wait(sleeps):
    script = Script(error(429, headers={"retry-after": "30"}), page([]))

    with pytest.raises(RateLimited) as caught:
        make_client(script, sleeps, retry_budget=20).list_customers(CustomerQuery())

    # Longer than it would wait itself: it says the most it would wait, never Metronome's
    # number as it came (clamped to the retry budget).
    assert "try again in 20 s" in str(caught.value)
    assert caught.value.retry_after == 20
    assert len(script.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("header", ["999999", "1e308", "-5", "0"])
def test_metronomes_retry_after_reaches_people_clamped_to_the_retry_budget(sleeps, header):
    script = Script(error(429, headers={"retry-after": header}))

    with pytest.raises(RateLimited) as caught:
        make_client(script, sleeps, retry_budget=20, max_retries=0).list_customers(CustomerQuery())

    assert "999999" not in str(caught.value) and "e+" not in str(caught.value)
    assert caught.value.retry_after is None or 0 < caught.value.retry_after <= 20
    assert re.search(r"try again in (([1-9]|1\d|20) s|a minute)\.", str(caught.value))


def test_the_retry_budget_bounds_the_total_time_spent_waiting(clock):
    script = Script(error(503))
    client = make_client(script, [], sleep=clock.sleep, max_retries=50, retry_budget=10)

    with pytest.raises(MetronomeUnavailable):
        client.list_customers(CustomerQuery())

    assert clock.slept  # it did retry within the budget
    assert sum(clock.slept) <= 10
    assert len(script.requests) < 51


# --- 5. Failures and their messages ------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_token_says_so_and_names_the_setting_to_check(sleeps, status):
    script = Script(error(status, "Unauthorized"))

    with pytest.raises(TokenRejected) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery())

    message = str(caught.value)
    assert "rejected the API token" in message
    assert "METRONOME_BEARER_TOKEN" in message


def test_a_bad_request_is_told_in_our_words_and_metronomes_are_logged(sleeps, caplog):
    script = Script(
        error(400, "customer_ids: 'nope' is not a valid UUID", headers={"x-request-id": "r-1"})
    )

    with caplog.at_level(logging.WARNING), pytest.raises(BadRequest) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery(customer_ids=("nope",)))

    assert str(caught.value) == (
        "Metronome refused the request as not valid (HTTP 400). If this keeps happening, "
        "tell the dashboard's developers. Metronome's request ID: r-1."
    )
    assert not isinstance(caught.value, InvalidCursor)
    assert "HTTP 400 to GET /v1/customers (request ID r-1): customer_ids: 'nope'" in caplog.text


def test_a_bad_request_without_a_json_body_is_still_a_bad_request(sleeps):
    script = Script(httpx.Response(400, text="<html>Bad Request</html>"))

    with pytest.raises(BadRequest, match="HTTP 400"):
        make_client(script, sleeps).list_customers(CustomerQuery())


def test_rate_limiting_that_outlasts_the_retries_raises_rate_limited(sleeps):
    script = Script(error(429, headers={"retry-after": "2"}))

    with pytest.raises(RateLimited) as caught:
        make_client(script, sleeps, max_retries=2).list_customers(CustomerQuery())

    assert len(script.requests) == 3
    assert "2 s" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_that_outlast_the_retries_raise_metronome_unavailable(sleeps, status):
    script = Script(error(status))

    with pytest.raises(MetronomeUnavailable) as caught:
        make_client(script, sleeps, max_retries=2).list_customers(CustomerQuery())

    assert not isinstance(caught.value, MetronomeTimeout)
    assert f"HTTP {status}" in str(caught.value)
    assert "Try again" in str(caught.value)
    assert len(script.requests) == 3


def test_timeouts_that_outlast_the_retries_raise_metronome_timeout(sleeps):
    script = Script(httpx.ReadTimeout)

    with pytest.raises(MetronomeTimeout) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery())

    assert "did not answer in 10 s" in str(caught.value)
    assert len(script.requests) == 3


def test_an_unreachable_metronome_raises_metronome_unavailable_naming_the_base_url_setting(sleeps):
    script = Script(httpx.ConnectError)

    with pytest.raises(MetronomeUnavailable) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery())

    assert not isinstance(caught.value, MetronomeTimeout)
    assert "could not reach Metronome" in str(caught.value)
    assert "METRONOME_BASE_URL" in str(caught.value)


def _without(key: str) -> dict:
    customer = wire_customer(1)
    del customer[key]
    return customer


MALFORMED_BODIES = {
    "not JSON": httpx.Response(200, text="<html>Gateway</html>"),
    "a JSON list": httpx.Response(200, json=[wire_customer(1)]),
    "no data": httpx.Response(200, json={"next_page": None}),
    "data not a list": httpx.Response(200, json={"data": {"id": "x"}, "next_page": None}),
    "cursor not a string": page([wire_customer(1)], next_page=5),  # type: ignore[arg-type]
    "customer not an object": page(["a string"]),  # type: ignore[list-item]
    "id missing": page([_without("id")]),
    "name missing": page([_without("name")]),
    "created_at missing": page([_without("created_at")]),
    "updated_at missing": page([_without("updated_at")]),
    "name not a string": page([wire_customer(1, name=42)]),
    "bad timestamp": page([wire_customer(1, created_at="yesterday")]),
    "timestamp without a time zone": page([wire_customer(1, updated_at="2024-01-01T00:00:00")]),
    "bad archived_at": page([wire_customer(1, archived_at="2024-13-01T00:00:00Z")]),
    "unknown billable status": page(
        [wire_customer(1, current_billable_status={"value": "sometimes", "effective_at": None})]
    ),
    "custom field not a string": page([wire_customer(1, custom_fields={"seats": 5})]),
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_an_unreadable_response_raises_malformed_response(sleeps, body):
    script = Script(body)

    with pytest.raises(MalformedResponse) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery())

    assert "Metronome sent" in str(caught.value)
    assert len(script.requests) == 1


# --- 6. Parsing --------------------------------------------------------------------------------


def test_timestamps_are_parsed_as_aware_datetimes():
    customer = Customer.from_wire(
        wire_customer(
            1,
            created_at="2024-03-01T12:30:00.250Z",
            updated_at="2024-03-01T14:30:00+02:00",
            archived_at="2025-01-02T03:04:05Z",
        )
    )

    assert customer.created_at == datetime(2024, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)
    assert customer.updated_at == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert customer.archived_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    for value in (customer.created_at, customer.updated_at, customer.archived_at):
        assert value.utcoffset() is not None


@pytest.mark.parametrize("archived_at", ["absent", None])
def test_archived_at_absent_or_null_means_active(archived_at):
    wire = wire_customer(1) if archived_at == "absent" else wire_customer(1, archived_at=None)

    customer = Customer.from_wire(wire)

    assert customer.archived_at is None
    assert customer.archived_at is None


def test_archived_at_present_means_archived():
    customer = Customer.from_wire(wire_customer(1, archived_at="2025-05-05T05:05:05Z"))

    assert customer.archived_at is not None


def test_billable_status_absent_is_none():
    assert Customer.from_wire(wire_customer(1)).billable_status is None


def test_billable_status_present_is_a_typed_value():
    customer = Customer.from_wire(
        wire_customer(
            1,
            current_billable_status={"value": "unbillable", "effective_at": "2024-06-01T00:00:00Z"},
        )
    )

    assert customer.billable_status == CurrentBillableStatus(
        value=BillableStatus.UNBILLABLE, effective_at=datetime(2024, 6, 1, tzinfo=UTC)
    )
    assert isinstance(customer.billable_status.value, BillableStatus)


def test_billable_status_without_an_effective_date_has_none():
    customer = Customer.from_wire(
        wire_customer(1, current_billable_status={"value": "billable", "effective_at": None})
    )

    assert customer.billable_status == CurrentBillableStatus(BillableStatus.BILLABLE, None)


def test_a_null_salesforce_account_id_is_none():
    wire = wire_customer(1, customer_config={"salesforce_account_id": None})

    assert Customer.from_wire(wire).salesforce_account_id is None


def test_the_other_fields_are_read_as_sent():
    wire = wire_customer(
        7,
        name='Ørsted Datavirk ApS, "Nord"',
        ingest_aliases=["a-1", "billing@x.example"],
        custom_fields={"plan": '=HYPERLINK("x")', "region": "eu"},
    )

    customer = Customer.from_wire(wire)

    assert customer.id == customer_id(7)
    assert customer.name == 'Ørsted Datavirk ApS, "Nord"'
    assert customer.external_id == "ext-7"
    assert customer.ingest_aliases == ("a-1", "billing@x.example")
    assert dict(customer.custom_fields) == {"plan": '=HYPERLINK("x")', "region": "eu"}
    assert customer.salesforce_account_id == salesforce_id(7)


@pytest.fixture(scope="module")
def big_sandbox() -> SandboxAPI:
    return SandboxAPI(1500)


def test_every_sandbox_customer_parses(big_sandbox):
    for wire in big_sandbox.customers:
        customer = Customer.from_wire(wire)
        assert (customer.archived_at is not None) == (wire.get("archived_at") is not None)
        assert (customer.billable_status is None) == ("current_billable_status" not in wire)


# --- 7. The token never reaches the logs ------------------------------------------------------

SECRET = "tok_live_0d9c8b7a_NEVER_LOG_ME"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _capture_everything(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "customers.metronome"):
        caplog.set_level(logging.DEBUG, logger=name)


def test_the_token_never_reaches_the_logs_or_the_errors(caplog, sleeps):
    _capture_everything(caplog)
    errors: list[Exception] = []
    answers = {
        "success": page([wire_customer(1)]),
        "rejected": error(401, "Unauthorized"),
        "server error": error(500),
        "timeout": httpx.ReadTimeout,
        "connection error": httpx.ConnectError,
    }
    for answer in answers.values():
        client = make_client(Script(answer), sleeps, bearer_token=SECRET)
        try:
            client.list_customers(CustomerQuery(customer_ids=("a",)))
        except MetronomeError as exc:
            errors.append(exc)
    # Over real sockets too, so httpcore's own connection logging is exercised.
    with (
        SandboxServer(SandboxAPI(30, token=SECRET)) as accepts,
        SandboxServer(SandboxAPI(30, token="another-token")) as rejects,
    ):
        for url in (accepts.url, rejects.url, f"http://127.0.0.1:{_closed_port()}"):
            client = MetronomeClient(base_url=url, bearer_token=SECRET, sleep=sleeps.append)
            try:
                list(customers_of(client, CustomerQuery(), page_size=10))
            except MetronomeError as exc:
                errors.append(exc)
            client.close()

    assert len(errors) == 6
    assert {type(e) for e in errors} >= {TokenRejected, MetronomeUnavailable, MetronomeTimeout}
    names = {record.name for record in caplog.records}
    assert "httpx" in names and any(n.startswith("httpcore") for n in names)
    for record in caplog.records:
        seen = f"{record.msg} {record.args!r} {record.getMessage()} {record.exc_text or ''}"
        assert SECRET not in seen, f"token logged by {record.name}"
    assert SECRET not in caplog.text
    for exc in errors:
        assert SECRET not in str(exc) and SECRET not in repr(exc.args)


def test_each_request_is_logged_with_method_path_status_and_attempt(caplog, sleeps):
    _capture_everything(caplog)
    script = Script(error(503), httpx.ReadTimeout, page([]))

    make_client(script, sleeps, max_retries=2).list_customers(CustomerQuery(customer_ids=("a",)))

    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "customers.metronome" and "(attempt" in r.getMessage()
    ]
    assert len(lines) == 3
    for line, outcome, attempt in zip(lines, ["503", "timeout", "200"], [1, 2, 3], strict=True):
        assert "GET" in line
        assert "/v1/customers" in line
        assert outcome in line
        assert re.search(rf"attempt\D*{attempt}\b", line)


@pytest.mark.parametrize(
    "echo",
    [
        lambda token: token,
        lambda token: token.upper(),
        lambda token: token[1:-1],
        lambda token: token[::-1],
        lambda token: urllib.parse.quote(token, safe=""),
        lambda token: urllib.parse.quote(urllib.parse.quote(token, safe=""), safe=""),
        lambda token: "".join(f"%{ord(c):02x}" for c in token),
        lambda token: base64.b64encode(token.encode()).decode(),
        lambda token: token.encode().hex(),
        lambda token: "".join(f"&#{ord(c)};" for c in token),
    ],
    ids=[
        "exact",
        "upper",
        "cut",
        "reversed",
        "percent",
        "double-percent",
        "every-byte-percent",
        "base64",
        "hex",
        "html",
    ],
)
def test_an_api_error_message_quoting_the_token_is_shown_never_and_logged_redacted(
    sleeps, echo, caplog
):
    script = Script(error(400, f"Malformed header 'Bearer {echo(SECRET)}' near position 7"))

    with caplog.at_level(logging.WARNING), pytest.raises(BadRequest) as caught:
        make_client(script, sleeps, bearer_token=SECRET).list_customers(CustomerQuery())

    message = str(caught.value)
    assert "near position 7" not in message and "Malformed" not in message
    assert not mentions_token(message, SECRET) and not mentions_token(caplog.text, SECRET)
    assert "near position 7" in caplog.text or "message withheld" in caplog.text


# --- 9. The process's client ------------------------------------------------------------------


@pytest.fixture
def in_process_sandbox_settings(settings, fresh_metronome_client):
    settings.METRONOME_BEARER_TOKEN = ""
    settings.METRONOME_SANDBOX = True
    settings.METRONOME_BASE_URL = ""
    settings.SANDBOX_CUSTOMERS = 120
    return settings


def test_get_client_returns_one_shared_client_per_process(in_process_sandbox_settings, monkeypatch):
    build = wiring.client_from_settings
    builds: list[MetronomeClient] = []

    def slow_build() -> MetronomeClient:
        # A slow first build gives the other threads every chance to build their own.
        threading.Event().wait(0.05)
        builds.append(build())
        return builds[-1]

    monkeypatch.setattr(wiring, "client_from_settings", slow_build)
    start = threading.Barrier(8, timeout=5)
    clients: list[MetronomeClient] = []

    def grab() -> None:
        start.wait()
        clients.append(wiring.get_client())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert len(builds) == 1
    assert len(clients) == 8
    assert all(client is builds[0] for client in clients)
    assert wiring.get_client() is builds[0]


def test_the_process_client_sends_the_dashboards_user_agent(
    in_process_sandbox_settings, monkeypatch
):
    sent: list[httpx.Request] = []

    class RecordingSandbox(SandboxTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return super().handle_request(request)

    monkeypatch.setattr(wiring, "SandboxTransport", RecordingSandbox)

    wiring.get_client().list_customers(CustomerQuery(), limit=1)

    assert [request.headers["User-Agent"] for request in sent] == [
        f"metronome-customer-dashboard/{dashboard.__version__}"
    ]


def test_without_a_token_get_client_uses_the_in_process_sandbox(in_process_sandbox_settings):
    from customers.sandbox import generate_customers

    expected = [c["id"] for c in generate_customers(120) if not c.get("archived_at")]

    client = wiring.get_client()
    found = [c.id for c in customers_of(client, CustomerQuery(), page_size=50)]

    assert sorted(found) == sorted(expected)


def test_reset_client_drops_the_shared_client(in_process_sandbox_settings):
    first = wiring.get_client()

    wiring.reset_client()
    second = wiring.get_client()

    assert second is not first
    assert second.list_customers(CustomerQuery(), limit=5).customers
    with pytest.raises(RuntimeError, match="closed"):
        first.list_customers(CustomerQuery(), limit=5)


def test_with_a_token_get_client_calls_the_configured_base_url(
    settings, fresh_metronome_client, sandbox_server
):
    settings.METRONOME_BEARER_TOKEN = SANDBOX_TOKEN
    settings.METRONOME_SANDBOX = False
    settings.METRONOME_BASE_URL = sandbox_server.url
    before = sandbox_server.api.request_count

    page_of_customers = wiring.get_client().list_customers(CustomerQuery(), limit=3)

    assert len(page_of_customers.customers) == 3
    assert sandbox_server.api.request_count == before + 1


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
