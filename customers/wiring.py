"""Which Metronome the dashboard talks to, chosen from settings: the real API with the
configured token, or (without a token) the sandbox, in-process or at METRONOME_BASE_URL.
The client itself (customers/metronome.py) knows nothing of the sandbox."""

from functools import partial
from typing import Any

from django.conf import settings

from customers.metronome import MetronomeClient
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxTransport

# The in-process sandbox's client still speaks HTTP; this host never leaves the process.
IN_PROCESS_SANDBOX_URL = "http://sandbox.invalid"


def client_from_settings() -> MetronomeClient:
    client: partial[MetronomeClient] = partial(
        MetronomeClient,
        timeout=settings.METRONOME_TIMEOUT,
        connect_timeout=settings.METRONOME_CONNECT_TIMEOUT,
        max_retries=settings.METRONOME_MAX_RETRIES,
        retry_budget=settings.METRONOME_RETRY_BUDGET,
        deadline=settings.METRONOME_DEADLINE,
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
