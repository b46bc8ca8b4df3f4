"""The sandbox's `GET /v1/customers/{id}/invoices`: its generated invoices and the endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from customers import metronome
from customers.sandbox import SANDBOX_TOKEN, Faults, SandboxAPI, SandboxTransport
from customers.sandbox.invoices import DATA_END, USD_CENTS, generate_invoices

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CUSTOMERS = 400


@pytest.fixture(scope="module")
def api() -> SandboxAPI:
    return SandboxAPI(CUSTOMERS)


def call(
    api: SandboxAPI,
    customer_id: str,
    query: Mapping[str, Any] | str = "",
    headers: Mapping[str, str] = AUTH,
) -> tuple[int, Any]:
    if not isinstance(query, str):
        query = urlencode(query)
    status, _, body = api.handle("GET", f"/v1/customers/{customer_id}/invoices", query, headers)
    return status, json.loads(body)


def every_invoice(api: SandboxAPI, customer_id: str, **params: Any) -> list[dict[str, Any]]:
    invoices: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"next_page": cursor} if cursor else {})}
        status, body = call(api, customer_id, query)
        assert status == 200, body
        invoices += body["data"]
        cursor = body["next_page"]
        if cursor is None:
            return invoices


def date(invoice: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(invoice.get("issued_at") or invoice["end_timestamp"])


def long_standing(api: SandboxAPI) -> dict[str, Any]:
    """An active customer with more than a year of invoices."""
    return next(
        c for c in api.customers if c.get("archived_at") is None and len(generate_invoices(c)) > 14
    )


# --- generated invoices --------------------------------------------------------------------


def test_a_customers_invoices_are_the_same_on_every_call(api) -> None:
    customer = api.customers[5]
    assert generate_invoices(customer) == generate_invoices(dict(customer))


def test_invoices_have_the_sdks_required_fields_with_the_right_types(api) -> None:
    for customer in api.customers[:100]:
        for invoice in generate_invoices(customer):
            assert invoice["customer_id"] == customer["id"]
            assert isinstance(invoice["id"], str) and isinstance(invoice["total"], int | float)
            assert invoice["status"] in {"DRAFT", "FINALIZED", "VOID"}
            assert invoice["type"] in {"USAGE", "SCHEDULED"}
            assert set(invoice["credit_type"]) == {"id", "name"}
            for item in invoice["line_items"]:
                assert {"name", "total", "type", "credit_type"} <= set(item)
            assert invoice["total"] == pytest.approx(sum(i["total"] for i in invoice["line_items"]))
            for key in ("issued_at", "start_timestamp", "end_timestamp"):
                if key in invoice:
                    assert RFC3339_MS.fullmatch(invoice[key])


def test_the_mix_has_drafts_voids_schedules_other_credit_types_and_failed_payments(api) -> None:
    invoices = [i for c in api.customers for i in generate_invoices(c)]
    statuses = {i["status"] for i in invoices}
    assert statuses == {"DRAFT", "FINALIZED", "VOID"}
    assert {i["type"] for i in invoices} == {"USAGE", "SCHEDULED"}
    names = {i["credit_type"]["name"] for i in invoices}
    assert USD_CENTS["name"] in names and len(names) > 1
    external = {(i.get("external_invoice") or {}).get("external_status") for i in invoices}
    assert {"PAID", "PAYMENT_FAILED", None} <= external
    assert all("issued_at" not in i for i in invoices if i["status"] == "DRAFT")
    assert all("issued_at" in i for i in invoices if i["status"] == "FINALIZED")


def test_a_customer_signed_in_the_last_month_has_no_invoices_yet(api) -> None:
    newest = [c for c in api.customers if c["created_at"] >= DATA_END.strftime("%Y-%m-01")]
    assert newest, "the data set should have some customers signed in its last month"
    assert all(generate_invoices(c) == [] for c in newest)


def test_an_archived_customer_is_not_billed_after_it_was_archived(api) -> None:
    for customer in api.customers:
        if customer.get("archived_at") is None:
            continue
        archived = datetime.fromisoformat(customer["archived_at"])
        for invoice in generate_invoices(customer):
            assert datetime.fromisoformat(invoice["start_timestamp"]) < archived


# --- the endpoint ----------------------------------------------------------------------------


def test_invoices_come_oldest_first_by_default_and_newest_first_with_date_desc(api) -> None:
    customer = long_standing(api)
    ascending = every_invoice(api, customer["id"], limit=5)
    descending = every_invoice(api, customer["id"], limit=5, sort="date_desc")
    assert len(ascending) == len(generate_invoices(customer))
    assert [date(i) for i in ascending] == sorted(date(i) for i in ascending)
    assert descending == ascending[::-1]


def test_limit_and_next_page_page_through_every_invoice_once(api) -> None:
    customer = long_standing(api)
    status, first = call(api, customer["id"], {"limit": 3, "sort": "date_desc"})
    assert status == 200 and len(first["data"]) == 3 and first["next_page"]
    everything = every_invoice(api, customer["id"], limit=3, sort="date_desc")
    assert everything[:3] == first["data"]
    assert len({i["id"] for i in everything}) == len(everything)


def test_status_filters_and_the_billing_period_bounds(api) -> None:
    customer = long_standing(api)
    finalized = every_invoice(api, customer["id"], status="FINALIZED", limit=100)
    assert finalized and all(i["status"] == "FINALIZED" for i in finalized)

    bounds = {"starting_on": "2026-01-01T00:00:00Z", "ending_before": "2026-07-01T00:00:00Z"}
    bounded = every_invoice(api, customer["id"], limit=100, **bounds)
    assert bounded
    for invoice in bounded:
        assert invoice["start_timestamp"] >= "2026-01-01"
        assert invoice["end_timestamp"] <= "2026-07-01T00:00:00.000Z"
    # A period that ends exactly at ending_before (June, ending 1 July) is included.
    assert any(i["end_timestamp"].startswith("2026-07-01") for i in bounded if i["type"] == "USAGE")


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"status": "PAID"},
        {"sort": "newest"},
        {"starting_on": "yesterday"},
        {"ending_before": "2026-01-01T00:00:00"},
        {"next_page": "not a cursor!"},
        "limit=5&limit=6",
    ],
)
def test_bad_parameters_are_a_400_with_a_message(api, query) -> None:
    status, body = call(api, api.customers[0]["id"], query)
    assert status == 400
    assert isinstance(body["message"], str) and body["message"]


def test_a_cursor_only_works_with_the_parameters_it_was_issued_for(api) -> None:
    customer = long_standing(api)
    _, first = call(api, customer["id"], {"limit": 2, "sort": "date_desc"})
    status, body = call(api, customer["id"], {"limit": 2, "next_page": first["next_page"]})
    assert status == 400 and "different filters" in body["message"]


def test_an_unknown_or_malformed_customer_id_is_a_404(api) -> None:
    assert call(api, "00000000-0000-4000-8000-000000000000")[0] == 404
    assert call(api, "not-a-uuid")[0] == 404


def test_invoices_need_the_token_like_the_list(api) -> None:
    status, _ = call(api, api.customers[0]["id"], headers={"Authorization": "Bearer wrong"})
    assert status == 401


def test_invoices_get_the_same_injected_faults_as_the_list() -> None:
    api = SandboxAPI(50, faults=Faults(fail_every=2, fail_status=503))
    customer_id = api.customers[0]["id"]
    statuses = [call(api, customer_id)[0] for _ in range(4)]
    assert statuses == [200, 503, 200, 503]

    api.faults = Faults(rate_limit_every=1, retry_after_s=2)
    status, headers, _ = api.handle("GET", f"/v1/customers/{customer_id}/invoices", "", AUTH)
    assert status == 429 and headers["retry-after"] == "2"


def test_the_dashboards_client_reads_the_sandboxs_invoices_newest_first() -> None:
    api = SandboxAPI(CUSTOMERS)
    customer = long_standing(api)
    client = metronome.MetronomeClient(
        base_url="http://sandbox.invalid",
        bearer_token=SANDBOX_TOKEN,
        transport=SandboxTransport(api),
    )
    page = client.list_invoices(customer["id"], limit=10)
    assert len(page.invoices) == 10 and page.next_page
    assert [i.id for i in page.invoices] == [
        i["id"] for i in every_invoice(api, customer["id"], sort="date_desc", limit=10)[:10]
    ]
    # An empty page with a cursor is followed, never mistaken for "no invoices".
    api.faults = Faults(empty_page_every=1)
    with pytest.raises(metronome.MalformedResponse):
        client.list_invoices(customer["id"])
    api.faults = Faults(empty_page_every=2)
    assert client.list_invoices(customer["id"], limit=10).invoices == page.invoices
    client.close()
