"""Fixtures shared by the test modules: the sandbox over a real socket, and a clean slate for
the process's shared Metronome client."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from customers import metronome, wiring
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxServer, SandboxTransport

# Big enough for many pages at small limits, small enough to build in a few milliseconds.
SANDBOX_SERVER_CUSTOMERS = 1500


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every transactional test restores the database it found. A plain one ends with a flush
    whose post_migrate re-creates the content types, and the next serialized test then fails
    restoring them again: only on PostgreSQL, where the tests that run after it differ."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if (
            marker
            and marker.kwargs.get("transaction")
            and not marker.kwargs.get("serialized_rollback")
        ):
            raise pytest.UsageError(
                f"{item.nodeid}: a transactional test needs serialized_rollback=True"
            )


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """A standalone sandbox on 127.0.0.1 with 1,500 customers and no faults, shared by the
    whole run: tests that need faults build their own `SandboxAPI`."""
    with SandboxServer(SandboxAPI(SANDBOX_SERVER_CUSTOMERS), host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture(autouse=True)
def empty_search_cache() -> Iterator[None]:
    """Each test starts with no cached search: a cached result belongs to another test's
    sandbox."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def pages_read_to_the_end(monkeypatch) -> None:
    """Django's test client reads a streamed customers page to its end, as a browser does:
    its results are made while the second part is sent (views._streamed_page), so a test
    that only looks at what Metronome was asked would otherwise see nothing asked.
    tests/pages/test_streamed_page.py reads the parts one by one (a client whose
    `reads_pages_whole` is False)."""
    from django.test import Client

    from customers.views import StreamedPage

    request = Client.request

    def read_whole(self: Client, **params: Any) -> Any:
        response = request(self, **params)
        if isinstance(response, StreamedPage) and getattr(self, "reads_pages_whole", True):
            response.content  # noqa: B018 (read for its effect: the stream to its end)
        return response

    monkeypatch.setattr(Client, "request", read_whole)


@pytest.fixture
def fresh_metronome_client() -> Iterator[None]:
    """Drop the process's shared client before and after the test, so a test that changes
    the Metronome settings neither sees nor leaves behind a client built from other ones."""
    wiring.reset_client()
    yield
    wiring.reset_client()


# Three pages at the export's 100 per page, one of them partial.
SANDBOX_API_CUSTOMERS = 250


@pytest.fixture
def install_client(monkeypatch) -> Iterator[Callable[..., metronome.MetronomeClient]]:
    """Returns `install(transport, *, token=SANDBOX_TOKEN, **client_options)`: makes a client
    over that httpx transport the process's Metronome client, with retries that do not
    sleep."""
    clients: list[metronome.MetronomeClient] = []

    def install(
        transport: httpx.BaseTransport, *, token: str = SANDBOX_TOKEN, **client_options
    ) -> metronome.MetronomeClient:
        client = metronome.MetronomeClient(
            base_url="http://metronome.test",
            bearer_token=token,
            transport=transport,
            sleep=lambda seconds: None,
            **client_options,
        )
        clients.append(client)
        monkeypatch.setattr(wiring, "_client", client)
        return client

    yield install
    for client in clients:
        client.close()


@pytest.fixture
def install_sandbox(install_client) -> Callable[..., SandboxAPI]:
    """Returns `install(customers=250, **client_options) -> SandboxAPI`: makes an in-process
    sandbox the process's Metronome client. Change `api.faults` at any point of a test to
    inject failures."""

    def install(customers=SANDBOX_API_CUSTOMERS, **client_options) -> SandboxAPI:
        api = SandboxAPI(customers)
        install_client(SandboxTransport(api), **client_options)
        return api

    return install


@pytest.fixture
def sync_index(db, install_sandbox) -> Callable[..., SandboxAPI]:
    """Returns `sync(customers) -> SandboxAPI`: an in-process sandbox of those customers as
    the process's Metronome client, and the customer index synced from it."""
    from customers.index import sync as index_sync

    def sync(customers) -> SandboxAPI:
        api = install_sandbox(customers)
        run = index_sync.sync(wiring.get_client())
        assert run.outcome == "succeeded", run.error
        return api

    return sync


@pytest.fixture
def sandbox_api(install_sandbox) -> SandboxAPI:
    """An in-process sandbox of 250 customers as the process's Metronome client."""
    return install_sandbox()


@pytest.fixture
def finance_client(client, db):
    """The Django test client, logged in as a member of Finance (may view and export)."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("fiona")
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture(scope="module")
def sdk(sandbox_server: SandboxServer) -> Iterator[Any]:
    """Metronome's official Python SDK pointed at the shared sandbox server, without retries."""
    from metronome import Metronome  # the SDK, not customers.metronome

    with Metronome(
        base_url=sandbox_server.url, bearer_token=SANDBOX_TOKEN, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def indexed(db, install_client) -> None:
    """The index synced from factories.CUSTOMERS, and Metronome still holding them unchanged."""
    from customers import wiring
    from customers.index import sync as index_sync
    from customers.models import SyncRun
    from tests.factories import CUSTOMERS, install_metronome

    install_metronome(install_client, CUSTOMERS)
    run = index_sync.sync(wiring.get_client())
    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error
