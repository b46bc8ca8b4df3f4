"""A scriptable fake of Metronome's customer list for the client and search tests: wire
customers as Metronome sends them, and an `httpx.MockTransport` handler that answers in order
and remembers every request."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx

from customers.metronome import Customer, MetronomeClient
from customers.sandbox import SandboxAPI, SandboxTransport

BASE_URL = "https://api.metronome.test"
TOKEN = "tok_test_5f2b8c1e9a"


def customer_id(n: int) -> str:
    return str(uuid.UUID(int=n))


def salesforce_id(n: int) -> str:
    return f"001{n:015d}"


def wire_customer(n: int, **overrides: object) -> dict:
    """One CustomerDetail as Metronome sends it (an active customer unless overridden)."""
    created = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    customer = {
        "id": customer_id(n),
        "name": f"Customer {n}",
        "external_id": f"ext-{n}",
        "ingest_aliases": [f"alias-{n}"],
        "custom_fields": {"plan": "Pro"},
        "customer_config": {"salesforce_account_id": salesforce_id(n)},
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "updated_at": (created + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
    }
    customer.update(overrides)
    return customer


def page(customers: list[dict], next_page: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"data": customers, "next_page": next_page})


def error(status: int, message: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"message": message or f"HTTP {status}"}, headers=headers)


Answer = httpx.Response | type[Exception] | Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler giving its answers in order (the last one repeats) and
    remembering every request. An exception class is raised, as the transport would."""

    def __init__(self, *answers: Answer):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer("simulated failure", request=request)
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        # A fresh copy each time: a repeated answer must not share state between requests.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def make_client(handler, sleeps: list[float], **options) -> MetronomeClient:
    return MetronomeClient(
        base_url=options.pop("base_url", BASE_URL),
        bearer_token=options.pop("bearer_token", TOKEN),
        transport=httpx.MockTransport(handler),
        sleep=options.pop("sleep", sleeps.append),
        **options,
    )


def sandbox_client(api: SandboxAPI, sleeps: list[float]) -> MetronomeClient:
    return MetronomeClient(
        base_url="http://sandbox.invalid",
        bearer_token=api.token,
        transport=SandboxTransport(api),
        sleep=sleeps.append,
    )


def params_of(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode(), keep_blank_values=True)


def ids_in(request: httpx.Request, name: str) -> list[str]:
    values = params_of(request).get(name, [])
    assert len(values) <= 1, f"{name} was sent as repeated keys"
    return values[0].split(",") if values else []


def customers_of(client: MetronomeClient, query, page_size: int = 100) -> Iterator[Customer]:
    """Every customer of the query, across all of `client.iter_pages`."""
    for result in client.iter_pages(query, page_size=page_size):
        yield from result.customers
