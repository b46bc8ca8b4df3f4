"""The client's customer-page areas (contracts, balances, alerts, usage, one invoice): what
they send, as the official SDK sends it, and what they read back from the sandbox, whose
answers the SDK's own models read (tests/test_sandbox_accounts.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from customers.metronome import CustomerNotFound, InvoiceNotFound, MetronomeClient
from customers.metronome.contracts import Phase
from customers.metronome.usage import last_days
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxTransport

HEADERS = {"authorization": f"Bearer {SANDBOX_TOKEN}"}


@pytest.fixture(scope="module")
def api() -> SandboxAPI:
    return SandboxAPI(300)


@pytest.fixture
def client(api: SandboxAPI) -> Iterator[MetronomeClient]:
    with_sent = MetronomeClient(
        base_url="http://m.test", bearer_token=SANDBOX_TOKEN, transport=SandboxTransport(api)
    )
    yield with_sent
    with_sent.close()


def _wire(api: SandboxAPI, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    status, _, payload = api.handle("POST", path, "", HEADERS, json.dumps(body).encode())
    assert status == 200
    return list(json.loads(payload)["data"])


def _on_contract(api: SandboxAPI) -> dict[str, Any]:
    return next(
        c
        for c in api.customers
        if not c.get("archived_at")
        and len(_wire(api, "/v1/contracts/customerBalances/list", {"customer_id": c["id"]})) >= 3
    )


def test_contracts_read_back_as_sent_with_their_phase(api, client) -> None:
    customer = _on_contract(api)
    wire = _wire(api, "/v2/contracts/list", {"customer_id": customer["id"]})
    read = client.list_contracts(customer["id"])
    assert [c.id for c in read.items] == [c["id"] for c in wire]
    assert not read.more and not read.unreadable
    now = datetime.now(UTC)
    for contract, sent in zip(read.items, wire, strict=True):
        assert contract.name == sent["name"]
        assert contract.total_contract_value == sent["total_contract_value"]
        assert contract.net_payment_terms_days == sent["net_payment_terms_days"]
        assert (contract.ending_before is None) == ("ending_before" not in sent)
        assert contract.phase(now) in set(Phase)


def test_balances_read_granted_and_remaining_in_the_credit_types_units(api, client) -> None:
    customer = _on_contract(api)
    body = {"customer_id": customer["id"], "include_balance": True}
    wire = {b["id"]: b for b in _wire(api, "/v1/contracts/customerBalances/list", body)}
    for balance in client.list_balances(customer["id"]).items:
        sent = wire[balance.id]
        schedule = sent["access_schedule"]
        assert balance.granted == sum(i["amount"] for i in schedule["schedule_items"])
        assert balance.remaining == sent["balance"]
        assert balance.credit_type.name == schedule["credit_type"]["name"]
        assert 0 <= balance.remaining_share <= 1


def test_usage_is_thirty_days_per_metric_with_its_total(api, client) -> None:
    customer = _on_contract(api)
    start, end = last_days(datetime.now(UTC))
    usage = client.daily_usage(customer["id"], starting_on=start, ending_before=end)
    assert usage.metrics
    for metric in usage.metrics:
        assert [d.start for d in metric.days] == [start + timedelta(days=n) for n in range(30)]
        assert metric.total == pytest.approx(sum(d.value or 0 for d in metric.days))


def test_the_lists_are_sent_as_the_sdk_sends_them(install_client) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"data": [], "next_page": None, "cursor": None})

    client = install_client(httpx.MockTransport(answer))
    start, end = last_days(datetime(2026, 12, 4, 15, tzinfo=UTC))
    client.list_contracts("c1")
    client.list_balances("c1")
    client.list_alerts("c1")
    client.daily_usage("c1", starting_on=start, ending_before=end)
    bodies = {r.url.path: json.loads(r.content) for r in sent}
    assert all(r.method == "POST" for r in sent)
    assert bodies["/v2/contracts/list"] == {"customer_id": "c1", "limit": 20}
    assert bodies["/v1/contracts/customerBalances/list"] == {
        "customer_id": "c1",
        "include_balance": True,
        "limit": 25,
    }
    assert bodies["/v1/customer-alerts/list"]["alert_statuses"] == ["ENABLED", "DISABLED"]
    assert bodies["/v1/usage"] == {
        "customer_ids": ["c1"],
        "starting_on": "2026-11-04T00:00:00Z",
        "ending_before": "2026-12-04T00:00:00Z",
        "window_size": "DAY",
    }


def test_each_list_follows_its_own_cursor_convention(install_client) -> None:
    """Contracts page by `cursor` in the body, balances by `next_page` in the body, alerts
    and usage by `next_page` in the query string: as the SDK's page classes do."""
    seen: list[tuple[str, str | None, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        in_body = body.get("cursor") or body.get("next_page")
        in_query = request.url.params.get("next_page")
        seen.append((request.url.path, in_body, in_query))
        first = in_body is None and in_query is None
        key = "cursor" if request.url.path == "/v2/contracts/list" else "next_page"
        return httpx.Response(200, json={"data": [], key: "second" if first else None})

    client = install_client(httpx.MockTransport(answer))
    client.list_contracts("c1")
    client.list_balances("c1")
    client.list_alerts("c1")
    assert ("/v2/contracts/list", "second", None) in seen
    assert ("/v1/contracts/customerBalances/list", "second", None) in seen
    assert ("/v1/customer-alerts/list", None, "second") in seen


def test_an_unknown_customer_or_invoice_is_not_found(api, client) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(CustomerNotFound):
        client.list_contracts(unknown)
    with pytest.raises(InvoiceNotFound):
        client.get_invoice(api.customers[5]["id"], unknown)


def test_another_invoice_than_the_one_asked_for_is_refused(api, install_client) -> None:
    customer = api.customers[200]
    position = api.customers.index(customer)
    invoices = api._invoices_of(position)
    other = dict(invoices[0])

    client = install_client(
        httpx.MockTransport(lambda r: httpx.Response(200, json={"data": other}))
    )
    with pytest.raises(Exception, match="another invoice"):
        client.get_invoice(customer["id"], "not-" + other["id"])


def test_contracts_follow_a_next_page_too_as_the_api_notes_have_it(install_client) -> None:
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        contract = {"id": f"c{len(sent)}", "starting_at": "2026-01-01T00:00:00Z"}
        more = "page-2" if len(sent) == 1 else None
        return httpx.Response(200, json={"data": [contract], "next_page": more})

    client = install_client(httpx.MockTransport(answer))
    contracts = client.list_contracts("c1")
    assert [c.id for c in contracts.items] == ["c1", "c2"]
    assert sent[1]["cursor"] == "page-2"
