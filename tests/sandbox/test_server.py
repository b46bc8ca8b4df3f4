"""customers/sandbox/server.py: the sandbox as an httpx transport and as a standalone server,
and `manage.py run_sandbox`."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from django.core.management import CommandError, call_command

from customers.management.commands import run_sandbox
from customers.sandbox import (
    SANDBOX_TOKEN,
    Faults,
    SandboxAPI,
    SandboxServer,
    SandboxTransport,
    generate_customers,
)
from tests.factories import (
    SANDBOX_AUTH,
    page_all_of_sandbox,
    result_order,
)

# --- transport and standalone server -------------------------------------------------------


def test_transport_answers_httpx_requests_in_process(api, active) -> None:
    with httpx.Client(transport=SandboxTransport(api), base_url="http://sandbox") as client:
        response = client.get("/v1/customers", params={"limit": 2}, headers=SANDBOX_AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"] == result_order(active)[:2]
    assert api.request_count == 1


def test_server_answers_over_a_real_socket_and_releases_the_port(api, active) -> None:
    server = SandboxServer(api, port=0).start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        with httpx.Client(base_url=server.url, headers=SANDBOX_AUTH) as client:
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
        limited = client.get("/v1/customers", headers=SANDBOX_AUTH)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        assert client.post("/_sandbox/faults", json={"nope": 1}).status_code == 400
        assert client.post("/_sandbox/reset").status_code == 200
        assert client.get("/v1/customers", headers=SANDBOX_AUTH).status_code == 200
        assert client.get("/_sandbox/stats").json()["request_count"] == 1


def test_server_answers_concurrent_clients_with_latency(api) -> None:
    api.faults = Faults(latency_s=0.2)
    results: list[int] = []

    def fetch(url: str) -> None:
        results.append(httpx.get(url + "/v1/customers?limit=1", headers=SANDBOX_AUTH).status_code)

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
    rows, _ = page_all_of_sandbox(SandboxAPI([late, early]), {})
    assert [r["id"] for r in rows] == [early["id"], late["id"]]
