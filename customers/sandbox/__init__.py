"""The sandbox: a deterministic, Metronome-compatible fake of `GET /v1/customers`, one
customer, a customer's invoices (one of them, and its PDF), contracts, commits and credits,
alerts and usage; with faults to inject, one endpoint at a time if need be.

Used by the dashboard when no Metronome token is configured, by the tests and by the
benchmarks. `SandboxTransport` serves it in-process to httpx; `SandboxServer` serves it
over a real socket (`python manage.py run_sandbox`).
"""

from .api import SANDBOX_TOKEN, Faults, SandboxAPI, SandboxTransport
from .data import generate_customers
from .server import SandboxServer

__all__ = [
    "SANDBOX_TOKEN",
    "Faults",
    "SandboxAPI",
    "SandboxServer",
    "SandboxTransport",
    "generate_customers",
]
