"""The process's one Metronome client: which Metronome it talks to, chosen from settings
(the real API with the configured token, or, without a token, the sandbox, in-process or at
METRONOME_BASE_URL), built on first use and held here. The client package
(customers/metronome/) knows nothing of the sandbox, of settings or of this module."""

import threading
from functools import partial
from typing import Any

from django.conf import settings

from customers.metronome import MetronomeClient, PagingLimits
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxTransport

# The in-process sandbox's client still speaks HTTP; this host never leaves the process.
IN_PROCESS_SANDBOX_URL = "http://sandbox.invalid"

_client: MetronomeClient | None = None
_client_lock = threading.Lock()


def get_client() -> MetronomeClient:
    """The process's one client, built from settings on first use."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = client_from_settings()
    return _client


def reset_client() -> None:
    """Drop the process's client, e.g. when tests change the Metronome settings."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


def client_from_settings() -> MetronomeClient:
    client: partial[MetronomeClient] = partial(
        MetronomeClient,
        timeout=settings.METRONOME_TIMEOUT,
        connect_timeout=settings.METRONOME_CONNECT_TIMEOUT,
        max_retries=settings.METRONOME_MAX_RETRIES,
        retry_budget=settings.METRONOME_RETRY_BUDGET,
        deadline=settings.METRONOME_DEADLINE,
        user_agent=settings.METRONOME_USER_AGENT,
        paging_limits=PagingLimits(
            max_rows=settings.PAGING_MAX_ROWS, max_seconds=settings.PAGING_MAX_SECONDS
        ),
    )
    if not settings.METRONOME_SANDBOX:
        return client(
            base_url=settings.METRONOME_BASE_URL, bearer_token=settings.METRONOME_BEARER_TOKEN
        )
    if settings.METRONOME_BASE_URL:
        # The standalone sandbox server (`manage.py run_sandbox`), over a real socket.
        return client(base_url=settings.METRONOME_BASE_URL, bearer_token=SANDBOX_TOKEN)
    sandbox: Any = SandboxTransport(SandboxAPI(settings.SANDBOX_CUSTOMERS))
    return client(base_url=IN_PROCESS_SANDBOX_URL, bearer_token=SANDBOX_TOKEN, transport=sandbox)
