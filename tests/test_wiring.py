"""customers/wiring.py: the process's one shared Metronome client, built from the settings."""

from __future__ import annotations

import threading

import httpx
import pytest

import dashboard
from customers import wiring
from customers.metronome import (
    CustomerQuery,
    MetronomeClient,
)
from customers.sandbox import SANDBOX_TOKEN, SandboxTransport
from tests.fake_metronome import (
    customers_of,
)

# --- 9. The process's client ------------------------------------------------------------------


@pytest.fixture
def in_process_sandbox_settings(settings, fresh_metronome_client):
    settings.METRONOME_BEARER_TOKEN = ""
    settings.METRONOME_SANDBOX = True
    settings.METRONOME_BASE_URL = ""
    settings.SANDBOX_CUSTOMERS = 120
    return settings


def test_get_client_returns_one_shared_client_per_process(in_process_sandbox_settings, monkeypatch):
    build = wiring.client_from_settings
    builds: list[MetronomeClient] = []

    def slow_build() -> MetronomeClient:
        # A slow first build gives the other threads every chance to build their own.
        threading.Event().wait(0.05)
        builds.append(build())
        return builds[-1]

    monkeypatch.setattr(wiring, "client_from_settings", slow_build)
    start = threading.Barrier(8, timeout=5)
    clients: list[MetronomeClient] = []

    def grab() -> None:
        start.wait()
        clients.append(wiring.get_client())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert len(builds) == 1
    assert len(clients) == 8
    assert all(client is builds[0] for client in clients)
    assert wiring.get_client() is builds[0]


def test_the_process_client_sends_the_dashboards_user_agent(
    in_process_sandbox_settings, monkeypatch
):
    sent: list[httpx.Request] = []

    class RecordingSandbox(SandboxTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return super().handle_request(request)

    monkeypatch.setattr(wiring, "SandboxTransport", RecordingSandbox)

    wiring.get_client().list_customers(CustomerQuery(), limit=1)

    assert [request.headers["User-Agent"] for request in sent] == [
        f"metronome-customer-dashboard/{dashboard.__version__}"
    ]


def test_without_a_token_get_client_uses_the_in_process_sandbox(in_process_sandbox_settings):
    from customers.sandbox import generate_customers

    expected = [c["id"] for c in generate_customers(120) if not c.get("archived_at")]

    client = wiring.get_client()
    found = [c.id for c in customers_of(client, CustomerQuery(), page_size=50)]

    assert sorted(found) == sorted(expected)


def test_reset_client_drops_the_shared_client(in_process_sandbox_settings):
    first = wiring.get_client()

    wiring.reset_client()
    second = wiring.get_client()

    assert second is not first
    assert second.list_customers(CustomerQuery(), limit=5).customers
    with pytest.raises(RuntimeError, match="closed"):
        first.list_customers(CustomerQuery(), limit=5)


def test_with_a_token_get_client_calls_the_configured_base_url(
    settings, fresh_metronome_client, sandbox_server
):
    settings.METRONOME_BEARER_TOKEN = SANDBOX_TOKEN
    settings.METRONOME_SANDBOX = False
    settings.METRONOME_BASE_URL = sandbox_server.url
    before = sandbox_server.api.request_count

    page_of_customers = wiring.get_client().list_customers(CustomerQuery(), limit=3)

    assert len(page_of_customers.customers) == 3
    assert sandbox_server.api.request_count == before + 1
