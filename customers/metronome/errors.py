"""The failures a caller of the client sees: each a `MetronomeError` whose message a
support person can act on. httpx's own exceptions never leave the package."""

from __future__ import annotations


class MetronomeError(Exception):
    """A failure to show a person: `str(error)` says what happened and what to do."""


class TokenRejected(MetronomeError):
    pass


class BadRequest(MetronomeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidCursor(BadRequest):
    pass


class RateLimited(MetronomeError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MetronomeUnavailable(MetronomeError):
    pass


class MetronomeTimeout(MetronomeUnavailable):
    pass


class MalformedResponse(MetronomeError):
    pass


class CustomerNotFound(MetronomeError):
    """Metronome has no customer with that ID (HTTP 404)."""


def not_found_or(error: BadRequest, customer_id: str) -> MetronomeError:
    """A 404 from a customer's own path means the customer does not exist."""
    if error.status == 404:
        return CustomerNotFound(
            f"Metronome has no customer with the ID {customer_id}. It may have been "
            "deleted, or the link may be mistyped."
        )
    return error


class InvoiceNotFound(MetronomeError):
    """Metronome has no such invoice for that customer (HTTP 404)."""


def invoice_not_found(invoice_id: str) -> InvoiceNotFound:
    return InvoiceNotFound(
        f"Metronome has no invoice {invoice_id} for this customer. It may have been "
        "regenerated or voided; reload the invoices."
    )
