"""The Metronome client: one object with every resource area the dashboard reads."""

from __future__ import annotations

from customers.metronome.customers import CustomersClient
from customers.metronome.invoices import InvoicesClient


class MetronomeClient(CustomersClient, InvoicesClient):
    """One per process (customers/wiring.py builds and holds it): it owns the pooled
    httpx.Client."""
