"""customers/sandbox/faults.py: injected failures, and the control endpoint that sets them."""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid

import httpx
import pytest

from customers.sandbox import (
    Faults,
    SandboxAPI,
    SandboxTransport,
)
from tests.factories import (
    SANDBOX_AUTH,
    call_sandbox,
    page_all_of_sandbox,
    result_order,
)

# --- faults --------------------------------------------------------------------------------


def test_fail_every_nth_request_answers_the_configured_status(api) -> None:
    api.faults = Faults(fail_every=3, fail_status=502)
    statuses = [call_sandbox(api)[0] for _ in range(9)]
    assert statuses == [200, 200, 502] * 3
    # Invalid and single-customer requests count, and fail, just the same.
    assert call_sandbox(api, query="limit=0")[0] == 400
    assert call_sandbox(api, f"/v1/customers/{uuid.UUID(int=5)}")[0] == 404
    status, _, failed = call_sandbox(api, f"/v1/customers/{uuid.UUID(int=5)}")
    assert (status, failed) == (502, {"message": "Sandbox injected failure"})


def test_rate_limit_every_nth_request_answers_429_with_retry_headers(api) -> None:
    api.faults = Faults(rate_limit_every=2, retry_after_s=2.5)
    assert call_sandbox(api)[0] == 200
    status, headers, payload = call_sandbox(api)
    assert status == 429 and payload["message"]
    assert headers["retry-after"] == "3"  # whole seconds, rounded up
    assert headers["retry-after-ms"] == "2500"
    api.faults = Faults(rate_limit_every=1, retry_after_s=0.2)
    status, headers, _ = call_sandbox(api)
    assert (status, headers["retry-after"], headers["retry-after-ms"]) == (429, "1", "200")


def test_empty_pages_keep_their_cursor_so_no_rows_are_lost(api, active) -> None:
    api.faults = Faults(empty_page_every=2)
    rows, requests = page_all_of_sandbox(api, {"limit": 100})
    assert rows == result_order(active)
    pages = -(-len(active) // 100)
    assert requests > pages  # the empty pages really happened
    _, _, payload = call_sandbox(SandboxAPI(faults=Faults(empty_page_every=1)), query="limit=5")
    assert payload["data"] == [] and payload["next_page"] is not None


def test_latency_delays_every_answer(api) -> None:
    api.faults.latency_s = 0.05
    started = time.perf_counter()
    assert call_sandbox(api)[0] == 200
    assert call_sandbox(api, headers={})[0] == 401
    assert time.perf_counter() - started >= 0.1


def test_faults_can_be_mutated_or_replaced_while_serving(api) -> None:
    assert call_sandbox(api)[0] == 200
    api.faults.fail_every = 1
    assert call_sandbox(api)[0] == 503
    api.faults = Faults()
    assert call_sandbox(api)[0] == 200


def test_request_count_and_reset(api) -> None:
    api.faults = Faults(fail_every=2)
    for _ in range(3):
        call_sandbox(api)
    assert api.request_count == 3
    api.reset()
    assert api.request_count == 0 and api.faults == Faults()
    assert call_sandbox(api)[0] == 200  # the fault sequence restarted as well


def test_fault_counting_is_exact_under_concurrency(api) -> None:
    api.faults = Faults(fail_every=4)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            status = api.handle("GET", "/v1/customers", "limit=1", SANDBOX_AUTH)[0]
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
    assert call_sandbox(api)[0] == 503
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
        response = client.post("/_sandbox/reset", headers=SANDBOX_AUTH)
        assert response.status_code == 404
