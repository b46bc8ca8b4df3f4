"""customers/metronome/client.py and http.py, driven at the HTTP boundary with
`httpx.MockTransport`: how queries and headers are sent, the API's 100-ID limit, retries and
backoff, and failures turned into errors people can act on.

Retries never really sleep: every client gets `sleep=sleeps.append`, so the waits the client
chose are recorded instead of spent.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import logging
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

import dashboard
from customers.metronome import (
    BadRequest,
    CustomerQuery,
    InvalidCursor,
    MalformedResponse,
    MetronomeError,
    MetronomeTimeout,
    MetronomeUnavailable,
    RateLimited,
    TokenRejected,
)
from customers.metronome import http as metronome_http
from tests.fake_metronome import (
    TOKEN,
    Script,
    customer_id,
    customers_of,
    error,
    ids_in,
    make_client,
    page,
    params_of,
    wire_customer,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize(
    "base_url",
    [
        "http://metronome.test",
        "http://proxy.test/metronome",
        "http://proxy.test/metronome/",
        "http://proxy.test/m//",
    ],
)
def test_a_base_url_with_a_path_keeps_it_and_parameters_are_encoded_as_httpx_encodes_them(
    sleeps, base_url
):
    script = Script(page([]))
    client = make_client(script, sleeps, base_url=base_url)
    awkward = "a b+c/d=e&f?g#h~é"

    client.list_customers(CustomerQuery(ingest_alias=awkward), cursor=awkward)

    expected = httpx.Client(base_url=base_url).build_request(
        "GET",
        "/v1/customers",
        params={
            "ingest_alias": awkward,
            "only_archived": "false",
            "limit": "50",
            "next_page": awkward,
        },
    )
    assert script.requests[0].url == expected.url


def test_list_customers_sends_the_cursor_it_is_given(sleeps):
    script = Script(page([]))
    query = CustomerQuery(salesforce_account_ids=("s1",))

    make_client(script, sleeps).list_customers(query, limit=5, cursor="opaque-cursor_1")

    assert params_of(script.requests[0])["next_page"] == ["opaque-cursor_1"]


@pytest.mark.parametrize(
    "cursor",
    [
        TOKEN,
        "-".join(TOKEN),
        f"o=50&t={TOKEN[::-1]}",
        base64.b64encode(f'{{"offset": 50, "key": "{TOKEN}"}}'.encode()).decode(),
    ],
)
def test_a_next_page_cursor_that_carries_the_token_is_refused(sleeps, cursor):
    # The list page writes the cursor into its Next link, which the browser gets.
    script = Script(page([wire_customer(1)], next_page=cursor))

    with pytest.raises(MalformedResponse) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery())

    assert cursor not in str(caught.value) and TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "spelt",
    [
        TOKEN,
        TOKEN.upper(),
        "".join(f"\\u{ord(c):04x}" for c in TOKEN),  # JSON's escapes
    ],
)
def test_an_answer_that_quotes_the_token_is_not_used(sleeps, caplog, spelt):
    # Whatever Metronome answers reaches pages, CSV files and the index: an API echoing the
    # request into a customer's fields must not put the token in front of anyone.
    body = json.dumps({"data": [wire_customer(1, name="@@")], "next_page": None})
    script = Script(httpx.Response(200, content=body.replace("@@", f"echo {spelt}").encode()))

    with caplog.at_level(logging.INFO), pytest.raises(MalformedResponse) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery())

    assert "contained the dashboard's API token" in str(caught.value)
    assert len(script.requests) == 1  # not retried
    assert "contained the API token" in caplog.text
    assert TOKEN.lower() not in (str(caught.value) + caplog.text).lower()


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


@pytest.mark.parametrize(
    "request_id",
    [
        TOKEN,
        TOKEN[:-1],
        TOKEN[::-1],
        TOKEN.upper(),
        TOKEN.encode().hex(),
        base64.b64encode(TOKEN.encode()).decode().rstrip("="),
        "-".join(TOKEN),
        ".".join(TOKEN[start : start + 7] for start in range(0, len(TOKEN), 7)),
        ":".join(TOKEN[start : start + 4] for start in range(0, len(TOKEN), 4)),
    ],
    ids=["plain", "cut", "reversed", "upper", "hex", "base64", "dashed", "dotted", "colons"],
)
def test_a_request_id_that_carries_the_token_is_neither_shown_nor_logged(
    sleeps, caplog, request_id
):
    script = Script(error(400, "nope", headers={"x-request-id": request_id}))

    with caplog.at_level(logging.DEBUG), pytest.raises(BadRequest) as caught:
        make_client(script, sleeps).list_customers(CustomerQuery())

    assert request_id not in str(caught.value)
    assert "request ID" not in str(caught.value)
    assert request_id not in caplog.text
    assert "(request ID none)" in caplog.text


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
