"""The sandbox: its generated data, the fake API, fault injection, transport and server."""

from __future__ import annotations

import base64
import collections
import io
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from django.core.management import CommandError, call_command

from customers import salesforce
from customers.management.commands import run_sandbox
from customers.sandbox import (
    SANDBOX_TOKEN,
    Faults,
    SandboxAPI,
    SandboxServer,
    SandboxTransport,
    generate_customers,
)
from customers.sandbox import data as sandbox_data

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# --- helpers -------------------------------------------------------------------------------


def call(
    api: SandboxAPI,
    path: str = "/v1/customers",
    query: str | Mapping[str, Any] = "",
    *,
    method: str = "GET",
    headers: Mapping[str, str] = AUTH,
) -> tuple[int, dict[str, str], Any]:
    if not isinstance(query, str):
        query = urlencode(query)
    status, response_headers, body = api.handle(method, path, query, headers)
    return status, response_headers, json.loads(body)


def page_all(api: SandboxAPI, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every row of a listing, following next_page; also returns the number of requests."""
    rows: list[dict[str, Any]] = []
    cursor = None
    requests = 0
    while True:
        query = dict(params)
        if cursor is not None:
            query["next_page"] = cursor
        status, _, payload = call(api, query=query)
        requests += 1
        assert status == 200, payload
        rows.extend(payload["data"])
        cursor = payload["next_page"]
        if cursor is None:
            return rows, requests


def is_archived(customer: Mapping[str, Any]) -> bool:
    return customer.get("archived_at") is not None


def result_order(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(customers, key=lambda c: (c["created_at"], c["id"]))


@pytest.fixture(scope="module")
def customers() -> list[dict[str, Any]]:
    return generate_customers()


@pytest.fixture
def api() -> SandboxAPI:
    return SandboxAPI()


@pytest.fixture
def active(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in customers if not is_archived(c)]


@pytest.fixture
def archived(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in customers if is_archived(c)]


# --- generated data ------------------------------------------------------------------------


def test_same_seed_regenerates_identical_customers() -> None:
    first = json.dumps(generate_customers(300, seed=7))
    sandbox_data._cached.cache_clear()  # regenerate for real, not from the cache
    assert json.dumps(generate_customers(300, seed=7)) == first


def test_different_seeds_generate_different_customers() -> None:
    one = generate_customers(300, seed=1)
    two = generate_customers(300, seed=2)
    assert {c["id"] for c in one}.isdisjoint({c["id"] for c in two})
    assert [c["name"] for c in one] != [c["name"] for c in two]


def test_callers_get_a_fresh_list_so_reordering_it_leaves_the_cache_intact() -> None:
    mine = generate_customers(50, seed=3)
    mine.reverse()
    mine.append({})
    again = generate_customers(50, seed=3)
    assert len(again) == 50
    assert again == result_order(again)


def test_default_list_has_5000_unique_uuid_customers_in_created_order(customers) -> None:
    assert len(customers) >= 5000
    ids = [c["id"] for c in customers]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    assert customers == result_order(customers)


def test_every_customer_has_the_required_fields_with_the_right_types(customers) -> None:
    for customer in customers:
        assert isinstance(customer["name"], str) and customer["name"]
        assert isinstance(customer["external_id"], str)
        assert isinstance(customer["ingest_aliases"], list)
        assert isinstance(customer["custom_fields"], dict)
        assert "salesforce_account_id" in customer["customer_config"]
        assert all(
            isinstance(k, str) and isinstance(v, str) for k, v in customer["custom_fields"].items()
        )


def test_timestamps_are_rfc3339_utc_with_milliseconds_and_consistent(customers) -> None:
    first, last = customers[0]["created_at"], customers[-1]["created_at"]
    assert first.startswith("2019") and last.startswith("2026-11")
    for customer in customers:
        stamps = [customer["created_at"], customer["updated_at"]]
        if is_archived(customer):
            stamps.append(customer["archived_at"])
            assert customer["archived_at"] > customer["created_at"]
            assert customer["updated_at"] >= customer["archived_at"]
        billable = customer.get("current_billable_status")
        if billable and billable["effective_at"] is not None:
            stamps.append(billable["effective_at"])
        assert all(RFC3339_MS.fullmatch(stamp) for stamp in stamps), stamps
        assert customer["updated_at"] >= customer["created_at"]


def test_about_ten_percent_are_archived(customers, archived) -> None:
    assert 0.07 <= len(archived) / len(customers) <= 0.13


def test_active_customers_send_archived_at_as_null_or_leave_the_key_out(active) -> None:
    absent = sum("archived_at" not in c for c in active)
    null = sum("archived_at" in c and c["archived_at"] is None for c in active)
    assert absent + null == len(active)
    assert 0.2 <= absent / len(active) <= 0.4
    assert null > absent


def test_billable_status_is_mostly_billable_and_absent_for_some_accounts(customers) -> None:
    statuses = [c["current_billable_status"] for c in customers if "current_billable_status" in c]
    absent = len(customers) - len(statuses)
    assert 0.10 <= absent / len(customers) <= 0.20
    values = collections.Counter(s["value"] for s in statuses)
    assert set(values) == {"billable", "unbillable"}
    assert values["billable"] > 3 * values["unbillable"]
    assert any(s["effective_at"] is None for s in statuses)


def test_salesforce_ids_are_real_account_ids_some_null_some_shared(customers) -> None:
    ids = [c["customer_config"]["salesforce_account_id"] for c in customers]
    present = [i for i in ids if i is not None]
    assert 0.80 <= len(present) / len(ids) <= 0.90
    assert all(re.fullmatch(r"001[A-Za-z0-9]{12}(?:[A-Z0-5]{3})?", i) for i in present)
    counts = collections.Counter(present)
    shared = [sf for sf, n in counts.items() if n > 1]
    assert shared and max(counts.values()) == 2
    assert 0.003 <= 2 * len(shared) / len(customers) <= 0.02
    # A shared ID belongs to an archived record and the active one that replaced it.
    for sf in shared:
        pair = [c for c in customers if c["customer_config"]["salesforce_account_id"] == sf]
        assert sorted(is_archived(c) for c in pair) == [False, True]


def test_salesforce_ids_carry_valid_suffixes_and_some_are_stored_in_15_character_form(
    customers,
) -> None:
    present = [
        c["customer_config"]["salesforce_account_id"]
        for c in customers
        if c["customer_config"]["salesforce_account_id"] is not None
    ]
    long_form = [i for i in present if len(i) == 18]
    short_form = [i for i in present if len(i) == 15]
    assert len(long_form) + len(short_form) == len(present)
    assert 0.10 <= len(short_form) / len(present) <= 0.20
    # The sandbox computes suffixes on its own, so this checks one implementation against
    # the other; the documented examples pin down the dashboard's.
    assert all(salesforce.normalise(i).reading is salesforce.Reading.CHECKED for i in long_form)
    # Each 18-character ID is unique in its first 15 characters, so both forms name one
    # account whichever the customer stored.
    keys = collections.Counter(salesforce.key_for_stored(i) for i in set(present))
    assert max(keys.values()) == 1


def test_each_customer_has_one_to_three_aliases_and_external_id_is_the_first(customers) -> None:
    lengths = collections.Counter(len(c["ingest_aliases"]) for c in customers)
    assert set(lengths) <= {1, 2, 3, 4} and lengths[1] and lengths[2] and lengths[3]
    assert lengths[4] <= len(customers) * 0.005  # a replacement that inherited an alias
    assert all(c["external_id"] == c["ingest_aliases"][0] for c in customers)
    owners = collections.Counter(a for c in customers for a in set(c["ingest_aliases"]))
    assert max(owners.values()) <= 2
    assert sum(n == 2 for n in owners.values()) <= len(customers) * 0.01
    # The three shapes real accounts use: slug-number, acct_…, billing@….example.
    assert any(re.fullmatch(r"[a-z0-9-]+-[0-9]+", a) for a in owners)
    assert any(re.fullmatch(r"acct_[a-z0-9]{10}", a) for a in owners)
    assert any(re.fullmatch(r"billing(\+[0-9]+)?@[a-z0-9-]+\.example", a) for a in owners)


def test_names_include_non_ascii_commas_and_quotes(customers) -> None:
    names = {c["name"] for c in customers}
    assert any(not name.isascii() for name in names)
    assert any("," in name and '"' in name for name in names)
    assert "株式会社テスト" in names or "Zürich Datenwerk AG" in names
    assert len(names) > 1000


def test_custom_fields_include_csv_hostile_values_and_empty_objects(customers) -> None:
    values = [v for c in customers for v in c["custom_fields"].values()]
    assert any("," in v for v in values)
    assert any('"' in v for v in values)
    assert any("\n" in v for v in values)
    assert any(not v.isascii() for v in values)
    for prefix in "=+-@":
        assert any(v.startswith(prefix) for v in values), prefix
    assert any(c["custom_fields"] == {} for c in customers)
    keys = {k for c in customers for k in c["custom_fields"]}
    assert {"region", "plan", "account_manager", "netsuite_id", "notes"} <= keys


# --- listing, filtering, paging ------------------------------------------------------------


def test_list_returns_active_customers_in_order_50_by_default(api, active) -> None:
    status, headers, payload = call(api)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert payload["data"] == result_order(active)[:50]
    assert isinstance(payload["next_page"], str)


def test_paging_with_limit_100_returns_every_active_customer_once_in_order(api, active) -> None:
    rows, requests = page_all(api, {"limit": 100})
    assert rows == result_order(active)
    assert requests == -(-len(active) // 100)


def test_only_archived_true_pages_through_exactly_the_archived_customers(api, archived) -> None:
    rows, _ = page_all(api, {"only_archived": "true", "limit": 37})
    assert rows == result_order(archived)
    rows, _ = page_all(api, {"only_archived": "false", "limit": 100})
    assert not any(is_archived(c) for c in rows)


def test_next_page_is_null_exactly_on_the_last_page(customers) -> None:
    small = SandboxAPI(customers[:10])
    actives = [c for c in customers[:10] if not is_archived(c)]
    _, _, payload = call(small, query={"limit": len(actives)})
    assert len(payload["data"]) == len(actives) and payload["next_page"] is None
    _, _, payload = call(small, query={"limit": len(actives) - 1})
    assert payload["next_page"] is not None
    _, _, payload = call(small, query={"limit": 1, "next_page": payload["next_page"]})
    assert payload["data"] == [actives[-1]] and payload["next_page"] is None


def test_the_limit_may_change_between_pages(api, active) -> None:
    _, _, first = call(api, query={"limit": 10})
    _, _, second = call(api, query={"limit": 25, "next_page": first["next_page"]})
    assert first["data"] + second["data"] == result_order(active)[:35]


def test_cursors_are_url_safe_and_contain_no_commas(api) -> None:
    _, _, payload = call(api, query={"limit": 1, "ingest_alias": "x,y"})
    assert payload["next_page"] is None
    _, _, payload = call(api, query={"limit": 1})
    assert re.fullmatch(r"[A-Za-z0-9_-]+", payload["next_page"])


def test_customer_ids_filter_returns_those_customers_in_result_order(api, active) -> None:
    wanted = [active[40], active[3], active[17]]
    ids = ",".join(c["id"].upper() for c in wanted)  # case does not matter for UUIDs
    _, _, payload = call(api, query={"customer_ids": ids})
    assert payload["data"] == result_order(wanted)
    assert payload["next_page"] is None


def test_comma_separated_ids_are_decoded_when_the_comma_is_percent_encoded(api, active) -> None:
    query = "customer_ids=" + quote(f"{active[0]['id']},{active[1]['id']}", safe="")
    assert "%2C" in query
    _, _, payload = call(api, query=query)
    assert [c["id"] for c in payload["data"]] == [active[0]["id"], active[1]["id"]]


def test_customer_ids_filter_respects_the_archived_switch(api, active, archived) -> None:
    ids = f"{active[0]['id']},{archived[0]['id']}"
    _, _, default = call(api, query={"customer_ids": ids})
    _, _, only_archived = call(api, query={"customer_ids": ids, "only_archived": "true"})
    assert default["data"] == [active[0]]
    assert only_archived["data"] == [archived[0]]


def test_unknown_customer_ids_simply_match_nothing(api) -> None:
    _, _, payload = call(api, query={"customer_ids": str(uuid.UUID(int=1))})
    assert payload == {"data": [], "next_page": None}


def test_salesforce_filter_finds_each_side_of_a_shared_id(api, customers) -> None:
    counts = collections.Counter(c["customer_config"]["salesforce_account_id"] for c in customers)
    shared = next(sf for sf, n in counts.items() if sf and n == 2)
    single = next(sf for sf, n in counts.items() if sf and n == 1)
    _, _, active_side = call(api, query={"salesforce_account_ids": f"{shared},{single}"})
    _, _, archived_side = call(
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
        _, _, payload = call(api, query={"salesforce_account_ids": value})
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
    _, _, payload = call(api, query={"ingest_alias": alias})
    assert customer in payload["data"]
    assert all(alias in c["ingest_aliases"] for c in payload["data"])
    _, _, prefix = call(api, query={"ingest_alias": alias[:-1]})
    _, _, upper = call(api, query={"ingest_alias": alias.upper()})
    assert customer not in prefix["data"] and customer not in upper["data"]


def test_filters_are_combined_with_and(api, active) -> None:
    one, two = active[5], active[6]
    ids = f"{one['id']},{two['id']}"
    _, _, payload = call(api, query={"customer_ids": ids, "ingest_alias": one["external_id"]})
    assert payload["data"] == [one]
    _, _, payload = call(api, query={"customer_ids": two["id"], "ingest_alias": one["external_id"]})
    assert payload["data"] == []


def test_empty_parameter_values_mean_no_filter(api) -> None:
    _, _, unfiltered = call(api, query={"limit": 20})
    query = "customer_ids=&salesforce_account_ids=&ingest_alias=&only_archived=&limit=20"
    status, _, payload = call(api, query=query)
    assert status == 200 and payload == unfiltered


def test_unknown_parameters_are_ignored(api) -> None:
    _, _, plain = call(api, query={"limit": 5})
    status, _, payload = call(api, query={"limit": 5, "sort": "name", "customer_id": "nope"})
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
    status, headers, payload = call(api, query=query)
    assert status == 400, payload
    assert headers["content-type"] == "application/json"
    assert isinstance(payload["message"], str) and payload["message"]


@pytest.mark.parametrize("name", ["customer_ids", "salesforce_account_ids"])
def test_more_than_100_array_values_get_400_but_100_are_fine(api, name) -> None:
    values = [str(uuid.UUID(int=i)) for i in range(101)]
    status, _, _ = call(api, query={name: ",".join(values[:100])})
    assert status == 200
    status, _, payload = call(api, query={name: ",".join(values)})
    assert status == 400 and "100" in payload["message"]


def test_a_cursor_sent_back_with_different_filters_gets_400(api, active) -> None:
    _, _, payload = call(api, query={"limit": 10})
    cursor = payload["next_page"]
    assert call(api, query={"limit": 10, "next_page": cursor})[0] == 200
    for changed in (
        {"only_archived": "true"},
        {"ingest_alias": active[0]["external_id"]},
        {"customer_ids": active[0]["id"]},
    ):
        status, _, error = call(api, query={"limit": 10, "next_page": cursor, **changed})
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
        status, _, payload = call(api, path, query, headers=headers)
        assert (status, payload) == (401, {"message": "Unauthorized"})


def test_header_name_case_does_not_matter_and_a_custom_token_works(customers) -> None:
    custom = SandboxAPI(customers[:5], token="s3cret")
    assert call(custom, headers={"authorization": "bearer s3cret"})[0] == 200
    assert call(custom, headers=AUTH)[0] == 401


# --- single customer, routing --------------------------------------------------------------


def test_get_by_id_returns_the_customer_even_when_archived(api, active, archived) -> None:
    for customer in (active[0], archived[0]):
        status, _, payload = call(api, f"/v1/customers/{customer['id']}")
        assert (status, payload) == (200, {"data": customer})


@pytest.mark.parametrize("raw_id", [str(uuid.UUID(int=12345)), "not-a-uuid"])
def test_get_by_unknown_id_is_404(api, raw_id) -> None:
    status, _, payload = call(api, f"/v1/customers/{raw_id}")
    assert (status, payload) == (404, {"message": "Customer not found"})


def test_other_paths_are_404_and_other_methods_405(api) -> None:
    assert call(api, "/v1/contracts")[0] == 404
    assert call(api, "/v1/customers/a/b")[0] == 404
    status, headers, payload = call(api, method="POST")
    assert status == 405 and headers["allow"] == "GET" and payload["message"]
    assert call(api, "/v1/customers/x", method="DELETE")[0] == 405


def test_bodies_are_compact_utf8_json(customers) -> None:
    name = "Zürich Datenwerk AG"
    customer = next(c for c in customers if c["name"] == name)
    status, _, body = SandboxAPI([customer]).handle("GET", "/v1/customers", "", AUTH)
    assert status == 200
    compact = json.dumps(customer, separators=(",", ":"), ensure_ascii=False).encode()
    assert body == b'{"data":[' + compact + b'],"next_page":null}'
    assert name.encode() in body  # UTF-8, not \u escapes


# --- faults --------------------------------------------------------------------------------


def test_fail_every_nth_request_answers_the_configured_status(api) -> None:
    api.faults = Faults(fail_every=3, fail_status=502)
    statuses = [call(api)[0] for _ in range(9)]
    assert statuses == [200, 200, 502] * 3
    # Invalid and single-customer requests count, and fail, just the same.
    assert call(api, query="limit=0")[0] == 400
    assert call(api, f"/v1/customers/{uuid.UUID(int=5)}")[0] == 404
    status, _, failed = call(api, f"/v1/customers/{uuid.UUID(int=5)}")
    assert (status, failed) == (502, {"message": "Sandbox injected failure"})


def test_rate_limit_every_nth_request_answers_429_with_retry_headers(api) -> None:
    api.faults = Faults(rate_limit_every=2, retry_after_s=2.5)
    assert call(api)[0] == 200
    status, headers, payload = call(api)
    assert status == 429 and payload["message"]
    assert headers["retry-after"] == "3"  # whole seconds, rounded up
    assert headers["retry-after-ms"] == "2500"
    api.faults = Faults(rate_limit_every=1, retry_after_s=0.2)
    status, headers, _ = call(api)
    assert (status, headers["retry-after"], headers["retry-after-ms"]) == (429, "1", "200")


def test_empty_pages_keep_their_cursor_so_no_rows_are_lost(api, active) -> None:
    api.faults = Faults(empty_page_every=2)
    rows, requests = page_all(api, {"limit": 100})
    assert rows == result_order(active)
    pages = -(-len(active) // 100)
    assert requests > pages  # the empty pages really happened
    _, _, payload = call(SandboxAPI(faults=Faults(empty_page_every=1)), query="limit=5")
    assert payload["data"] == [] and payload["next_page"] is not None


def test_latency_delays_every_answer(api) -> None:
    api.faults.latency_s = 0.05
    started = time.perf_counter()
    assert call(api)[0] == 200
    assert call(api, headers={})[0] == 401
    assert time.perf_counter() - started >= 0.1


def test_faults_can_be_mutated_or_replaced_while_serving(api) -> None:
    assert call(api)[0] == 200
    api.faults.fail_every = 1
    assert call(api)[0] == 503
    api.faults = Faults()
    assert call(api)[0] == 200


def test_request_count_and_reset(api) -> None:
    api.faults = Faults(fail_every=2)
    for _ in range(3):
        call(api)
    assert api.request_count == 3
    api.reset()
    assert api.request_count == 0 and api.faults == Faults()
    assert call(api)[0] == 200  # the fault sequence restarted as well


def test_fault_counting_is_exact_under_concurrency(api) -> None:
    api.faults = Faults(fail_every=4)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            status = api.handle("GET", "/v1/customers", "limit=1", AUTH)[0]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert api.request_count == 400
    assert collections.Counter(statuses) == {200: 300, 503: 100}


@pytest.mark.parametrize(
    "settings",
    [
        {"fail_every": -1},
        {"fail_every": 1.5},
        {"fail_every": True},
        {"latency_s": "1"},
        {"latency_s": float("nan")},
        {"fail_status": 200},
        {"retry_after_s": -0.1},
    ],
)
def test_faults_reject_invalid_settings(settings) -> None:
    with pytest.raises(ValueError):
        Faults(**settings)


def test_faults_from_dict_rejects_unknown_keys_and_round_trips() -> None:
    faults = Faults(latency_s=1, fail_every=2, empty_page_every=3)
    assert Faults.from_dict(faults.to_dict()) == faults
    assert faults.to_dict()["latency_s"] == 1.0
    with pytest.raises(ValueError, match="fail_evry"):
        Faults.from_dict({"fail_evry": 1})


# --- control endpoint ----------------------------------------------------------------------


def test_control_endpoint_reads_replaces_and_resets_faults(api) -> None:
    status, _, body = api.handle_control("POST", "/_sandbox/faults", b'{"fail_every": 1}')
    assert status == 200 and json.loads(body)["fail_every"] == 1
    assert api.faults == Faults(fail_every=1)
    assert call(api)[0] == 503
    _, _, body = api.handle_control("GET", "/_sandbox/faults")
    assert json.loads(body) == Faults(fail_every=1).to_dict()
    assert api.handle_control("POST", "/_sandbox/reset")[0] == 200
    assert api.faults == Faults() and api.request_count == 0
    _, _, body = api.handle_control("GET", "/_sandbox/stats")
    assert json.loads(body) == {"request_count": 0, "customers": len(api.customers)}


@pytest.mark.parametrize(
    "body",
    [b'{"fail_evry": 1}', b"not json", b"[1]", b'{"fail_every": "2"}', b'{"fail_status": 99}'],
)
def test_control_endpoint_rejects_bad_fault_settings_and_keeps_the_old_ones(api, body) -> None:
    api.faults = Faults(latency_s=0.001)
    status, _, payload = api.handle_control("POST", "/_sandbox/faults", body)
    assert status == 400 and json.loads(payload)["message"]
    assert api.faults == Faults(latency_s=0.001)


def test_control_endpoint_is_not_routed_through_the_transport(api) -> None:
    with httpx.Client(transport=SandboxTransport(api), base_url="http://sandbox") as client:
        assert client.post("/_sandbox/reset").status_code == 401
        response = client.post("/_sandbox/reset", headers=AUTH)
        assert response.status_code == 404


# --- transport and standalone server -------------------------------------------------------


def test_transport_answers_httpx_requests_in_process(api, active) -> None:
    with httpx.Client(transport=SandboxTransport(api), base_url="http://sandbox") as client:
        response = client.get("/v1/customers", params={"limit": 2}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"] == result_order(active)[:2]
    assert api.request_count == 1


def test_server_answers_over_a_real_socket_and_releases_the_port(api, active) -> None:
    server = SandboxServer(api, port=0).start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        with httpx.Client(base_url=server.url, headers=AUTH) as client:
            rows = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 100}
                if cursor:
                    params["next_page"] = cursor
                response = client.get("/v1/customers", params=params)
                assert response.status_code == 200
                assert response.headers["content-length"] == str(len(response.content))
                rows.extend(response.json()["data"])
                cursor = response.json()["next_page"]
                if cursor is None:
                    break
            assert rows == result_order(active)
            assert client.get("/v1/customers", headers={"Authorization": "x"}).status_code == 401
            missing = client.get(f"/v1/customers/{uuid.UUID(int=9)}")
            assert missing.json() == {"message": "Customer not found"}
    finally:
        server.stop()
    server.stop()  # idempotent
    with socket.socket() as probe:
        # The port is free again: nothing listens on it. SO_REUSEADDR, or the kept-alive
        # connections the server just closed (TIME_WAIT) would make the bind fail at random.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))


def test_server_keeps_connections_alive(api) -> None:
    with SandboxServer(api) as server, socket.create_connection((server.host, server.port)) as s:
        request = (
            f"GET /v1/customers?limit=1 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {SANDBOX_TOKEN}\r\n\r\n"
        ).encode()
        stream = s.makefile("rb")
        for _ in range(2):  # two requests on one connection
            s.sendall(request)
            assert stream.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := stream.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert json.loads(stream.read(length))["data"]
        stream.close()


def test_server_control_endpoint_changes_faults_at_runtime_without_a_token(api) -> None:
    with SandboxServer(api) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/v1/customers").status_code == 401  # the API still needs it
        response = client.post("/_sandbox/faults", json={"rate_limit_every": 1})
        assert response.status_code == 200
        assert client.get("/_sandbox/faults").json()["rate_limit_every"] == 1
        limited = client.get("/v1/customers", headers=AUTH)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        assert client.post("/_sandbox/faults", json={"nope": 1}).status_code == 400
        assert client.post("/_sandbox/reset").status_code == 200
        assert client.get("/v1/customers", headers=AUTH).status_code == 200
        assert client.get("/_sandbox/stats").json()["request_count"] == 1


def test_server_answers_concurrent_clients_with_latency(api) -> None:
    api.faults = Faults(latency_s=0.2)
    results: list[int] = []

    def fetch(url: str) -> None:
        results.append(httpx.get(url + "/v1/customers?limit=1", headers=AUTH).status_code)

    with SandboxServer(api) as server:
        started = time.perf_counter()
        threads = [threading.Thread(target=fetch, args=(server.url,)) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    assert results == [200] * 5
    # Only a lower bound: upper bounds on time flake on shared machines (see bench/ for speed).
    assert elapsed >= 0.2


# --- management command --------------------------------------------------------------------


def test_run_sandbox_builds_the_api_from_its_flags(monkeypatch) -> None:
    served: dict[str, Any] = {}

    def fake_serve_forever(self: SandboxServer) -> None:
        served["api"] = self.api
        served["url"] = self.url

    monkeypatch.setattr(SandboxServer, "serve_forever", fake_serve_forever)
    out = io.StringIO()
    call_command(
        run_sandbox.Command(),
        "--port=0",
        "--customers=40",
        "--seed=5",
        "--latency-ms=250",
        "--fail-every=7",
        "--fail-status=500",
        "--rate-limit-every=9",
        "--retry-after=2",
        "--empty-page-every=4",
        stdout=out,
    )
    api = served["api"]
    assert len(api.customers) == 40
    assert list(api.customers) == generate_customers(40, seed=5)
    assert api.faults == Faults(
        latency_s=0.25,
        fail_every=7,
        fail_status=500,
        rate_limit_every=9,
        retry_after_s=2,
        empty_page_every=4,
    )
    assert served["url"] in out.getvalue() and SANDBOX_TOKEN in out.getvalue()


@pytest.mark.parametrize("flag", ["--fail-status=200", "--fail-every=-1", "--latency-ms=x"])
def test_run_sandbox_rejects_invalid_flags(monkeypatch, flag) -> None:
    monkeypatch.setattr(SandboxServer, "serve_forever", lambda self: None)
    with pytest.raises(CommandError):
        call_command(run_sandbox.Command(), "--port=0", "--customers=5", flag)


def test_created_at_sort_handles_other_rfc3339_spellings() -> None:
    base = {"name": "x", "ingest_aliases": [], "custom_fields": {}, "customer_config": {}}
    # 23:00 UTC the day before, written with an offset: as text it sorts after `late`.
    early = {**base, "id": str(uuid.UUID(int=1)), "created_at": "2024-01-01T01:00:00+02:00"}
    late = {**base, "id": str(uuid.UUID(int=2)), "created_at": "2024-01-01T00:30:00.000Z"}
    assert late["created_at"] < early["created_at"]
    rows, _ = page_all(SandboxAPI([late, early]), {})
    assert [r["id"] for r in rows] == [early["id"], late["id"]]
