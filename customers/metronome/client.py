"""The Metronome client: one object with every resource area the dashboard reads."""

from __future__ import annotations

from customers.metronome.alerts import AlertsClient
from customers.metronome.balances import BalancesClient
from customers.metronome.contracts import ContractsClient
from customers.metronome.customers import CustomersClient
from customers.metronome.invoice_pdf import InvoicePdfClient
from customers.metronome.invoices import InvoicesClient
from customers.metronome.usage import UsageClient


class MetronomeClient(
    CustomersClient,
    InvoicesClient,
    InvoicePdfClient,
    ContractsClient,
    BalancesClient,
    AlertsClient,
    UsageClient,
):
    """One per process (customers/wiring.py builds and holds it): it owns the pooled
    httpx.Client."""
