"""Which Metronome the dashboard talks to, chosen from settings: the real API with the
configured token, or (without a token) the sandbox, in-process or at METRONOME_BASE_URL.
The client itself (customers/metronome.py) knows nothing of the sandbox."""

from django.conf import settings

from customers.metronome import MetronomeClient
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxTransport

# The in-process sandbox's client still speaks HTTP; this host never leaves the process.
IN_PROCESS_SANDBOX_URL = "http://sandbox.invalid"


def client_from_settings() -> MetronomeClient:
    timeouts_and_retries = {
        "timeout": settings.METRONOME_TIMEOUT,
        "connect_timeout": settings.METRONOME_CONNECT_TIMEOUT,
        "max_retries": settings.METRONOME_MAX_RETRIES,
        "retry_budget": settings.METRONOME_RETRY_BUDGET,
    }
    if not settings.METRONOME_SANDBOX:
        return MetronomeClient(
            base_url=settings.METRONOME_BASE_URL,
            bearer_token=settings.METRONOME_BEARER_TOKEN,
            **timeouts_and_retries,
        )
    if settings.METRONOME_BASE_URL:
        # The standalone sandbox server (`manage.py run_sandbox`), over a real socket.
        return MetronomeClient(
            base_url=settings.METRONOME_BASE_URL,
            bearer_token=SANDBOX_TOKEN,
            **timeouts_and_retries,
        )
    return MetronomeClient(
        base_url=IN_PROCESS_SANDBOX_URL,
        bearer_token=SANDBOX_TOKEN,
        transport=SandboxTransport(SandboxAPI(settings.SANDBOX_CUSTOMERS)),
        **timeouts_and_retries,
    )
