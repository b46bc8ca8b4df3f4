"""customers/sandbox/api.py and customers_api.py: listing, filtering and paging as Metronome
does, validation and auth, one customer by ID, routing."""

from __future__ import annotations

import base64
import collections
import json
import re
import uuid
from urllib.parse import quote

import httpx
import pytest

from customers import salesforce
from customers.sandbox import (
    SANDBOX_TOKEN,
    SandboxAPI,
    SandboxTransport,
)
from tests.factories import (
    SANDBOX_AUTH,
    call_sandbox,
    is_archived,
    page_all_of_sandbox,
    result_order,
)

# --- listing, filtering, paging ------------------------------------------------------------


def test_list_returns_active_customers_in_order_50_by_default(api, active) -> None:
    status, headers, payload = call_sandbox(api)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert payload["data"] == result_order(active)[:50]
    assert isinstance(payload["next_page"], str)


def test_paging_with_limit_100_returns_every_active_customer_once_in_order(api, active) -> None:
    rows, requests = page_all_of_sandbox(api, {"limit": 100})
    assert rows == result_order(active)
    assert requests == -(-len(active) // 100)


def test_only_archived_true_pages_through_exactly_the_archived_customers(api, archived) -> None:
    rows, _ = page_all_of_sandbox(api, {"only_archived": "true", "limit": 37})
    assert rows == result_order(archived)
    rows, _ = page_all_of_sandbox(api, {"only_archived": "false", "limit": 100})
    assert not any(is_archived(c) for c in rows)


def test_next_page_is_null_exactly_on_the_last_page(customers) -> None:
    small = SandboxAPI(customers[:10])
    actives = [c for c in customers[:10] if not is_archived(c)]
    _, _, payload = call_sandbox(small, query={"limit": len(actives)})
    assert len(payload["data"]) == len(actives) and payload["next_page"] is None
    _, _, payload = call_sandbox(small, query={"limit": len(actives) - 1})
    assert payload["next_page"] is not None
    _, _, payload = call_sandbox(small, query={"limit": 1, "next_page": payload["next_page"]})
    assert payload["data"] == [actives[-1]] and payload["next_page"] is None


def test_the_limit_may_change_between_pages(api, active) -> None:
    _, _, first = call_sandbox(api, query={"limit": 10})
    _, _, second = call_sandbox(api, query={"limit": 25, "next_page": first["next_page"]})
    assert first["data"] + second["data"] == result_order(active)[:35]


def test_cursors_are_url_safe_and_contain_no_commas(api) -> None:
    _, _, payload = call_sandbox(api, query={"limit": 1, "ingest_alias": "x,y"})
    assert payload["next_page"] is None
    _, _, payload = call_sandbox(api, query={"limit": 1})
    assert re.fullmatch(r"[A-Za-z0-9_-]+", payload["next_page"])


def test_customer_ids_filter_returns_those_customers_in_result_order(api, active) -> None:
    wanted = [active[40], active[3], active[17]]
    ids = ",".join(c["id"].upper() for c in wanted)  # case does not matter for UUIDs
    _, _, payload = call_sandbox(api, query={"customer_ids": ids})
    assert payload["data"] == result_order(wanted)
    assert payload["next_page"] is None


def test_comma_separated_ids_are_decoded_when_the_comma_is_percent_encoded(api, active) -> None:
    query = "customer_ids=" + quote(f"{active[0]['id']},{active[1]['id']}", safe="")
    assert "%2C" in query
    _, _, payload = call_sandbox(api, query=query)
    assert [c["id"] for c in payload["data"]] == [active[0]["id"], active[1]["id"]]


def test_customer_ids_filter_respects_the_archived_switch(api, active, archived) -> None:
    ids = f"{active[0]['id']},{archived[0]['id']}"
    _, _, default = call_sandbox(api, query={"customer_ids": ids})
    _, _, only_archived = call_sandbox(api, query={"customer_ids": ids, "only_archived": "true"})
    assert default["data"] == [active[0]]
    assert only_archived["data"] == [archived[0]]


def test_unknown_customer_ids_simply_match_nothing(api) -> None:
    _, _, payload = call_sandbox(api, query={"customer_ids": str(uuid.UUID(int=1))})
    assert payload == {"data": [], "next_page": None}


def test_salesforce_filter_finds_each_side_of_a_shared_id(api, customers) -> None:
    counts = collections.Counter(c["customer_config"]["salesforce_account_id"] for c in customers)
    shared = next(sf for sf, n in counts.items() if sf and n == 2)
    single = next(sf for sf, n in counts.items() if sf and n == 1)
    _, _, active_side = call_sandbox(api, query={"salesforce_account_ids": f"{shared},{single}"})
    _, _, archived_side = call_sandbox(
        api, query={"salesforce_account_ids": shared, "only_archived": "true"}
    )
    matching = {c["id"] for c in active_side["data"]}
    expected = {
        c["id"]
        for c in customers
        if c["customer_config"]["salesforce_account_id"] in (shared, single) and not is_archived(c)
    }
    assert matching == expected and len(active_side["data"]) >= 1
    assert len(archived_side["data"]) == 1
    assert archived_side["data"][0]["customer_config"]["salesforce_account_id"] == shared


def test_salesforce_filter_is_a_plain_string_match_on_the_stored_form(api, active) -> None:
    customer = next(
        c
        for c in active
        if len(stored := c["customer_config"]["salesforce_account_id"] or "") == 15
        and stored != stored.lower()
    )
    stored = customer["customer_config"]["salesforce_account_id"]
    long_form = salesforce.to_18(stored)

    def found(value: str) -> list[str]:
        _, _, payload = call_sandbox(api, query={"salesforce_account_ids": value})
        return [c["id"] for c in payload["data"]]

    # As Metronome most likely matches: the stored 15-character form finds the customer,
    # its 18-character form or another case does not, so the dashboard sends both forms.
    assert found(stored) == [customer["id"]]
    assert found(long_form) == []
    assert found(stored.lower()) == []
    assert found(f"{long_form},{stored}") == [customer["id"]]


def test_ingest_alias_filter_is_an_exact_match(api, active) -> None:
    customer = active[100]
    alias = customer["ingest_aliases"][-1]
    _, _, payload = call_sandbox(api, query={"ingest_alias": alias})
    assert customer in payload["data"]
    assert all(alias in c["ingest_aliases"] for c in payload["data"])
    _, _, prefix = call_sandbox(api, query={"ingest_alias": alias[:-1]})
    _, _, upper = call_sandbox(api, query={"ingest_alias": alias.upper()})
    assert customer not in prefix["data"] and customer not in upper["data"]


def test_filters_are_combined_with_and(api, active) -> None:
    one, two = active[5], active[6]
    ids = f"{one['id']},{two['id']}"
    _, _, payload = call_sandbox(
        api, query={"customer_ids": ids, "ingest_alias": one["external_id"]}
    )
    assert payload["data"] == [one]
    _, _, payload = call_sandbox(
        api, query={"customer_ids": two["id"], "ingest_alias": one["external_id"]}
    )
    assert payload["data"] == []


def test_empty_parameter_values_mean_no_filter(api) -> None:
    _, _, unfiltered = call_sandbox(api, query={"limit": 20})
    query = "customer_ids=&salesforce_account_ids=&ingest_alias=&only_archived=&limit=20"
    status, _, payload = call_sandbox(api, query=query)
    assert status == 200 and payload == unfiltered


def test_unknown_parameters_are_ignored(api) -> None:
    _, _, plain = call_sandbox(api, query={"limit": 5})
    status, _, payload = call_sandbox(
        api, query={"limit": 5, "sort": "name", "customer_id": "nope"}
    )
    assert status == 200 and payload == plain


def test_the_official_sdk_pages_and_filters_through_the_transport(api, active) -> None:
    metronome = pytest.importorskip("metronome")
    http_client = httpx.Client(transport=SandboxTransport(api))
    client = metronome.Metronome(
        bearer_token=SANDBOX_TOKEN, base_url="http://sandbox.invalid", http_client=http_client
    )
    ids = [c.id for c in client.v1.customers.list(limit=100)]
    assert ids == [c["id"] for c in result_order(active)]
    wanted = [c["id"] for c in active[:3]]
    page = client.v1.customers.list(customer_ids=wanted, salesforce_account_ids=[])
    assert [c.id for c in page.data] == wanted


# --- validation and auth -------------------------------------------------------------------


def _cursor(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        "limit=%EF%BC%95",  # a full-width digit five
        "only_archived=yes",
        "only_archived=True",
        "only_archived=1",
        "customer_ids=not-a-uuid",
        "customer_ids=" + str(uuid.UUID(int=1)) + "%2Cnope",
        "next_page=garbage!",
        "next_page=" + _cursor([1, 2]),
        "next_page=" + _cursor({"o": -1, "f": "x"}),
        "next_page=" + _cursor({"o": True, "f": "x"}),
        "next_page=" + base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
        "limit=5&limit=6",
        "customer_ids=" + str(uuid.UUID(int=1)) + "&customer_ids=" + str(uuid.UUID(int=2)),
    ],
)
def test_invalid_requests_get_400_with_a_json_message(api, query) -> None:
    status, headers, payload = call_sandbox(api, query=query)
    assert status == 400, payload
    assert headers["content-type"] == "application/json"
    assert isinstance(payload["message"], str) and payload["message"]


@pytest.mark.parametrize("name", ["customer_ids", "salesforce_account_ids"])
def test_more_than_100_array_values_get_400_but_100_are_fine(api, name) -> None:
    values = [str(uuid.UUID(int=i)) for i in range(101)]
    status, _, _ = call_sandbox(api, query={name: ",".join(values[:100])})
    assert status == 200
    status, _, payload = call_sandbox(api, query={name: ",".join(values)})
    assert status == 400 and "100" in payload["message"]


def test_a_cursor_sent_back_with_different_filters_gets_400(api, active) -> None:
    _, _, payload = call_sandbox(api, query={"limit": 10})
    cursor = payload["next_page"]
    assert call_sandbox(api, query={"limit": 10, "next_page": cursor})[0] == 200
    for changed in (
        {"only_archived": "true"},
        {"ingest_alias": active[0]["external_id"]},
        {"customer_ids": active[0]["id"]},
    ):
        status, _, error = call_sandbox(api, query={"limit": 10, "next_page": cursor, **changed})
        assert status == 400 and "filters" in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": SANDBOX_TOKEN},
        {"Authorization": f"Basic {SANDBOX_TOKEN}"},
        {"Authorization": "Bearer "},
        {"X-Api-Key": SANDBOX_TOKEN},
    ],
)
def test_missing_or_wrong_token_gets_401_before_anything_else(api, headers) -> None:
    for path, query in (("/v1/customers", "limit=0"), ("/v1/customers/x", ""), ("/nope", "")):
        status, _, payload = call_sandbox(api, path, query, headers=headers)
        assert (status, payload) == (401, {"message": "Unauthorized"})


def test_header_name_case_does_not_matter_and_a_custom_token_works(customers) -> None:
    custom = SandboxAPI(customers[:5], token="s3cret")
    assert call_sandbox(custom, headers={"authorization": "bearer s3cret"})[0] == 200
    assert call_sandbox(custom, headers=SANDBOX_AUTH)[0] == 401


# --- single customer, routing --------------------------------------------------------------


def test_get_by_id_returns_the_customer_even_when_archived(api, active, archived) -> None:
    for customer in (active[0], archived[0]):
        status, _, payload = call_sandbox(api, f"/v1/customers/{customer['id']}")
        assert (status, payload) == (200, {"data": customer})


@pytest.mark.parametrize("raw_id", [str(uuid.UUID(int=12345)), "not-a-uuid"])
def test_get_by_unknown_id_is_404(api, raw_id) -> None:
    status, _, payload = call_sandbox(api, f"/v1/customers/{raw_id}")
    assert (status, payload) == (404, {"message": "Customer not found"})


def test_other_paths_are_404_and_other_methods_405(api) -> None:
    assert call_sandbox(api, "/v1/contracts")[0] == 404
    assert call_sandbox(api, "/v1/customers/a/b")[0] == 404
    status, headers, payload = call_sandbox(api, method="POST")
    assert status == 405 and headers["allow"] == "GET" and payload["message"]
    assert call_sandbox(api, "/v1/customers/x", method="DELETE")[0] == 405


def test_bodies_are_compact_utf8_json(customers) -> None:
    name = "Zürich Datenwerk AG"
    customer = next(c for c in customers if c["name"] == name)
    status, _, body = SandboxAPI([customer]).handle("GET", "/v1/customers", "", SANDBOX_AUTH)
    assert status == 200
    compact = json.dumps(customer, separators=(",", ":"), ensure_ascii=False).encode()
    assert body == b'{"data":[' + compact + b'],"next_page":null}'
    assert name.encode() in body  # UTF-8, not \u escapes
