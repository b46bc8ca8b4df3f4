"""The customer view's regions through Django's test client: contracts, commits and credits,
alerts, usage and invoices, from the sandbox (whose answers the SDK's own models read, see
test_sandbox_accounts.py); empty accounts; one endpoint failing; hostile answers; the calls
going side by side; and the cache."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.utils.html import escape

from customers.sandbox import SANDBOX_TOKEN, Faults, SandboxAPI, SandboxTransport

pytestmark = pytest.mark.django_db

HEADERS = {"authorization": f"Bearer {SANDBOX_TOKEN}"}
REGION_HEADINGS = {
    "contracts": "Contracts",
    "balances": "Commits and credits",
    "alerts": "Alerts",
    "usage": "Usage, last 30 days",
    "invoices": "Recent invoices",
}


@pytest.fixture
def sandbox(install_client) -> SandboxAPI:
    api = SandboxAPI(400)
    install_client(SandboxTransport(api), max_retries=0)
    return api


def _post(api: SandboxAPI, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    status, _, payload = api.handle("POST", path, "", HEADERS, json.dumps(body).encode())
    assert status == 200
    return list(json.loads(payload)["data"])


def contracts_of(api: SandboxAPI, customer: dict[str, Any]) -> list[dict[str, Any]]:
    return _post(api, "/v2/contracts/list", {"customer_id": customer["id"]})


def balances_of(api: SandboxAPI, customer: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"customer_id": customer["id"], "include_balance": True}
    return _post(api, "/v1/contracts/customerBalances/list", body)


def alerts_of(api: SandboxAPI, customer: dict[str, Any]) -> list[dict[str, Any]]:
    return _post(api, "/v1/customer-alerts/list", {"customer_id": customer["id"]})


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rich_customer(api: SandboxAPI) -> dict[str, Any]:
    """Active, with ended, current and future contracts, a spent balance and an alarm."""
    now = datetime.now(UTC)
    for customer in api.customers:
        if customer.get("archived_at"):
            continue
        contracts = contracts_of(api, customer)
        starts = [_parse(c["starting_at"]) for c in contracts]
        if len(contracts) < 3 or not any(s > now for s in starts):
            continue
        if not any(b["balance"] == 0 for b in balances_of(api, customer)):
            continue
        if any(a["customer_status"] == "in_alarm" for a in alerts_of(api, customer)):
            return dict(customer)
    raise AssertionError("the sandbox has no customer with everything")


def plan_customer(api: SandboxAPI) -> dict[str, Any]:
    """Billed on a plan: invoices and usage, but no contract."""
    for position, customer in enumerate(api.customers):
        invoices = api._invoices_of(position)
        on_contract = any(i.get("contract_id") for i in invoices)
        if invoices and not on_contract and not customer.get("archived_at"):
            return dict(customer)
    raise AssertionError("no plan customer")


def region(body: str, name: str) -> str:
    match = re.search(rf'<section id="{name}".*?</section>', body, re.S)
    assert match, f"no {name} region"
    return match.group(0)


# --- Every region, filled ---------------------------------------------------------------------


def test_the_page_shows_every_region_filled_in_one_answer(support_client, sandbox):
    customer = rich_customer(sandbox)
    response = support_client.get(f"/customers/{customer['id']}/")
    body = response.content.decode()
    assert response.status_code == 200
    for name, heading in REGION_HEADINGS.items():
        part = region(body, name)
        assert heading in part
        assert 'hx-trigger="load"' not in part and "Could not load" not in part

    contracts = region(body, "contracts")
    # Current first, then those starting later, then the ended ones, each labelled.
    positions = [contracts.index(label) for label in (">Current<", ">Starting later<", ">Ended<")]
    assert positions == sorted(positions)
    for contract in contracts_of(sandbox, customer):
        assert f'data-contract-id="{contract["id"]}"' in contracts
    current = next(
        c
        for c in contracts_of(sandbox, customer)
        if _parse(c["starting_at"]) <= datetime.now(UTC)
        and (not c.get("ending_before") or _parse(c["ending_before"]) > datetime.now(UTC))
    )
    assert f"Net {current['net_payment_terms_days']} days" in contracts
    if "ending_before" not in current:
        assert "Open-ended" in contracts


TEMPLATE_SYNTAX = re.compile(r"\{[{%#]|[}%#]\}")


def test_no_template_syntax_reaches_the_page(support_client, sandbox):
    # A comment written over two lines is not a comment to Django's engine: under every
    # usage chart the page showed "{#- The day pointed at, tapped or focused ... #}".
    customer = rich_customer(sandbox)
    answers = [
        support_client.get(f"/customers/{customer['id']}/"),
        support_client.get(f"/customers/{customer['id']}/", HTTP_HX_REQUEST="true"),
        *(
            support_client.get(f"/customers/{customer['id']}/{name}/", HTTP_HX_REQUEST="true")
            for name in REGION_HEADINGS
        ),
    ]
    for answer in answers:
        assert answer.status_code == 200
        assert not TEMPLATE_SYNTAX.findall(answer.content.decode())


def test_zero_balances_come_last_and_expiring_credits_are_flagged(support_client, sandbox):
    customer = rich_customer(sandbox)
    part = region(support_client.get(f"/customers/{customer['id']}/").content.decode(), "balances")
    shown = re.findall(r'data-balance-id="([0-9a-f-]+)"', part)
    wire = {b["id"]: b for b in balances_of(sandbox, customer)}
    assert sorted(shown) == sorted(wire)
    empty = [wire[i]["balance"] == 0 for i in shown]
    assert empty == sorted(empty)  # every spent one after every one with something left
    assert part.count("<meter") == len(shown)
    now = datetime.now(UTC)
    for balance_id in shown:
        balance = wire[balance_id]
        ends = _parse(balance["access_schedule"]["schedule_items"][0]["ending_before"])
        expiring = balance["balance"] > 0 and now < ends <= now + timedelta(days=30)
        card = re.search(rf'<li class="([^"]*)" data-balance-id="{balance_id}"', part).group(1)
        assert ("balance-expiring" in card) == expiring


def test_amounts_are_in_the_credit_types_units(support_client, sandbox):
    customer = rich_customer(sandbox)
    part = region(support_client.get(f"/customers/{customer['id']}/").content.decode(), "balances")
    balance = next(b for b in balances_of(sandbox, customer) if b["balance"] > 0)
    granted = balance["access_schedule"]["schedule_items"][0]["amount"]
    if balance["access_schedule"]["credit_type"]["name"] == "USD (cents)":
        assert f"${balance['balance'] / 100:,.2f}</strong> left of ${granted / 100:,.2f}" in part
    else:
        assert "Compute credits" in part


def test_alerts_in_alarm_come_first_and_say_so(support_client, sandbox):
    customer = rich_customer(sandbox)
    part = region(support_client.get(f"/customers/{customer['id']}/").content.decode(), "alerts")
    states = re.findall(r'<li class="card alert-card( in-alarm)?"', part)
    assert states[0] == " in-alarm"
    assert states == sorted(states, reverse=True)
    assert "In alarm</span>" in part


def test_usage_is_a_bar_per_day_with_its_value_a_table_and_the_30_day_total(
    support_client, sandbox
):
    customer = rich_customer(sandbox)
    part = region(support_client.get(f"/customers/{customer['id']}/").content.decode(), "usage")
    charts = re.findall(r'<figure class="usage-chart".*?</figure>', part, re.S)
    assert charts
    for chart in charts:
        assert chart.count('<g class="bar"') == 30
        # One Tab stop a chart: the arrow keys move between days (browser-tested).
        assert chart.count('<g class="bar" tabindex="0"') == 1
        titles = re.findall(r"<title>(.*?)</title>", chart)
        rows = re.findall(
            r'<tr><th scope="row">(.*?)</th><td class="number">(.*?)</td></tr>', chart
        )
        assert [f"{day}: {value}" for day, value in rows[:30]] == titles
        values = [float(v.replace(",", "")) for _, v in rows[:30] if v != "–"]
        total = re.search(r"30-day total</span> <strong>([\d,.]+)</strong>", chart).group(1)
        assert float(total.replace(",", "")) == pytest.approx(sum(values), abs=0.01 * len(values))
        assert "style=" not in chart  # the CSP allows no inline style


def test_the_panel_has_every_region_and_each_regions_url_answers_the_same(support_client, sandbox):
    customer = rich_customer(sandbox)
    panel = support_client.get(f"/customers/{customer['id']}/", HTTP_HX_REQUEST="true")
    body = panel.content.decode()
    page = support_client.get(f"/customers/{customer['id']}/").content.decode()
    for name in REGION_HEADINGS:
        url = f"/customers/{customer['id']}/{name}/"
        answer = support_client.get(url, HTTP_HX_REQUEST="true").content.decode().strip()
        assert answer.startswith(f'<section id="{name}"')
        # A region retried alone is the region the panel and the page showed.
        assert answer == region(body, name) == region(page, name)


def test_a_region_url_without_htmx_is_the_customer_view(support_client, sandbox):
    customer = sandbox.customers[0]
    response = support_client.get(f"/customers/{customer['id']}/usage/")
    assert response.status_code == 302 and response["Location"].startswith(
        f"/customers/{customer['id']}/"
    )


# --- Empty accounts ----------------------------------------------------------------------------


def test_a_customer_on_a_plan_has_honest_empty_states(support_client, sandbox):
    customer = plan_customer(sandbox)
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert "No contracts." in region(body, "contracts")
    assert "No commits or credits." in region(body, "balances")
    assert "Could not load" not in body


def test_a_customer_without_invoices_has_no_usage_and_says_so(support_client, sandbox):
    customer = next(c for p, c in enumerate(sandbox.customers) if not sandbox._invoices_of(p))
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert "No usage in the last 30 days." in region(body, "usage")
    assert "No alerts set up" in region(body, "alerts")
    assert "No invoices yet." in region(body, "invoices")


# --- One endpoint failing -------------------------------------------------------------------

FAILING = {
    "contracts": "contracts",
    "balances": "balances",
    "alerts": "alerts",
    "usage": "usage",
    "invoices": "invoices",
}
TITLES = {
    "contracts": "contracts",
    "balances": "commits and credits",
    "alerts": "alerts",
    "usage": "usage",
    "invoices": "invoices",
}


@pytest.mark.parametrize("failing", list(FAILING))
def test_one_failing_endpoint_stays_in_its_region_with_a_retry(support_client, sandbox, failing):
    customer = rich_customer(sandbox)
    sandbox.faults = Faults(failing_endpoints=(FAILING[failing],))
    response = support_client.get(f"/customers/{customer['id']}/")
    body = response.content.decode()
    assert response.status_code == 200
    broken = region(body, failing)
    assert f"Could not load {TITLES[failing]}." in broken
    assert "Metronome is not answering normally (HTTP 503)" in broken
    retry = re.search(r'hx-get="([^"]+)" hx-target="closest .region"', broken).group(1)
    assert retry.startswith(f"/customers/{customer['id']}/{failing}/")
    for other in REGION_HEADINGS:
        if other != failing:
            assert "Could not load" not in region(body, other)
    assert escape(customer["name"]) in body

    # The retry works once Metronome does.
    sandbox.faults = Faults()
    again = support_client.get(retry.replace("&amp;", "&"), HTTP_HX_REQUEST="true")
    assert "Could not load" not in again.content.decode()


def test_a_failing_customer_keeps_the_page_a_page_with_every_other_region(support_client, sandbox):
    customer = rich_customer(sandbox)
    sandbox.faults = Faults(failing_endpoints=("customer",))
    response = support_client.get(f"/customers/{customer['id']}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Could not load this customer." in body
    for name, heading in REGION_HEADINGS.items():
        part = region(body, name)
        assert heading in part
        assert "Could not load" not in part


# --- Side by side, and cached ---------------------------------------------------------------


def test_the_page_asks_for_the_customer_and_every_region_at_once(support_client, install_client):
    """Each call waits at a barrier for the other five: asked one after another, the first
    would wait alone until the barrier breaks, and the page would show failures."""
    api = SandboxAPI(50)
    transport = SandboxTransport(api)
    barrier = threading.Barrier(6, timeout=10)

    def answer(request: httpx.Request) -> httpx.Response:
        barrier.wait()
        return transport.handle_request(request)

    install_client(httpx.MockTransport(answer), max_retries=0)
    customer = api.customers[10]
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert not barrier.broken
    assert "Could not load" not in body and escape(customer["name"]) in body


def test_answers_are_cached_and_refresh_asks_again_once_they_are_seconds_old(
    support_client, sandbox, settings, monkeypatch
):
    import time

    from customers import customer_page

    settings.API_PAGE_CACHE_SECONDS = 30
    customer = rich_customer(sandbox)
    support_client.get(f"/customers/{customer['id']}/")
    calls = sandbox.request_count
    support_client.get(f"/customers/{customer['id']}/")
    assert sandbox.request_count == calls
    # Refresh pressed again and again: answers fetched a moment ago are that fresh already.
    for _ in range(3):
        support_client.get(f"/customers/{customer['id']}/", {"refresh": "1"})
    assert sandbox.request_count == calls
    later = time.time() + customer_page.REFRESH_AFTER_SECONDS + 1
    monkeypatch.setattr(customer_page.time, "time", lambda: later)
    support_client.get(f"/customers/{customer['id']}/", {"refresh": "1"})
    assert sandbox.request_count == calls + 6


def test_a_failure_is_not_cached(support_client, sandbox, settings):
    settings.API_PAGE_CACHE_SECONDS = 30
    customer = rich_customer(sandbox)
    sandbox.faults = Faults(failing_endpoints=("alerts",))
    support_client.get(f"/customers/{customer['id']}/")
    sandbox.faults = Faults()
    body = support_client.get(f"/customers/{customer['id']}/").content.decode()
    assert "Could not load" not in body


# --- Hostile answers ---------------------------------------------------------------------------

CUSTOMER = SandboxAPI(5).customers[0]
CUSTOMER_ID = CUSTOMER["id"]


def _hostile(install_client, **answers: Any) -> None:
    """Metronome answers each region's path with `answers[region]` (a body or a callable
    of the request), the customer as the sandbox has it, and an empty list otherwise."""
    paths = {
        "/v2/contracts/list": "contracts",
        "/v1/contracts/customerBalances/list": "balances",
        "/v1/customer-alerts/list": "alerts",
        "/v1/usage": "usage",
        f"/v1/customers/{CUSTOMER_ID}/invoices": "invoices",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v1/customers/{CUSTOMER_ID}":
            return httpx.Response(200, json={"data": CUSTOMER})
        name = paths.get(request.url.path)
        body = answers.get(name or "", {"data": [], "next_page": None})
        if callable(body):
            body = body(request)
        return httpx.Response(200, json=body)

    install_client(httpx.MockTransport(answer), max_retries=0)


def _page(client) -> str:
    response = client.get(f"/customers/{CUSTOMER_ID}/")
    assert response.status_code == 200
    return response.content.decode()


GOOD_CONTRACT = {
    "id": "c-1",
    "name": "Good <b>contract</b>",
    "starting_at": "2025-01-01T00:00:00Z",
    "net_payment_terms_days": 30,
    "total_contract_value": 1_000_000,
}


def test_unreadable_items_are_left_out_and_counted(support_client, install_client):
    broken = [
        {"id": "c-2"},  # no starting_at
        {**GOOD_CONTRACT, "id": "c-3", "total_contract_value": 1e300},
        {**GOOD_CONTRACT, "id": "c-4", "net_payment_terms_days": -5},
        {**GOOD_CONTRACT, "id": "c-5", "starting_at": "yesterday"},
        "not an object",
    ]
    _hostile(install_client, contracts={"data": [GOOD_CONTRACT, *broken], "cursor": None})
    part = region(_page(support_client), "contracts")
    assert 'data-contract-id="c-1"' in part and "$10,000.00" in part
    assert "Good &lt;b&gt;contract&lt;/b&gt;" in part  # escaped, never markup
    assert "5 of the contracts Metronome sent could not be read" in part


def test_an_unreadable_invoice_is_left_out_and_counted_beside_the_good_ones(
    support_client, install_client
):
    from customers.sandbox.invoices import generate_invoices

    good = generate_invoices(CUSTOMER)[:2]
    broken = [{**good[0], "id": "inv-bad", "total": "lots"}, "not an object"]
    _hostile(install_client, invoices={"data": [good[0], *broken, good[1]], "next_page": None})
    part = region(_page(support_client), "invoices")
    assert re.findall(r'data-invoice-id="([^"]+)"', part) == [good[0]["id"], good[1]["id"]]
    assert "2 of the invoices Metronome sent could not be read and are not shown." in part


def test_a_page_larger_than_asked_for_is_refused(support_client, install_client):
    huge = {"data": [GOOD_CONTRACT] * 21, "cursor": None}
    _hostile(install_client, contracts=huge)
    part = region(_page(support_client), "contracts")
    assert "Could not load contracts." in part and "21 contracts on one page" in part


def test_a_repeated_cursor_is_an_error_not_a_loop(support_client, install_client):
    _hostile(install_client, alerts={"data": [], "next_page": "same"})
    part = region(_page(support_client), "alerts")
    assert "Could not load alerts." in part and "sent before" in part


def test_endless_pages_stop_at_the_bound_with_more_in_metronome(support_client, install_client):
    pages = iter(range(10_000))

    def endless(request: httpx.Request) -> dict[str, Any]:
        number = next(pages)
        contract = {**GOOD_CONTRACT, "id": f"c-{number}"}
        return {"data": [contract] * 1, "cursor": f"page-{number}"}

    _hostile(install_client, contracts=endless)
    part = region(_page(support_client), "contracts")
    assert "Showing the first 5 contracts; more in" in part


def test_hostile_balances_numbers_and_shapes(support_client, install_client):
    good = {
        "id": "b-1",
        "type": "CREDIT",
        "name": "Credit",
        "product": {"id": "p", "name": "Credits"},
        "access_schedule": {
            "credit_type": {"id": "usd", "name": "USD (cents)"},
            "schedule_items": [
                {
                    "id": "s",
                    "amount": 1000,
                    "starting_at": "2026-01-01T00:00:00Z",
                    "ending_before": "2030-01-01T00:00:00Z",
                }
            ],
        },
        "balance": 5000,  # more left than granted: the bar is full, not past its end
    }
    hostile = [
        {**good, "id": "b-2", "type": "SOMETHING"},
        {**good, "id": "b-3", "balance": "lots"},
        {**good, "id": "b-4", "product": None},
        {**good, "id": "b-5", "access_schedule": {"schedule_items": [{"amount": True}]}},
    ]
    _hostile(install_client, balances={"data": [good, *hostile], "next_page": None})
    part = region(_page(support_client), "balances")
    assert 'data-balance-id="b-1"' in part and 'value="1.0000"' in part
    assert "4 of the commits and credits Metronome sent could not be read" in part


def test_usage_rows_of_another_customer_or_day_are_not_counted(support_client, install_client):
    def usage(request: httpx.Request) -> dict[str, Any]:
        body = json.loads(request.content)
        start = datetime.fromisoformat(body["starting_on"].replace("Z", "+00:00"))
        row = {
            "billable_metric_id": "m",
            "billable_metric_name": "<i>Calls</i>",
            "start_timestamp": start.isoformat(),
            "end_timestamp": start.isoformat(),
            "customer_id": CUSTOMER_ID,
            "value": 7,
        }
        return {
            "data": [
                row,
                {**row, "value": 1000},  # the same day again: not more usage
                {**row, "customer_id": "someone-else", "value": 5},
                {**row, "start_timestamp": "1999-01-01T00:00:00Z"},
                {**row, "value": "7"},
            ],
            "next_page": None,
        }

    _hostile(install_client, usage=usage)
    part = region(_page(support_client), "usage")
    assert "&lt;i&gt;Calls&lt;/i&gt;" in part
    assert "30-day total</span> <strong>7</strong>" in part
    assert "3 usage rows Metronome sent could not be read" in part


def test_usage_of_which_no_row_could_be_read_says_so_not_no_usage(support_client, install_client):
    row = {
        "billable_metric_id": "m",
        "billable_metric_name": "Calls",
        "start_timestamp": "2026-12-01T00:00:00Z",
        "end_timestamp": "2026-12-02T00:00:00Z",
        "customer_id": CUSTOMER_ID,
    }
    unreadable = [{**row, "value": "12"}, {**row, "value": {"n": 1}}, {**row, "value": [1]}]
    _hostile(install_client, usage={"data": unreadable, "next_page": None})
    part = region(_page(support_client), "usage")
    assert "3 usage rows Metronome sent could not be read" in part
    assert "No usage in the last 30 days" not in part


def test_a_region_that_is_not_json_is_a_message(support_client, install_client):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v1/customers/{CUSTOMER_ID}":
            return httpx.Response(200, json={"data": CUSTOMER})
        if request.url.path == "/v1/usage":
            return httpx.Response(200, content=b"<html>oops</html>")
        return httpx.Response(200, json={"data": [], "next_page": None})

    install_client(httpx.MockTransport(answer), max_retries=0)
    part = region(_page(support_client), "usage")
    assert "Could not load usage." in part and "not JSON" in part
