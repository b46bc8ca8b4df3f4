"""The client's `get_customer` and `list_invoices`, against httpx.MockTransport: the wire
requests, parsing, and what untrusted answers become."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from customers import metronome

CUSTOMER_ID = "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"
USD = {"id": "2714e483-4ff1-48e4-9e25-ac732e8f24f2", "name": "USD (cents)"}

CUSTOMER = {
    "id": CUSTOMER_ID,
    "external_id": "acme-1",
    "ingest_aliases": ["acme-1"],
    "name": "Acme",
    "customer_config": {"salesforce_account_id": "001xx000003DHurAAG"},
    "custom_fields": {"notes": "Line one\nLine two"},
    "created_at": "2024-01-02T03:04:05.000Z",
    "updated_at": "2024-02-02T03:04:05.000Z",
}

INVOICE = {
    "id": "5c2c5d6a-3c4e-4b1e-9a4c-9b2f2b5d0a11",
    "customer_id": CUSTOMER_ID,
    "status": "FINALIZED",
    "type": "USAGE",
    "total": 123456.5,
    "credit_type": USD,
    "line_items": [
        {"name": "API requests", "total": 123456.5, "type": "usage", "credit_type": USD},
    ],
    "issued_at": "2026-11-01T07:25:00.000Z",
    "start_timestamp": "2026-10-01T00:00:00.000Z",
    "end_timestamp": "2026-11-01T00:00:00.000Z",
    "plan_name": "Growth",
    "external_invoice": {
        "billing_provider_type": "stripe",
        "external_status": "PAYMENT_FAILED",
        "invoice_id": "in_123",
    },
}


def client_answering(
    answer: Callable[[httpx.Request], httpx.Response], sent: list[httpx.Request] | None = None
) -> metronome.MetronomeClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if sent is not None:
            sent.append(request)
        return answer(request)

    return metronome.MetronomeClient(
        base_url="http://metronome.test",
        bearer_token="secret-token",
        transport=httpx.MockTransport(handler),
        max_retries=0,
        sleep=lambda seconds: None,
    )


def invoices_answer(*invoices: Any, next_page: Any = None) -> Callable[..., httpx.Response]:
    # json.dumps, not httpx's json=, so a test can send what Python's parser accepts but
    # strict JSON does not (Infinity).
    body = json.dumps({"data": list(invoices), "next_page": next_page}).encode()
    return lambda request: httpx.Response(200, content=body)


# --- get_customer ----------------------------------------------------------------------------


def test_get_customer_asks_for_one_customer_and_parses_it() -> None:
    sent: list[httpx.Request] = []
    client = client_answering(lambda r: httpx.Response(200, json={"data": CUSTOMER}), sent)
    customer = client.get_customer(CUSTOMER_ID)
    assert sent[0].url.path == f"/v1/customers/{CUSTOMER_ID}"
    assert sent[0].headers["authorization"] == "Bearer secret-token"
    assert customer.name == "Acme" and customer.custom_fields == {"notes": "Line one\nLine two"}


def test_another_customer_than_the_one_asked_for_is_refused() -> None:
    impostor = {**CUSTOMER, "id": "00000000-0000-4000-8000-000000000001", "name": "IMPOSTOR"}
    client = client_answering(lambda r: httpx.Response(200, json={"data": impostor}))
    with pytest.raises(metronome.MalformedResponse, match="another customer"):
        client.get_customer(CUSTOMER_ID)
    # The same customer, its ID spelt another way, is the one asked for.
    upper = {**CUSTOMER, "id": CUSTOMER_ID.upper()}
    client = client_answering(lambda r: httpx.Response(200, json={"data": upper}))
    assert client.get_customer(CUSTOMER_ID).name == "Acme"


def test_an_unknown_customer_is_customer_not_found_naming_the_id() -> None:
    client = client_answering(lambda r: httpx.Response(404, json={"message": "Customer not found"}))
    with pytest.raises(metronome.CustomerNotFound, match=CUSTOMER_ID):
        client.get_customer(CUSTOMER_ID)


def test_other_refusals_stay_what_they_were() -> None:
    client = client_answering(lambda r: httpx.Response(400, json={"message": "bad"}))
    with pytest.raises(metronome.BadRequest) as caught:
        client.get_customer(CUSTOMER_ID)
    assert not isinstance(caught.value, metronome.CustomerNotFound)
    client = client_answering(lambda r: httpx.Response(401, json={"message": "no"}))
    with pytest.raises(metronome.TokenRejected):
        client.get_customer(CUSTOMER_ID)


def test_the_id_cannot_escape_its_path_segment() -> None:
    sent: list[httpx.Request] = []
    client = client_answering(lambda r: httpx.Response(404, json={}), sent)
    with pytest.raises(metronome.CustomerNotFound):
        client.get_customer("../customers?x=1")
    assert sent[0].url.raw_path == b"/v1/customers/..%2Fcustomers%3Fx%3D1"


@pytest.mark.parametrize("body", [[], {"data": None}, {"data": {"id": 1}}, {"nodata": {}}, "x"])
def test_a_malformed_customer_is_malformed_response(body) -> None:
    client = client_answering(lambda r: httpx.Response(200, json=body))
    with pytest.raises(metronome.MalformedResponse):
        client.get_customer(CUSTOMER_ID)


# --- list_invoices ----------------------------------------------------------------------------


def test_list_invoices_sends_limit_and_sort_and_parses_every_field() -> None:
    sent: list[httpx.Request] = []
    client = client_answering(invoices_answer(INVOICE, next_page="abc"), sent)
    page = client.list_invoices(CUSTOMER_ID, limit=12)

    assert sent[0].url.path == f"/v1/customers/{CUSTOMER_ID}/invoices"
    assert dict(sent[0].url.params) == {"limit": "12", "sort": "date_desc"}
    assert page.next_page == "abc"
    (invoice,) = page.invoices
    assert invoice == metronome.Invoice(
        id=INVOICE["id"],
        customer_id=CUSTOMER_ID,
        status="FINALIZED",
        type="USAGE",
        total=123456.5,
        credit_type=metronome.CreditType(id=USD["id"], name="USD (cents)"),
        line_items=(
            metronome.InvoiceLineItem(
                name="API requests",
                total=123456.5,
                type="usage",
                credit_type=metronome.CreditType(id=USD["id"], name="USD (cents)"),
            ),
        ),
        issued_at=datetime(2026, 11, 1, 7, 25, tzinfo=UTC),
        start_timestamp=datetime(2026, 10, 1, tzinfo=UTC),
        end_timestamp=datetime(2026, 11, 1, tzinfo=UTC),
        plan_name="Growth",
        billing_provider="stripe",
        external_status="PAYMENT_FAILED",
    )


def test_the_cursor_is_sent_back_and_a_bad_limit_or_sort_never_leaves() -> None:
    sent: list[httpx.Request] = []
    client = client_answering(invoices_answer(INVOICE), sent)
    client.list_invoices(CUSTOMER_ID, sort="date_asc", cursor="next-one")
    assert dict(sent[0].url.params) == {"limit": "10", "sort": "date_asc", "next_page": "next-one"}
    for bad in ({"limit": 0}, {"limit": 101}, {"sort": "newest"}):
        with pytest.raises(ValueError):
            client.list_invoices(CUSTOMER_ID, **bad)
    assert len(sent) == 1


def test_optional_invoice_fields_may_be_absent_or_null() -> None:
    minimal = {k: INVOICE[k] for k in ("id", "customer_id", "status", "type", "total")}
    minimal |= {"credit_type": USD, "line_items": [], "issued_at": None, "external_invoice": None}
    client = client_answering(invoices_answer(minimal))
    (invoice,) = client.list_invoices(CUSTOMER_ID).invoices
    assert invoice.issued_at is None and invoice.start_timestamp is None
    assert invoice.external_status is None and invoice.line_items == ()


def _broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    invoice = copy.deepcopy(INVOICE)
    target: Any = invoice
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return invoice


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("id",), KeyError),
        (("status",), None),
        (("type",), 7),
        (("total",), "12.00"),
        (("total",), True),
        (("total",), math.inf),
        (("credit_type",), "USD (cents)"),
        (("credit_type", "name"), KeyError),
        (("line_items",), {"name": "x"}),
        (("line_items", 0), "a line"),
        (("line_items", 0, "total"), None),
        (("issued_at",), "last Tuesday"),
        (("issued_at",), "2026-11-01T07:25:00"),
        (("end_timestamp",), 1700000000),
        (("external_invoice",), "PAID"),
        (("external_invoice", "external_status"), ["PAID"]),
        (("plan_name",), {"name": "Growth"}),
    ],
)
def test_a_malformed_invoice_is_left_out_of_the_list_and_counted_never_a_crash(path, value) -> None:
    client = client_answering(invoices_answer(_broken(path, value)))
    page = client.list_invoices(CUSTOMER_ID)
    assert page.invoices == () and page.unreadable == 1


@pytest.mark.parametrize(
    "body",
    [[], {"data": {}}, {"next_page": None}, {"data": [], "next_page": 5}, "invoices"],
)
def test_a_malformed_invoice_list_is_malformed_response(body) -> None:
    client = client_answering(lambda r: httpx.Response(200, json=body))
    with pytest.raises(metronome.MalformedResponse):
        client.list_invoices(CUSTOMER_ID)


def test_empty_pages_with_a_cursor_are_followed_to_the_invoices() -> None:
    answers = iter(
        [
            {"data": [], "next_page": "one"},
            {"data": [], "next_page": "two"},
            {"data": [INVOICE], "next_page": None},
        ]
    )
    sent: list[httpx.Request] = []
    client = client_answering(lambda r: httpx.Response(200, json=next(answers)), sent)
    assert [i.id for i in client.list_invoices(CUSTOMER_ID).invoices] == [INVOICE["id"]]
    assert [r.url.params.get("next_page") for r in sent] == [None, "one", "two"]


def test_a_cursor_that_loops_on_empty_pages_is_an_error_not_a_hang() -> None:
    client = client_answering(invoices_answer(next_page="same"))
    with pytest.raises(metronome.MalformedResponse, match="empty pages"):
        client.list_invoices(CUSTOMER_ID)


def test_invoices_of_an_unknown_customer_are_customer_not_found() -> None:
    client = client_answering(lambda r: httpx.Response(404, json={"message": "Customer not found"}))
    with pytest.raises(metronome.CustomerNotFound):
        client.list_invoices(CUSTOMER_ID)
