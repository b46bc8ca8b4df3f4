"""The sandbox's contract-area endpoints (contracts, balances, alerts, usage) and one
invoice with its PDF: shapes the official SDK reads, paging the SDK follows, data a demo
needs, Metronome-like 400s, and one endpoint failing at a time."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from statistics import mean
from typing import Any

import httpx
import pytest
from metronome import Metronome
from metronome.types.shared.commit import Commit
from metronome.types.shared.contract_v2 import ContractV2
from metronome.types.shared.credit import Credit
from metronome.types.v1.customers.customer_alert import CustomerAlert
from metronome.types.v1.customers.invoice import Invoice
from metronome.types.v1.usage_list_response import UsageListResponse

from customers.sandbox import SANDBOX_TOKEN, Faults, SandboxAPI, SandboxServer
from customers.sandbox.faults import ENDPOINTS

TODAY = date(2026, 12, 4)
HEADERS = {"authorization": f"Bearer {SANDBOX_TOKEN}"}


@pytest.fixture(scope="module")
def api() -> SandboxAPI:
    return SandboxAPI(600, today=TODAY)


def _post(api: SandboxAPI, path: str, body: Any, query: str = "") -> tuple[int, Any]:
    status, _, payload = api.handle("POST", path, query, HEADERS, json.dumps(body).encode())
    return status, json.loads(payload)


def _contracts(api: SandboxAPI, customer_id: str) -> list[dict[str, Any]]:
    status, body = _post(
        api, "/v2/contracts/list", {"customer_id": customer_id, "include_balance": True}
    )
    assert status == 200, body
    return list(body["data"])


def _balances(api: SandboxAPI, customer_id: str) -> list[dict[str, Any]]:
    body = {"customer_id": customer_id, "include_balance": True}
    status, answer = _post(api, "/v1/contracts/customerBalances/list", body)
    assert status == 200, answer
    return list(answer["data"])


def _alerts(api: SandboxAPI, customer_id: str) -> list[dict[str, Any]]:
    status, body = _post(api, "/v1/customer-alerts/list", {"customer_id": customer_id})
    assert status == 200, body
    return list(body["data"])


def _usage_body(customer_id: str, days: int = 30) -> dict[str, Any]:
    end = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC)
    return {
        "customer_ids": [customer_id],
        "starting_on": (end - timedelta(days=days)).isoformat().replace("+00:00", "Z"),
        "ending_before": end.isoformat().replace("+00:00", "Z"),
        "window_size": "DAY",
    }


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- Shapes, read by the SDK's own models ---------------------------------------------------


def test_every_answer_is_read_by_the_sdks_models(api: SandboxAPI) -> None:
    kinds = {"PREPAID": Commit, "POSTPAID": Commit, "CREDIT": Credit}
    for customer in api.customers[:150]:
        for contract in _contracts(api, customer["id"]):
            ContractV2.model_validate(contract)
        for item in _balances(api, customer["id"]):
            kinds[item["type"]].model_validate(item)
        for alert in _alerts(api, customer["id"]):
            CustomerAlert.model_validate(alert)
        status, usage = _post(api, "/v1/usage", _usage_body(customer["id"], days=3))
        assert status == 200
        for row in usage["data"]:
            UsageListResponse.model_validate(row)


def test_one_invoice_is_the_listed_invoice_and_the_sdk_reads_it(api: SandboxAPI) -> None:
    customer = api.customers[300]
    status, _, body = api.handle("GET", f"/v1/customers/{customer['id']}/invoices", "", HEADERS)
    listed = json.loads(body)["data"][0]
    path = f"/v1/customers/{customer['id']}/invoices/{listed['id']}"
    status, _, body = api.handle("GET", path, "", HEADERS)
    assert status == 200
    assert json.loads(body)["data"] == listed
    Invoice.model_validate(listed)


def test_an_unknown_invoice_is_a_404(api: SandboxAPI) -> None:
    customer = api.customers[300]
    for invoice_id in ("00000000-0000-4000-8000-000000000000", "not-an-id"):
        path = f"/v1/customers/{customer['id']}/invoices/{invoice_id}"
        assert api.handle("GET", path, "", HEADERS)[0] == 404
        assert api.handle("GET", f"{path}/pdf", "", HEADERS)[0] == 404


def test_the_invoice_pdf_is_a_well_formed_pdf(api: SandboxAPI) -> None:
    customer = next(c for c in api.customers if "(" in c["name"] or "ü" in c["name"])
    invoices = json.loads(
        api.handle("GET", f"/v1/customers/{customer['id']}/invoices", "", HEADERS)[2]
    )["data"]
    path = f"/v1/customers/{customer['id']}/invoices/{invoices[0]['id']}/pdf"
    status, headers, pdf = api.handle("GET", path, "", HEADERS)
    assert status == 200 and headers["content-type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    # Every cross-reference entry points at the object it names.
    xref_at = int(re.search(rb"startxref\n(\d+)", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[xref_at:].startswith(b"xref\n")
    offsets = re.findall(rb"(\d{10}) 00000 n ", pdf)
    for number, offset in enumerate(offsets, start=1):
        assert pdf[int(offset) :].startswith(b"%d 0 obj" % number)


# --- The official SDK over HTTP: its paging conventions ---------------------------------------


def _customer_with_everything(api: SandboxAPI) -> dict[str, Any]:
    for customer in api.customers:
        if customer.get("archived_at"):
            continue
        if len(_contracts(api, customer["id"])) >= 2 and len(_balances(api, customer["id"])) >= 3:
            return dict(customer)
    raise AssertionError("no customer with two contracts and three balances")


def test_the_sdk_pages_through_every_list_as_the_sandbox_serves_it(
    sdk: Metronome, sandbox_server: SandboxServer
) -> None:
    api = sandbox_server.api
    customer = _customer_with_everything(api)
    contracts = list(sdk.v2.contracts.list(customer_id=customer["id"], limit=1))
    assert [c.id for c in contracts] == [c["id"] for c in _contracts(api, customer["id"])]

    balances = list(
        sdk.v1.contracts.list_balances(customer_id=customer["id"], include_balance=True, limit=1)
    )
    assert [b.id for b in balances] == [b["id"] for b in _balances(api, customer["id"])]
    assert all(b.balance is not None for b in balances)

    alerts = list(sdk.v1.customers.alerts.list(customer_id=customer["id"]))
    assert [a.alert.id for a in alerts] == [a["alert"]["id"] for a in _alerts(api, customer["id"])]

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # 100 rows to a page: four months of one customer's metrics take several pages.
    rows = list(
        sdk.v1.usage.list(
            starting_on=end - timedelta(days=120),
            ending_before=end,
            window_size="DAY",
            customer_ids=[customer["id"]],
        )
    )
    metrics = {row.billable_metric_id for row in rows}
    assert len(rows) == 120 * len(metrics) and len(rows) > 100


def test_the_sdk_reads_one_invoice_and_its_pdf(
    sdk: Metronome, sandbox_server: SandboxServer
) -> None:
    customer = sandbox_server.api.customers[200]
    invoice = next(iter(sdk.v1.customers.invoices.list(customer_id=customer["id"])))
    one = sdk.v1.customers.invoices.retrieve(customer_id=customer["id"], invoice_id=invoice.id)
    assert one.data.id == invoice.id and one.data.total == invoice.total
    pdf = sdk.v1.customers.invoices.retrieve_pdf(customer_id=customer["id"], invoice_id=invoice.id)
    assert pdf.read().startswith(b"%PDF-")


# --- Data a demo and the tests need ----------------------------------------------------------


def test_customers_with_and_without_contracts_and_the_contract_matches_the_invoices(
    api: SandboxAPI,
) -> None:
    with_contract = without = 0
    for position, customer in enumerate(api.customers[:200]):
        invoices = api._invoices_of(position)
        invoice_contract = next((i["contract_id"] for i in invoices if i.get("contract_id")), None)
        contracts = _contracts(api, customer["id"])
        if invoice_contract is None:
            without += 1
            assert contracts == [] and _balances(api, customer["id"]) == []
            continue
        with_contract += 1
        assert invoice_contract in {c["id"] for c in contracts}
        credit_type = invoices[-1]["credit_type"]
        for item in _balances(api, customer["id"]):
            assert item["access_schedule"]["credit_type"] == credit_type
    assert with_contract > 50 and without > 20


def test_no_scheduled_invoice_bills_more_than_its_contracts_value(api: SandboxAPI) -> None:
    scheduled = 0
    for position, customer in enumerate(api.customers[:300]):
        values = {c["id"]: c["total_contract_value"] for c in _contracts(api, customer["id"])}
        for invoice in api._invoices_of(position):
            if invoice["type"] == "SCHEDULED" and invoice.get("contract_id") in values:
                scheduled += 1
                assert invoice["total"] <= values[invoice["contract_id"]], customer["name"]
    assert scheduled > 20


def test_the_data_has_nearly_spent_commits_expiring_credits_and_alerts_in_alarm(
    api: SandboxAPI,
) -> None:
    nearly_spent = expiring = zero = in_alarm = ended = future = 0
    now = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC)
    for customer in api.customers[:200]:
        for item in _balances(api, customer["id"]):
            schedule = item["access_schedule"]["schedule_items"][0]
            granted, left = schedule["amount"], item["balance"]
            assert 0 <= left <= granted
            zero += left == 0
            nearly_spent += item["type"] == "PREPAID" and 0 < left < 0.07 * granted
            ends = _parse(schedule["ending_before"])
            expiring += left > 0 and now < ends <= now + timedelta(days=30)
        in_alarm += any(a["customer_status"] == "in_alarm" for a in _alerts(api, customer["id"]))
        for contract in _contracts(api, customer["id"]):
            end = contract.get("ending_before")
            ended += end is not None and _parse(end) <= now
            future += _parse(contract["starting_at"]) > now
    assert min(nearly_spent, expiring, zero, in_alarm, ended, future) >= 5


def test_the_low_commit_alert_is_in_alarm_exactly_when_the_balance_shown_is_below_it(
    api: SandboxAPI,
) -> None:
    now = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC)
    checked = alarms = 0
    for customer in api.customers[:200]:
        current = {
            contract["id"]
            for contract in _contracts(api, customer["id"])
            if _parse(contract["starting_at"]) <= now
            and (contract.get("ending_before") is None or _parse(contract["ending_before"]) > now)
        }
        left = [
            item["balance"]
            for item in _balances(api, customer["id"])
            if item["type"] == "PREPAID" and item["contract"]["id"] in current
        ]
        for alert in _alerts(api, customer["id"]):
            if alert["alert"]["name"] != "Prepaid commit below 10 %" or not left:
                continue
            threshold = alert["alert"]["threshold"]
            in_alarm = alert["customer_status"] == "in_alarm"
            assert in_alarm == (min(left) < threshold), (customer["name"], left, threshold)
            checked += 1
            alarms += in_alarm
    assert checked >= 50 and alarms >= 3


def test_usage_has_a_weekly_rhythm_and_none_before_the_customer_signed(api: SandboxAPI) -> None:
    customer = next(
        c
        for position, c in enumerate(api.customers)
        if not c.get("archived_at")
        and any(i["type"] == "USAGE" for i in api._invoices_of(position))
    )
    status, body = _post(api, "/v1/usage", _usage_body(customer["id"], days=28))
    assert status == 200 and body["next_page"] is None
    first_metric = body["data"][0]["billable_metric_id"]
    rows = [r for r in body["data"] if r["billable_metric_id"] == first_metric]
    assert len(rows) == 28
    weekdays = [r["value"] for r in rows if _parse(r["start_timestamp"]).weekday() < 5]
    weekends = [r["value"] for r in rows if _parse(r["start_timestamp"]).weekday() >= 5]
    assert mean(weekends) < 0.8 * mean(weekdays)

    signed = _parse(customer["created_at"])
    before = {
        "customer_ids": [customer["id"]],
        "starting_on": (signed - timedelta(days=3)).strftime("%Y-%m-%dT00:00:00Z"),
        "ending_before": (signed - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"),
        "window_size": "DAY",
    }
    status, body = _post(api, "/v1/usage", before)
    assert {r["value"] for r in body["data"]} == {None}


def test_the_same_request_gives_the_same_data(api: SandboxAPI) -> None:
    again = SandboxAPI(600, today=TODAY)
    customer = api.customers[42]
    assert _balances(api, customer["id"]) == _balances(again, customer["id"])
    assert _post(api, "/v1/usage", _usage_body(customer["id"])) == _post(
        again, "/v1/usage", _usage_body(customer["id"])
    )


# --- Bad requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v2/contracts/list", [], "JSON object"),
        ("/v2/contracts/list", {}, "customer_id is required"),
        ("/v2/contracts/list", {"customer_id": "nope"}, "valid UUID"),
        ("/v2/contracts/list", {"customer_id": 7}, "must be a string"),
        ("/v2/contracts/list", {"customer_id": "{id}", "limit": 21}, "limit"),
        ("/v2/contracts/list", {"customer_id": "{id}", "include_balance": "yes"}, "true or false"),
        (
            "/v2/contracts/list",
            {
                "customer_id": "{id}",
                "covering_date": "2026-01-01T00:00:00Z",
                "starting_at": "2026-01-01T00:00:00Z",
            },
            "together",
        ),
        ("/v2/contracts/list", {"customer_id": "{id}", "cursor": "zz"}, "cursor"),
        ("/v1/contracts/customerBalances/list", {"customer_id": "{id}", "limit": 0}, "limit"),
        ("/v1/contracts/customerBalances/list", {"customer_id": "{id}", "limit": 2.5}, "integer"),
        ("/v1/customer-alerts/list", {"customer_id": "{id}", "alert_statuses": ["on"]}, "ENABLED"),
        ("/v1/usage", {"starting_on": "2026-11-01T00:00:00Z"}, "ending_before is required"),
        (
            "/v1/usage",
            {
                "starting_on": "2026-11-01T05:00:00Z",
                "ending_before": "2026-11-02T00:00:00Z",
                "window_size": "DAY",
            },
            "midnight",
        ),
        (
            "/v1/usage",
            {
                "starting_on": "2026-11-01T00:00:00Z",
                "ending_before": "2026-11-02T00:00:00Z",
                "window_size": "WEEK",
            },
            "window_size",
        ),
        (
            "/v1/usage",
            {
                "starting_on": "2026-11-01T00:00:00Z",
                "ending_before": "2026-11-02T00:00:00Z",
                "window_size": "DAY",
                "customer_ids": "{id}",
            },
            "must be a list",
        ),
    ],
)
def test_bad_bodies_are_400s_that_say_what_is_wrong(
    api: SandboxAPI, path: str, body: Any, message: str
) -> None:
    customer_id = api.customers[0]["id"]
    raw = json.dumps(body).replace("{id}", customer_id).encode()
    status, _, answer = api.handle("POST", path, "", HEADERS, raw)
    assert status == 400
    assert message in json.loads(answer)["message"]


def test_an_unknown_customer_is_a_404_and_a_get_is_a_405(api: SandboxAPI) -> None:
    unknown = {"customer_id": "00000000-0000-4000-8000-000000000000"}
    for path in ("/v2/contracts/list", "/v1/customer-alerts/list"):
        assert _post(api, path, unknown)[0] == 404
    assert api.handle("GET", "/v2/contracts/list", "", HEADERS)[0] == 405
    assert _post(api, "/v1/customers", {})[0] == 405


def test_a_cursor_belongs_to_its_request(api: SandboxAPI) -> None:
    customer = _customer_with_everything(api)
    first = {"customer_id": customer["id"], "include_balance": True, "limit": 1}
    status, page = _post(api, "/v1/contracts/customerBalances/list", first)
    assert page["next_page"]
    other = {**first, "include_balance": False, "next_page": page["next_page"]}
    status, answer = _post(api, "/v1/contracts/customerBalances/list", other)
    assert status == 400 and "different" in answer["message"]


# --- Faults, one endpoint at a time ---------------------------------------------------------


def test_a_failing_endpoint_fails_alone() -> None:
    api = SandboxAPI(100, today=TODAY, faults=Faults(failing_endpoints=("balances",)))
    customer = api.customers[10]
    assert (
        _post(api, "/v1/contracts/customerBalances/list", {"customer_id": customer["id"]})[0] == 503
    )
    assert _post(api, "/v2/contracts/list", {"customer_id": customer["id"]})[0] == 200
    assert _post(api, "/v1/customer-alerts/list", {"customer_id": customer["id"]})[0] == 200
    assert api.handle("GET", f"/v1/customers/{customer['id']}", "", HEADERS)[0] == 200


def test_the_control_endpoint_sets_failing_endpoints_by_name() -> None:
    api = SandboxAPI(10, today=TODAY)
    status, _, body = api.handle_control(
        "POST", "/_sandbox/faults", json.dumps({"failing_endpoints": ["usage"]}).encode()
    )
    assert status == 200 and json.loads(body)["failing_endpoints"] == ["usage"]
    assert api.faults.failing_endpoints == ("usage",)
    status, _, body = api.handle_control(
        "POST", "/_sandbox/faults", json.dumps({"failing_endpoints": ["usgae"]}).encode()
    )
    assert status == 400 and "usgae" in json.loads(body)["message"]
    assert set(ENDPOINTS) >= {"contracts", "balances", "alerts", "usage", "invoice_pdf"}


def test_failing_endpoints_work_over_a_real_socket() -> None:
    api = SandboxAPI(20, today=TODAY)
    with SandboxServer(api) as server:
        httpx.post(
            f"{server.url}/_sandbox/faults", json={"failing_endpoints": ["contracts"]}
        ).raise_for_status()
        answer = httpx.post(
            f"{server.url}/v2/contracts/list",
            json={"customer_id": api.customers[0]["id"]},
            headers=HEADERS,
        )
        assert answer.status_code == 503
