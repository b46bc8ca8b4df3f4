"""The dashboard's only code that talks to Metronome.

Reference: https://docs.metronome.com/api-reference/customers/list-customers
and ../shared/metronome-api.md for the wire format as the official SDKs speak it.

Views get typed values (`Customer`, `CustomerPage`, `MatchReport`) and a handful of
`MetronomeError`s whose messages a support person can act on. They never see httpx or JSON.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import itertools
import json
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

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


# --- Errors ------------------------------------------------------------------------------


class MetronomeError(Exception):
    """A failure to show a person: `str(error)` says what happened and what to do."""


class TokenRejected(MetronomeError):
    pass


class BadRequest(MetronomeError):
    pass


class InvalidCursor(BadRequest):
    pass


class RateLimited(MetronomeError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class MetronomeUnavailable(MetronomeError):
    pass


class MetronomeTimeout(MetronomeUnavailable):
    pass


class MalformedResponse(MetronomeError):
    pass


# --- Typed values ------------------------------------------------------------------------


class BillableStatus(StrEnum):
    BILLABLE = "billable"
    UNBILLABLE = "unbillable"


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
            if not isinstance(data, dict):
                raise TypeError("a customer must be an object")
            config = data["customer_config"]
            status = data.get("current_billable_status")
            custom_fields = data["custom_fields"]
            aliases = data["ingest_aliases"]
            salesforce_id = config["salesforce_account_id"]
            if not (isinstance(custom_fields, dict) and isinstance(aliases, list)):
                raise TypeError("custom_fields must be an object and ingest_aliases a list")
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
                        value=BillableStatus(status["value"]),
                        effective_at=_optional_datetime(status.get("effective_at")),
                    )
                    if status
                    else None
                ),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                "Metronome sent a customer the dashboard could not read. "
                "If this keeps happening, tell the dashboard's developers."
            ) from exc

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def custom_field_items(self) -> list[tuple[str, str]]:
        # Templates can't use `custom_fields.items`: a field named "items" would win.
        return sorted(self.custom_fields.items())


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


# These run for every customer of a 100,000-row CSV export: one loop per collection, not
# one call per string, roughly halves `from_wire`'s time (see bench/README.md).
def _texts(values: Sequence[object]) -> tuple[str, ...]:
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
    return tuple(values)


def _text_mapping(mapping: Mapping[object, object]) -> dict[str, str]:
    _texts((*mapping.keys(), *mapping.values()))
    return dict(mapping)


def _datetime(value: object) -> datetime:
    # fromisoformat raises TypeError for anything but a string.
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a time zone")
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

    def batches(self) -> list[CustomerQuery]:
        """Split ID lists into queries of at most 100 IDs each.

        Filters are AND-ed by the API, so with both lists long every pair of chunks is one
        query. Each customer has one ID and one Salesforce ID, so it falls in exactly one
        batch: the batches' results never overlap.
        """
        return [
            replace(self, customer_ids=customer_ids, salesforce_account_ids=salesforce_ids)
            for customer_ids, salesforce_ids in itertools.product(
                _chunks(self.customer_ids), _chunks(self.salesforce_account_ids)
            )
        ]

    def fingerprint(self) -> str:
        canonical = json.dumps(self.wire_params(), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]


def _chunks(ids: tuple[str, ...]) -> list[tuple[str, ...]]:
    if not ids:
        return [()]
    return [ids[i : i + MAX_IDS_PER_REQUEST] for i in range(0, len(ids), MAX_IDS_PER_REQUEST)]


@dataclass(frozen=True, slots=True)
class CustomerPage:
    customers: tuple[Customer, ...]
    next_page: str | None


@dataclass(frozen=True, slots=True)
class MatchReport:
    """What became of each pasted ID, looked up among active and archived customers alike."""

    pasted: int
    matched: tuple[str, ...]
    # Found, but only among customers the current Active/Archived toggle hides.
    other_state: tuple[str, ...]
    not_found: tuple[str, ...]
    other_state_is_archived: bool = field(default=True)


# --- Cursors for batched queries -----------------------------------------------------------
# A query with more than 100 IDs is several API queries fetched side by side and merged, so
# no single Metronome cursor describes a position in it. Its pages are slices of the merged,
# deterministically ordered list, and the cursor is the slice's offset, tied to the query.
_BATCH_CURSOR_PREFIX = "batch."


def _encode_batch_cursor(query: CustomerQuery, offset: int) -> str:
    payload = json.dumps({"o": offset, "q": query.fingerprint()}, separators=(",", ":"))
    return _BATCH_CURSOR_PREFIX + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_batch_cursor(query: CustomerQuery, cursor: str) -> int:
    invalid = InvalidCursor("That page link does not belong to this search. Start from page one.")
    if not cursor.startswith(_BATCH_CURSOR_PREFIX):
        raise invalid
    encoded = cursor.removeprefix(_BATCH_CURSOR_PREFIX)
    try:
        payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        offset, fingerprint = payload["o"], payload["q"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid from None
    if not isinstance(offset, int) or offset < 0 or fingerprint != query.fingerprint():
        raise invalid
    return offset


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
        max_concurrency: int = 8,
        transport: httpx.BaseTransport | None = None,
        sleep=time.sleep,
    ):
        self._token = bearer_token
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_budget = retry_budget
        self._max_concurrency = max_concurrency
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
        if not query.needs_batches:
            return self._fetch_page(query, limit, cursor)
        offset = _decode_batch_cursor(query, cursor) if cursor else 0
        customers = self._fetch_batched(query)
        end = offset + limit
        return CustomerPage(
            customers=tuple(customers[offset:end]),
            next_page=_encode_batch_cursor(query, end) if end < len(customers) else None,
        )

    def iter_pages(
        self, query: CustomerQuery, *, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[CustomerPage]:
        """Every page of the query, to the end. The next page is fetched while the caller
        works on the current one, so a consumer that writes rows waits on the API once."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if query.needs_batches:
            customers = self._fetch_batched(query)
            for start in range(0, len(customers), page_size):
                yield CustomerPage(tuple(customers[start : start + page_size]), None)
            return
        # One thread fetches page after page into a one-page queue (so at most two pages
        # ahead), sending each request as soon as it has the cursor. Submitting each fetch
        # from the consumer's thread instead does not overlap: the consumer holds the GIL
        # while it writes rows, so the request only leaves once the writing is done
        # (measured in bench/README.md).
        pages: queue.Queue[CustomerPage | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item: CustomerPage | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def fetch_all() -> None:
            cursor = None
            empty_run = 0
            try:
                while not stop.is_set():
                    page = self._fetch_page(query, page_size, cursor)
                    if page.customers and page.next_page is not None and page.next_page == cursor:
                        # Rows, and a cursor pointing back at them: following it would never end.
                        raise MalformedResponse(
                            "Metronome sent the same page cursor twice; the list could not be "
                            "completed."
                        )
                    empty_run = 0 if page.customers else empty_run + 1
                    if empty_run > MAX_CONSECUTIVE_EMPTY_PAGES:
                        raise MalformedResponse(
                            "Metronome kept sending empty pages; the list could not be completed."
                        )
                    hand_over(page)
                    if not page.next_page:
                        break
                    cursor = page.next_page
                hand_over(None)
            except BaseException as error:  # the consumer raises it, in its own thread
                hand_over(error)

        threading.Thread(target=fetch_all, name="metronome-prefetch", daemon=True).start()
        try:
            while (item := pages.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # A consumer that stops early must not wait for a page it will never read.
            stop.set()

    def iter_customers(
        self, query: CustomerQuery, *, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[Customer]:
        """Every customer matching the query, across all pages."""
        for page in self.iter_pages(query, page_size=page_size):
            yield from page.customers

    def search(
        self, query: CustomerQuery, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[CustomerPage, MatchReport | None]:
        """One page and, when IDs were pasted, their match report, fetched side by side so
        the page waits on Metronome once."""
        if not query.has_id_filters:
            return self.list_customers(query, limit=limit, cursor=cursor), None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="metronome-report") as pool:
            report = pool.submit(self.match_ids, query)
            try:
                page = self.list_customers(query, limit=limit, cursor=cursor)
            except BaseException:
                report.cancel()
                raise
            return page, report.result()

    def match_ids(self, query: CustomerQuery) -> MatchReport:
        """Report which pasted IDs matched customers in the current view, which exist only
        among the customers the Active/Archived toggle hides, and which exist nowhere."""
        # Each ID list is looked up on its own: the API ANDs the two lists, so one lookup
        # with both would call a pasted ID "not found" whenever the other list excludes it.
        id_queries = [
            q
            for q in (
                CustomerQuery(customer_ids=query.customer_ids),
                CustomerQuery(salesforce_account_ids=query.salesforce_account_ids),
            )
            if q.has_id_filters
        ]
        lookups = [replace(q, only_archived=state) for state in (False, True) for q in id_queries]
        workers = max(1, len(lookups))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metronome-match") as pool:
            results = list(pool.map(self._fetch_all, lookups))
        active = [c for found in results[: len(id_queries)] for c in found]
        archived = [c for found in results[len(id_queries) :] for c in found]
        shown, hidden = (archived, active) if query.only_archived else (active, archived)

        def found_ids(customers: Sequence[Customer]) -> set[str]:
            return {c.id for c in customers} | {
                c.salesforce_account_id for c in customers if c.salesforce_account_id
            }

        shown_ids, hidden_ids = found_ids(shown), found_ids(hidden)
        pasted = (*query.customer_ids, *query.salesforce_account_ids)
        return MatchReport(
            pasted=len(pasted),
            matched=tuple(i for i in pasted if i in shown_ids),
            other_state=tuple(i for i in pasted if i not in shown_ids and i in hidden_ids),
            not_found=tuple(i for i in pasted if i not in shown_ids and i not in hidden_ids),
            other_state_is_archived=not query.only_archived,
        )

    # Internals ------------------------------------------------------------------------------

    def _fetch_page(self, query: CustomerQuery, limit: int, cursor: str | None) -> CustomerPage:
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
        return CustomerPage(
            customers=tuple(Customer.from_wire(item) for item in body["data"]),
            next_page=next_page or None,
        )

    def _fetch_all(self, query: CustomerQuery) -> list[Customer]:
        if query.needs_batches:
            return self._fetch_batched(query)
        return list(self.iter_customers(query))

    def _fetch_batched(self, query: CustomerQuery) -> list[Customer]:
        """All customers of a long-ID-list query: the batches are fetched side by side and
        merged in batch order, each batch in the API's order, so the order is deterministic."""
        batches = query.batches()
        workers = min(len(batches), self._max_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metronome-batch") as pool:
            results = list(pool.map(lambda batch: list(self.iter_customers(batch)), batches))
        seen: set[str] = set()
        merged = []
        for customer in itertools.chain.from_iterable(results):
            if customer.id not in seen:
                seen.add(customer.id)
                merged.append(customer)
        return merged

    def _get(self, path: str, params: Mapping[str, str]) -> object:
        """GET with the official SDKs' retry rules, bounded by count and by total waiting."""
        give_up_at = time.monotonic() + self._retry_budget
        for attempt in itertools.count(1):
            started = time.monotonic()
            retry_after: float | None = None
            try:
                response = self._http.get(path, params=params)
            except httpx.TimeoutException:
                self._log(path, "timeout", started, attempt)
                error: MetronomeError = MetronomeTimeout(
                    f"Metronome did not answer in {self._timeout:g} s. Try again in a minute."
                )
                should_retry = True
            except httpx.TransportError as exc:
                self._log(path, f"connection error ({type(exc).__name__})", started, attempt)
                error = MetronomeUnavailable(
                    "The dashboard could not reach Metronome. Try again in a minute; if it "
                    "keeps happening, check the server's network and METRONOME_BASE_URL."
                )
                should_retry = True
            else:
                self._log(path, response.status_code, started, attempt)
                if response.is_success:
                    return self._json(response)
                retry_after = _retry_after_seconds(response.headers)
                error = self._error_for(response, retry_after)
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

    def _log(self, path: str, outcome: object, started: float, attempt: int) -> None:
        # Method, path, outcome, duration and attempt: never headers, so never the token.
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info(
            "GET %s -> %s in %.0f ms (attempt %d)",
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

    def _json(self, response: httpx.Response) -> object:
        try:
            return response.json()
        except ValueError:
            raise MalformedResponse(
                "Metronome sent a response that is not JSON. Try again in a minute."
            ) from None

    def _error_for(self, response: httpx.Response, retry_after: float | None) -> MetronomeError:
        status = response.status_code
        api_message = self._api_message(response)
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
        detail = f": {api_message}" if api_message else "."
        return BadRequest(f"Metronome refused the request (HTTP {status}){detail}")

    def _api_message(self, response: httpx.Response) -> str:
        try:
            message = response.json().get("message", "")
        except (ValueError, AttributeError):
            return ""
        if not isinstance(message, str):
            return ""
        # An error message is shown to people; make sure it can never carry the token.
        return message.replace(self._token, "[redacted]")[:300] if self._token else message[:300]


def _should_retry(response: httpx.Response) -> bool:
    override = response.headers.get("x-should-retry", "").lower()
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
    delay = min(INITIAL_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)
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
    from django.conf import settings

    options = {
        "timeout": settings.METRONOME_TIMEOUT,
        "connect_timeout": settings.METRONOME_CONNECT_TIMEOUT,
        "max_retries": settings.METRONOME_MAX_RETRIES,
        "retry_budget": settings.METRONOME_RETRY_BUDGET,
    }
    if not settings.METRONOME_SANDBOX:
        return MetronomeClient(
            base_url=settings.METRONOME_BASE_URL,
            bearer_token=settings.METRONOME_BEARER_TOKEN,
            **options,
        )
    from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxTransport

    if settings.METRONOME_BASE_URL:
        # The standalone sandbox server (`manage.py run_sandbox`), over a real socket.
        return MetronomeClient(
            base_url=settings.METRONOME_BASE_URL, bearer_token=SANDBOX_TOKEN, **options
        )
    return MetronomeClient(
        base_url="http://sandbox.invalid",
        bearer_token=SANDBOX_TOKEN,
        transport=SandboxTransport(SandboxAPI(settings.SANDBOX_CUSTOMERS)),
        **options,
    )
