"""An invoice's PDF, `GET /v1/customers/{id}/invoices/{invoice_id}/pdf`, streamed to the
person without keeping it whole in memory.

Reference: the official SDK's `client.v1.customers.invoices.retrieve_pdf` (metronome-sdk
4.12), which sends `Accept: application/pdf`.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator

import httpx

from customers.metronome.errors import (
    MalformedResponse,
    MetronomeTimeout,
    MetronomeUnavailable,
    invoice_not_found,
)
from customers.metronome.http import HTTPClient
from customers.metronome.invoices import invoice_path

# A one-page invoice is tens of kilobytes; hundreds of pages stay well below this.
MAX_PDF_BYTES = 20 * 1024 * 1024
PDF_MAGIC = b"%PDF-"


class InvoicePdf:
    """An invoice PDF being received: checked before the first byte goes to the person
    (status, `Content-Type`, declared size, the `%PDF-` signature), then streamed by
    `chunks()`, which stops with MalformedResponse past `max_bytes`, past the deadline or at
    the API token written out plainly in any case (the person then gets a broken download
    rather than a wrong file) and always closes. A PDF's text is mostly compressed: only a
    plain copy of the token can be told, as in an answer echoing the request."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        first: bytes,
        rest: Iterator[bytes],
        *,
        max_bytes: int,
        deadline: float,
        folded_token: bytes = b"",
    ) -> None:
        self._stack = stack
        self._first = first
        self._rest = rest
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._folded_token = folded_token

    def chunks(self) -> Iterator[bytes]:
        # The end of what was sent, so that a token split between two chunks is told too.
        carried = max(len(self._folded_token) - 1, 0)
        tail = b""
        try:
            received = 0
            for chunk in itertools.chain((self._first,), self._rest):
                received += len(chunk)
                if received > self._max_bytes or time.monotonic() > self._deadline:
                    raise MalformedResponse("Metronome's PDF was too large or too slow; stopped.")
                if self._folded_token:
                    seen = tail + chunk.lower()
                    if self._folded_token in seen:
                        raise MalformedResponse("Metronome's PDF contained the API token; stopped.")
                    tail = seen[-carried:] if carried else b""
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._stack.close()


# What an error answer's message needs: Metronome's are a line of JSON.
MAX_ERROR_BYTES = 4096


def _head(response: httpx.Response, deadline_s: float) -> bytes:
    """The start of an error answer's body, for its message: at most MAX_ERROR_BYTES, read
    within the deadline. An error body read whole (`response.read()`) held a worker for as
    long and as much memory as the server cared to send: 3 GB in an attack."""
    deadline = time.monotonic() + deadline_s
    head = b""
    for chunk in response.iter_bytes():
        head += chunk[: MAX_ERROR_BYTES - len(head)]
        if len(head) >= MAX_ERROR_BYTES or time.monotonic() > deadline:
            break
    return head


class InvoicePdfClient(HTTPClient):
    def open_invoice_pdf(
        self,
        customer_id: str,
        invoice_id: str,
        *,
        max_bytes: int = MAX_PDF_BYTES,
        deadline_s: float = 60.0,
    ) -> InvoicePdf:
        """Start receiving the invoice's PDF (one attempt: a person can click again)."""
        stack = contextlib.ExitStack()
        try:
            response = stack.enter_context(
                self._http.stream(
                    "GET",
                    self._url(invoice_path(customer_id, invoice_id) + "/pdf"),
                    headers={"Accept": "application/pdf"},
                )
            )
            if not response.is_success:
                if response.status_code == 404:
                    raise invoice_not_found(invoice_id)
                content = _head(response, deadline_s) if response.status_code < 500 else b""
                raise self._error_for(
                    invoice_path(customer_id, invoice_id) + "/pdf", response, content, None
                )
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            declared = response.headers.get("content-length", "")
            if content_type != "application/pdf":
                raise MalformedResponse("Metronome did not send a PDF for this invoice.")
            if declared.isdigit() and int(declared) > max_bytes:
                raise MalformedResponse(
                    f"The invoice PDF is larger than {max_bytes // (1024 * 1024)} MB; "
                    "download it from Metronome."
                )
            rest = response.iter_bytes()
            first = b""
            for chunk in rest:
                first += chunk
                if len(first) >= len(PDF_MAGIC):
                    break
            if not first.startswith(PDF_MAGIC):
                raise MalformedResponse("Metronome did not send a PDF for this invoice.")
            return InvoicePdf(
                stack,
                first,
                rest,
                max_bytes=max_bytes,
                deadline=time.monotonic() + deadline_s,
                folded_token=self._folded_token,
            )
        except httpx.TimeoutException:
            stack.close()
            raise MetronomeTimeout("Metronome did not send the PDF in time. Try again.") from None
        except httpx.TransportError:
            stack.close()
            raise MetronomeUnavailable(
                "The dashboard could not reach Metronome. Try again."
            ) from None
        except BaseException:
            stack.close()
            raise
