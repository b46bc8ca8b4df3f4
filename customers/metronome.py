"""The dashboard's only code that talks to Metronome.

Reference: https://docs.metronome.com/api-reference/customers/list-customers
and ../shared/metronome-api.md for the wire format as the official SDKs speak it.

The API client: wire types, one page or every page of `GET /v1/customers`, the SDKs' retry
rules, and a handful of `MetronomeError`s whose messages a support person can act on.
Callers get typed values (`Customer`, `CustomerPage`) and never see httpx or JSON. Pasted-ID
searches longer than the API takes at once are `customers/search.py`'s job; which
Metronome (the real one or the sandbox) is settings' and `customers/wiring.py`'s.
"""

from __future__ import annotations

import contextvars
import email.utils
import hashlib
import html
import itertools
import json
import logging
import math
import queue
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

import dashboard

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
MAX_IDS_PER_REQUEST = 100  # `maxItems: 100` in Metronome's spec, for each ID filter
USER_AGENT = f"metronome-customer-dashboard/{dashboard.__version__}"

# Retry rules copied from the official SDKs (metronome-sdk's _base_client.py).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_HONOURED_RETRY_AFTER = 60.0
# Metronome may answer an empty page that still has a cursor; a run this long means a loop.
MAX_CONSECUTIVE_EMPTY_PAGES = 50
# Metronome's answers are untrusted input. A page of 100 customers is tens of kilobytes; an
# answer this large is broken or hostile, and reading it whole would hold a worker's memory.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# One attempt may take at most this long from sending to the last byte, however slowly the
# bytes trickle in: the read timeout alone restarts with every byte.
DEFAULT_DEADLINE = 30.0
# Strings that hold a UTF-16 surrogate, escaped (`\ud800`) or raw (ED A0..BF ..): only such
# an answer can carry a lone surrogate, which no page or file can encode.
_SURROGATE_IN_JSON = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


# --- Errors ------------------------------------------------------------------------------


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


# --- Typed values ------------------------------------------------------------------------


UNREADABLE_CUSTOMER = (
    "Metronome sent a customer the dashboard could not read. "
    "If this keeps happening, tell the dashboard's developers."
)


class BillableStatus(StrEnum):
    BILLABLE = "billable"
    UNBILLABLE = "unbillable"


# A dict lookup instead of `BillableStatus(value)`, whose enum machinery costs more than the
# rest of a customer's checks; an unknown (or unhashable) value raises KeyError (TypeError).
BILLABLE_STATUS_BY_VALUE: Mapping[object, BillableStatus] = {s.value: s for s in BillableStatus}


@dataclass(frozen=True, slots=True)
class CurrentBillableStatus:
    value: BillableStatus
    effective_at: datetime | None


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    external_id: str
    ingest_aliases: tuple[str, ...]
    custom_fields: Mapping[str, str]
    salesforce_account_id: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    billable_status: CurrentBillableStatus | None = None

    @classmethod
    def from_wire(cls, data: object) -> Customer:
        """Parse one CustomerDetail; absent and null `archived_at` and billable status alike."""
        try:
            data, status, custom_fields, aliases, salesforce_id = customer_parts(data)
            return cls(
                id=_text(data["id"]),
                name=_text(data["name"]),
                external_id=_text(data["external_id"]),
                ingest_aliases=_texts(aliases),
                custom_fields=_text_mapping(custom_fields),
                salesforce_account_id=None
                if salesforce_id is None
                else _text(salesforce_id) or None,
                created_at=_datetime(data["created_at"]),
                updated_at=_datetime(data["updated_at"]),
                archived_at=_optional_datetime(data.get("archived_at")),
                billable_status=(
                    CurrentBillableStatus(
                        value=BILLABLE_STATUS_BY_VALUE[status["value"]],
                        effective_at=_optional_datetime(status.get("effective_at")),
                    )
                    if status
                    else None
                ),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(UNREADABLE_CUSTOMER) from exc

    @property
    def custom_field_items(self) -> list[tuple[str, str]]:
        # Templates can't use `custom_fields.items`: a field named "items" would win.
        return sorted(self.custom_fields.items())


class CustomerNotFound(MetronomeError):
    """Metronome has no customer with that ID (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class CreditType:
    """What an amount is counted in: `USD (cents)`, or a custom pricing unit."""

    id: str
    name: str

    @classmethod
    def from_wire(cls, data: object) -> CreditType:
        if not isinstance(data, dict):
            raise TypeError("a credit type must be an object")
        return cls(id=_text(data["id"]), name=_text(data["name"]))


@dataclass(frozen=True, slots=True)
class InvoiceLineItem:
    name: str
    total: float
    type: str
    credit_type: CreditType
    quantity: float | None = None

    @classmethod
    def from_wire(cls, data: object) -> InvoiceLineItem:
        if not isinstance(data, dict):
            raise TypeError("a line item must be an object")
        quantity = data.get("quantity")
        return cls(
            name=_text(data["name"]),
            total=_number(data["total"]),
            type=_text(data["type"]),
            credit_type=CreditType.from_wire(data["credit_type"]),
            quantity=None if quantity is None else _number(quantity),
        )


@dataclass(frozen=True, slots=True)
class Invoice:
    """One invoice of `GET /v1/customers/{id}/invoices`, with the fields people look at.

    `total` is in `credit_type`'s units: cents for `USD (cents)`."""

    id: str
    customer_id: str
    status: str  # DRAFT, FINALIZED, VOID
    type: str  # USAGE, SCHEDULED, ...
    total: float
    credit_type: CreditType
    line_items: tuple[InvoiceLineItem, ...]
    issued_at: datetime | None = None
    start_timestamp: datetime | None = None
    end_timestamp: datetime | None = None
    contract_id: str | None = None
    plan_name: str | None = None
    # The billing provider's view of it (Stripe, NetSuite...): e.g. PAID or PAYMENT_FAILED.
    billing_provider: str | None = None
    external_status: str | None = None

    @classmethod
    def from_wire(cls, data: object) -> Invoice:
        try:
            if not isinstance(data, dict):
                raise TypeError("an invoice must be an object")
            line_items = data["line_items"]
            if not isinstance(line_items, list):
                raise TypeError("line_items must be a list")
            external = data.get("external_invoice")
            if external is not None and not isinstance(external, dict):
                raise TypeError("external_invoice must be an object")
            external = external or {}
            return cls(
                id=_text(data["id"]),
                customer_id=_text(data["customer_id"]),
                status=_text(data["status"]),
                type=_text(data["type"]),
                total=_number(data["total"]),
                credit_type=CreditType.from_wire(data["credit_type"]),
                line_items=tuple(InvoiceLineItem.from_wire(item) for item in line_items),
                issued_at=_optional_datetime(data.get("issued_at")),
                start_timestamp=_optional_datetime(data.get("start_timestamp")),
                end_timestamp=_optional_datetime(data.get("end_timestamp")),
                contract_id=_optional_text(data.get("contract_id")),
                plan_name=_optional_text(data.get("plan_name")),
                billing_provider=_optional_text(external.get("billing_provider_type")),
                external_status=_optional_text(external.get("external_status")),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                "Metronome sent an invoice the dashboard could not read. "
                "If this keeps happening, tell the dashboard's developers."
            ) from exc


@dataclass(frozen=True, slots=True)
class InvoicePage:
    invoices: tuple[Invoice, ...]
    next_page: str | None


def _number(value: object) -> float:
    # bool is an int subclass, and NaN or infinity is no amount.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"expected a finite number, got {type(value).__name__}")
    return float(value)


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _not_found_or(error: BadRequest, customer_id: str) -> MetronomeError:
    """A 404 from a customer's own path means the customer does not exist."""
    if error.status == 404:
        return CustomerNotFound(
            f"Metronome has no customer with the ID {customer_id}. It may have been "
            "deleted, or the link may be mistyped."
        )
    return error


def customer_parts(
    data: object,
) -> tuple[dict[str, Any], Any, dict[Any, Any], list[Any], Any]:
    """The shape every reader of a CustomerDetail checks first (`Customer.from_wire`, the
    export's `wire_row`): the object, its billable status, custom fields, aliases and
    Salesforce ID, each still to be checked. Raises TypeError or KeyError."""
    if not isinstance(data, dict):
        raise TypeError("a customer must be an object")
    config = data["customer_config"]
    custom_fields = data["custom_fields"]
    aliases = data["ingest_aliases"]
    salesforce_id = config["salesforce_account_id"]
    if not (isinstance(custom_fields, dict) and isinstance(aliases, list)):
        raise TypeError("custom_fields must be an object and ingest_aliases a list")
    return data, data.get("current_billable_status"), custom_fields, aliases, salesforce_id


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


# These run for every customer of a 100,000-row CSV export: one loop per collection, not
# one call per string, roughly halves `from_wire`'s time (see bench/README.md).
# `Any` rather than `cast()`, a function call per use at run time: the loops are the check.
def _texts(values: Sequence[Any]) -> tuple[str, ...]:
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
    return tuple(values)


def _text_mapping(mapping: Mapping[Any, Any]) -> dict[str, str]:
    for item in mapping.items():
        _texts(item)
    return dict(mapping)


def _datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected a timestamp string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    if parsed.year in (1, 9999):
        # At the ends of the calendar a time zone can push it out of range: every page and
        # file shows times in UTC, so one that has no UTC is as unreadable as garbage.
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("timestamp out of range in UTC") from None
    return parsed


def _optional_datetime(value: object) -> datetime | None:
    return None if value is None else _datetime(value)


@dataclass(frozen=True, slots=True)
class CustomerQuery:
    """The filters of `GET /v1/customers`. ID lists may be longer than the API's 100."""

    customer_ids: tuple[str, ...] = ()
    salesforce_account_ids: tuple[str, ...] = ()
    ingest_alias: str = ""
    only_archived: bool = False

    @property
    def has_id_filters(self) -> bool:
        return bool(self.customer_ids or self.salesforce_account_ids)

    @property
    def is_filtered(self) -> bool:
        return self.has_id_filters or bool(self.ingest_alias)

    @property
    def needs_batches(self) -> bool:
        return (
            len(self.customer_ids) > MAX_IDS_PER_REQUEST
            or len(self.salesforce_account_ids) > MAX_IDS_PER_REQUEST
        )

    def wire_params(self) -> dict[str, str]:
        """Encode as the SDKs do: one comma-joined value per array, lowercase booleans,
        empty filters left out."""
        params: dict[str, str] = {}
        if self.customer_ids:
            params["customer_ids"] = ",".join(self.customer_ids)
        if self.salesforce_account_ids:
            params["salesforce_account_ids"] = ",".join(self.salesforce_account_ids)
        if self.ingest_alias:
            params["ingest_alias"] = self.ingest_alias
        params["only_archived"] = "true" if self.only_archived else "false"
        return params

    def fingerprint(self) -> str:
        canonical = json.dumps(self.wire_params(), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CustomerPage:
    customers: tuple[Customer, ...]
    next_page: str | None


Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class RowPage(Generic[Row]):
    """A page of customers each read by the caller's reader: e.g. straight into the CSV
    export's cells, without building a `Customer` only to take it apart again."""

    rows: tuple[Row, ...]
    next_page: str | None


def _wire_id(item: Any) -> str:
    # Only for an item a reader accepted: every reader checks the customer is an object
    # with a string `id`, as `Customer.from_wire` does.
    id_: str = item["id"]
    return id_


# --- The client ----------------------------------------------------------------------------


class MetronomeClient:
    """One per process (see `get_client`): it owns the pooled httpx.Client."""

    def __init__(
        self,
        *,
        base_url: str,
        bearer_token: str,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        retry_budget: float = 20.0,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = bearer_token
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_budget = retry_budget
        self._deadline = deadline
        self._max_response_bytes = max_response_bytes
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {bearer_token}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # Public API ---------------------------------------------------------------------------

    def list_customers(
        self, query: CustomerQuery, *, limit: int = 50, cursor: str | None = None
    ) -> CustomerPage:
        """One page of customers. `cursor` is the previous page's `next_page`."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
        _refuse_batches(query)
        return self._fetch_page(query, limit, cursor)

    def iter_pages(
        self, query: CustomerQuery, *, page_size: int = MAX_PAGE_SIZE
    ) -> Generator[CustomerPage, None, None]:
        """Every page of the query, to the end, as `Customer`s. The next page is fetched
        while the caller works on the current one, so a consumer that writes rows waits on
        the API once."""
        pages = self.iter_read_pages(query, Customer.from_wire, page_size=page_size)
        try:
            for page in pages:
                yield CustomerPage(page.rows, page.next_page)
        finally:
            pages.close()  # stops the prefetch

    def iter_read_pages(
        self,
        query: CustomerQuery,
        read: Callable[[object], Row],
        *,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Generator[RowPage[Row], None, None]:
        """`iter_pages` with each customer's JSON read by `read`, which must check it as
        `Customer.from_wire` does and raise MalformedResponse where that would."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        _refuse_batches(query)
        # One thread fetches page after page into a one-page queue (so at most two pages
        # ahead), sending each request as soon as it has the cursor. Submitting each fetch
        # from the consumer's thread instead does not overlap: the consumer holds the GIL
        # while it writes rows, so the request only leaves once the writing is done
        # (measured in bench/README.md).
        pages: queue.Queue[RowPage[Row] | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item: RowPage[Row] | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def fetch_all() -> None:
            try:
                for page in self.follow_cursors(query, page_size, read):
                    if stop.is_set():
                        return
                    hand_over(page)
                hand_over(None)
            except BaseException as error:  # the consumer raises it, in its own thread
                hand_over(error)

        # In a copy of the caller's context, so its log lines carry the request's ID.
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(fetch_all,),
            name="metronome-prefetch",
            daemon=True,
        ).start()
        try:
            while (item := pages.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # A consumer that stops early must not wait for a page it will never read.
            stop.set()

    def follow_cursors(
        self, query: CustomerQuery, page_size: int, read: Callable[[object], Row]
    ) -> Iterator[RowPage[Row]]:
        """The pages of one API listing, fetched in the caller's thread, each customer read
        by `read` and kept once, refusing to go round in circles: a cursor sent twice, or
        pages of nothing but customers already sent, mean the listing would never end (or
        end with rows twice), so it fails visibly. `iter_read_pages` is the same with the
        next page fetched ahead."""
        cursor: str | None = None
        seen_cursors: set[str] = set()
        # hash() of each ID rather than the ID: 100,000 small ints, not 100,000 strings.
        seen_customers: set[int] = set()
        empty_run = 0
        while True:
            items, next_page = self._fetch_wire_page(query, page_size, cursor)
            rows = [read(item) for item in items]  # each checked before any is kept
            ids = [hash(_wire_id(item)) for item in items]
            kept: list[Row] = []
            for id_, row in zip(ids, rows, strict=True):
                if id_ not in seen_customers:  # also twice within this page: kept once
                    seen_customers.add(id_)
                    kept.append(row)
            fresh = tuple(kept)
            if items and not fresh:
                raise MalformedResponse(
                    "Metronome sent a page of customers it had already sent; the list could "
                    "not be completed."
                )
            if len(fresh) < len(items):
                logger.warning(
                    "Metronome repeated %d customers of earlier pages; each is kept once",
                    len(items) - len(fresh),
                )
            empty_run = 0 if fresh else empty_run + 1
            if empty_run > MAX_CONSECUTIVE_EMPTY_PAGES:
                raise MalformedResponse(
                    "Metronome kept sending empty pages; the list could not be completed."
                )
            yield RowPage(fresh, next_page)
            if not next_page:
                return
            # An empty page may hand back the cursor it was asked with (keep asking: the
            # empty run above bounds that); after rows, a cursor seen before is a cycle.
            if items and next_page in seen_cursors:
                raise MalformedResponse(
                    "Metronome sent a page cursor it had sent before; following it would "
                    "never end, so the list could not be completed."
                )
            seen_cursors.add(next_page)
            cursor = next_page

    def get_customer(self, customer_id: str) -> Customer:
        """One customer, archived or not (`GET /v1/customers/{id}`)."""
        try:
            body = self._get(f"/v1/customers/{quote(customer_id, safe='')}", {})
        except BadRequest as error:
            raise _not_found_or(error, customer_id) from None
        if not isinstance(body, dict):
            raise MalformedResponse("Metronome sent a customer the dashboard could not read.")
        return Customer.from_wire(body.get("data"))

    def post_for_customer(
        self,
        customer_id: str,
        path: str,
        body: Mapping[str, object],
        params: Mapping[str, str] | None = None,
    ) -> object:
        """A read-only POST about one customer (the customer page's lists): its JSON, with a
        404 meaning the customer does not exist."""
        try:
            return self._post(path, body, params or {})
        except BadRequest as error:
            raise _not_found_or(error, customer_id) from None

    def list_invoices(
        self,
        customer_id: str,
        *,
        limit: int = 10,
        sort: str = "date_desc",
        cursor: str | None = None,
    ) -> InvoicePage:
        """One page of a customer's invoices, newest first by default.

        Metronome may answer an empty page that still has a cursor; those are followed, so
        an empty result always means there are no (more) invoices."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
        if sort not in ("date_asc", "date_desc"):
            raise ValueError(f"sort must be date_asc or date_desc, got {sort!r}")
        path = f"/v1/customers/{quote(customer_id, safe='')}/invoices"
        seen: set[str] = set()
        for _ in range(MAX_CONSECUTIVE_EMPTY_PAGES + 1):
            # The documented default order is ambiguous, so it is always sent.
            params = {"limit": str(limit), "sort": sort}
            if cursor:
                params["next_page"] = cursor
            try:
                body = self._get(path, params)
            except BadRequest as error:
                raise _not_found_or(error, customer_id) from None
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise MalformedResponse(
                    "Metronome sent an invoice list the dashboard could not read. "
                    "If this keeps happening, tell the dashboard's developers."
                )
            next_page = body.get("next_page")
            if next_page is not None and not isinstance(next_page, str):
                raise MalformedResponse(
                    "Metronome sent a page cursor the dashboard could not read."
                )
            if len(body["data"]) > limit:
                raise MalformedResponse(
                    f"Metronome sent {len(body['data']):,} invoices for a page of {limit}; "
                    "the dashboard shows no page it did not ask for."
                )
            invoices = tuple(Invoice.from_wire(item) for item in body["data"])
            if invoices or not next_page:
                return InvoicePage(invoices=invoices, next_page=next_page or None)
            if next_page in seen:
                break
            seen.add(next_page)
            cursor = next_page
        raise MalformedResponse(
            "Metronome kept sending empty pages of invoices; they could not be listed."
        )

    # Internals ------------------------------------------------------------------------------

    def _fetch_page(self, query: CustomerQuery, limit: int, cursor: str | None) -> CustomerPage:
        items, next_page = self._fetch_wire_page(query, limit, cursor)
        customers = tuple(Customer.from_wire(item) for item in items)
        if len({customer.id for customer in customers}) < len(customers):
            # The same customer twice on one page: shown once.
            logger.warning("Metronome repeated customers within one page; each is kept once")
            customers = tuple({c.id: c for c in reversed(customers)}.values())[::-1]
        return CustomerPage(customers, next_page)

    def _fetch_wire_page(
        self, query: CustomerQuery, limit: int, cursor: str | None
    ) -> tuple[list[object], str | None]:
        """One page's customers as Metronome sent them (each still to be read) and its
        cursor, the page itself checked: a list, a string cursor, no more than `limit`."""
        params = {**query.wire_params(), "limit": str(limit)}
        if cursor:
            params["next_page"] = cursor
        body = self._get("/v1/customers", params)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise MalformedResponse(
                "Metronome sent a customer list the dashboard could not read. "
                "If this keeps happening, tell the dashboard's developers."
            )
        next_page = body.get("next_page")
        if next_page is not None and not isinstance(next_page, str):
            raise MalformedResponse("Metronome sent a page cursor the dashboard could not read.")
        if len(body["data"]) > limit:
            # A server that ignores `limit` could send the whole account for a 50-row page.
            raise MalformedResponse(
                f"Metronome sent {len(body['data']):,} customers for a page of {limit}; the "
                "dashboard shows no page it did not ask for. If this keeps happening, tell "
                "the dashboard's developers."
            )
        return body["data"], next_page or None

    def _get(self, path: str, params: Mapping[str, str]) -> object:
        return self._request("GET", path, params)

    def _post(self, path: str, body: Mapping[str, object], params: Mapping[str, str]) -> object:
        """A POST that only reads (Metronome lists contracts, balances, alerts and usage so):
        retried like a GET, as the SDKs do."""
        return self._request("POST", path, params, body)

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Mapping[str, object] | None = None,
    ) -> object:
        """One call with the official SDKs' retry rules, bounded by count and by total waiting;
        each attempt bounded in time and size, its JSON checked before anyone reads it."""
        give_up_at = time.monotonic() + self._retry_budget
        for attempt in itertools.count(1):
            started = time.monotonic()
            retry_after: float | None = None
            try:
                response, content = self._send(method, path, params, body, started + self._deadline)
            except httpx.TimeoutException:
                self._log(method, path, "timeout", started, attempt)
                error: MetronomeError = MetronomeTimeout(
                    f"Metronome did not answer in {self._timeout:g} s. Try again in a minute."
                )
                should_retry = True
            except _DeadlinePassed:
                self._log(method, path, "deadline passed", started, attempt)
                error = MetronomeTimeout(
                    f"Metronome's answer took longer than {self._deadline:g} s to arrive. "
                    "Try again in a minute."
                )
                should_retry = True
            except httpx.TransportError as exc:
                self._log(
                    method, path, f"connection error ({type(exc).__name__})", started, attempt
                )
                error = MetronomeUnavailable(
                    "The dashboard could not reach Metronome. Try again in a minute; if it "
                    "keeps happening, check the server's network and METRONOME_BASE_URL."
                )
                should_retry = True
            else:
                self._log(method, path, response.status_code, started, attempt)
                if response.is_success:
                    return _parse_json(content)
                retry_after = _retry_after_seconds(response.headers)
                error = self._error_for(response.status_code, content, retry_after)
                should_retry = _should_retry(response)
            if not should_retry or attempt > self._max_retries:
                raise error
            delay = (
                retry_after
                if retry_after is not None and 0 < retry_after <= MAX_HONOURED_RETRY_AFTER
                else _backoff_delay(attempt)
            )
            if time.monotonic() + delay > give_up_at:
                raise error
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Mapping[str, object] | None,
        deadline: float,
    ) -> tuple[httpx.Response, bytes]:
        """One attempt: the response and its body, read until `deadline` at the latest and
        never past `max_response_bytes` (gzip included: the limit is on what it unpacks to)."""
        with self._http.stream(method, path, params=params, json=body) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_response_bytes:
                raise _too_large(self._max_response_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise _too_large(self._max_response_bytes)
                if time.monotonic() > deadline:
                    raise _DeadlinePassed
                chunks.append(chunk)
        return response, b"".join(chunks)

    def _log(self, method: str, path: str, outcome: object, started: float, attempt: int) -> None:
        # Method, path, outcome, duration and attempt: never headers, so never the token.
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info(
            "%s %s -> %s in %.0f ms (attempt %d)",
            method,
            path,
            outcome,
            elapsed_ms,
            attempt,
            extra={
                "path": path,
                "status": str(outcome),
                "duration_ms": round(elapsed_ms),
                "attempt": attempt,
            },
        )

    def _error_for(self, status: int, content: bytes, retry_after: float | None) -> MetronomeError:
        if status in (401, 403):
            return TokenRejected(
                f"Metronome rejected the API token (HTTP {status}). An administrator needs "
                "to check METRONOME_BEARER_TOKEN."
            )
        if status == 429:
            wait = f"in {max(1, round(retry_after))} s" if retry_after else "in a minute"
            return RateLimited(f"Metronome is rate limiting us, try again {wait}.", retry_after)
        if status >= 500 or status in RETRYABLE_STATUSES:
            return MetronomeUnavailable(
                f"Metronome is not answering normally (HTTP {status}). Try again in a minute."
            )
        api_message = _api_message(content, self._token)
        detail = f": {api_message}" if api_message else "."
        return BadRequest(f"Metronome refused the request (HTTP {status}){detail}", status)


class _DeadlinePassed(Exception):
    """An attempt's answer was still arriving at its deadline."""


def _too_large(limit: int) -> MalformedResponse:
    return MalformedResponse(
        f"Metronome sent an answer larger than {limit // (1024 * 1024)} MB, which the "
        "dashboard does not read. If this keeps happening, tell the dashboard's developers."
    )


def _parse_json(content: bytes) -> object:
    """The JSON of an answer, or MalformedResponse: never RecursionError from absurd nesting,
    never a lone surrogate that would break the page's or the file's encoding."""
    try:
        data = json.loads(content)
    except RecursionError:
        raise MalformedResponse(
            "Metronome sent something the dashboard could not read (nested too deeply). "
            "If this keeps happening, tell the dashboard's developers."
        ) from None
    except ValueError:
        raise MalformedResponse(
            "Metronome sent a response that is not JSON. Try again in a minute."
        ) from None
    # Byte searches first (each much faster than the regex): most pages have none of these.
    maybe_surrogate = b"\\ud" in content or b"\\uD" in content or b"\xed" in content
    if maybe_surrogate and _SURROGATE_IN_JSON.search(content):
        data = _replace_lone_surrogates(data)
    return data


def _replace_lone_surrogates(value: object) -> object:
    """Each lone surrogate becomes U+FFFD, the replacement character people recognise."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _replace_lone_surrogates(key): _replace_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


def _api_message(content: bytes, token: str) -> str:
    """The `message` of an error answer, to show a person; withheld whole when it quotes the
    token in any spelling (case changed, percent- or HTML-encoded), since a partial
    redaction of an unknown encoding is a guess."""
    try:
        message = json.loads(content).get("message", "")
    except (ValueError, AttributeError, RecursionError):
        return ""
    if not isinstance(message, str):
        return ""
    message = _LONE_SURROGATE.sub("\ufffd", message)
    if token and _mentions_token(message, token):
        return "(Metronome's message is not shown: it quoted the API token)"
    return message[:300]


def _mentions_token(text: str, token: str) -> bool:
    wanted = token.casefold()
    for _ in range(4):  # percent-encoding inside percent-encoding, a few levels deep
        decoded = html.unescape(urllib.parse.unquote_plus(text))
        if wanted in text.casefold() or wanted in decoded.casefold():
            return True
        if decoded == text:
            return False
        text = decoded
    return wanted in text.casefold()


def _refuse_batches(query: CustomerQuery) -> None:
    if query.needs_batches:
        raise ValueError(
            f"Metronome takes at most {MAX_IDS_PER_REQUEST} IDs per filter; "
            "customers.search looks longer lists up in batches"
        )


def _should_retry(response: httpx.Response) -> bool:
    override = str(response.headers.get("x-should-retry", "")).lower()
    if override in ("true", "false"):
        return override == "true"
    return response.status_code in RETRYABLE_STATUSES or response.status_code >= 500


def _retry_after_seconds(headers: httpx.Headers) -> float | None:
    """`retry-after-ms`, then `Retry-After` in seconds or as an HTTP date, as the SDKs read them."""
    try:
        milliseconds = float(headers["retry-after-ms"])
    except (KeyError, ValueError):
        pass
    else:
        if math.isfinite(milliseconds):
            return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return seconds if math.isfinite(seconds) else None


def _backoff_delay(attempt: int) -> float:
    """Exponential from 0.5 s, capped at 8 s, less up to 25 % jitter: the SDKs' formula."""
    delay: float = min(INITIAL_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


# --- The process's client --------------------------------------------------------------------

_client: MetronomeClient | None = None
_client_lock = threading.Lock()


def get_client() -> MetronomeClient:
    """The process's one client, built from settings on first use."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = _build_client()
    return _client


def reset_client() -> None:
    """Drop the process's client, e.g. when tests change the Metronome settings."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


def _build_client() -> MetronomeClient:
    # Which Metronome (the real one, or the sandbox) is wiring's choice, from settings.
    from customers.wiring import client_from_settings

    return client_from_settings()
