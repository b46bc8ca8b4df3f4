"""A deterministic fake of Metronome's `GET /v1/customers` API, with fault injection.

`SandboxAPI.handle` is pure request-in, response-out, so the same code answers in-process
(through `SandboxTransport`, an httpx transport) and over a real socket (`server.py`).

Where Metronome's documentation is silent, the sandbox makes these choices:
- `limit` defaults to 50 when absent;
- results are ordered by `created_at`, then `id`;
- `ingest_alias` matches exactly (case-sensitive);
- an empty parameter value (`customer_ids=`, which the SDK sends for an empty list) is
  the same as leaving the parameter out;
- a known parameter sent twice is a 400: the SDKs send arrays as one comma-joined value,
  and a client that repeats keys instead would silently lose filters against a server
  that keeps only one of them, so the sandbox makes that mistake loud;
- unknown parameters are ignored;
- a malformed customer ID in the path (`/v1/customers/not-a-uuid`) is a 404.

The invoices' choices are in `invoices_api.py`; fault settings in `faults.py`; what every
endpoint shares (JSON answers, cursors, query parsing) in `wire.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import httpx

from . import account_api
from .accounts import Account, generate_account
from .customers_api import KNOWN_PARAMS, Filters, created_key, is_archived, parse_filters
from .data import generate_customers
from .faults import ENDPOINTS, Faults, handle_control
from .invoice_pdf import invoice_pdf
from .invoices import generate_invoices
from .invoices_api import INVOICE_PARAMS, invoice_date, select_invoices
from .usage import metrics_of
from .wire import (
    JSON_HEADERS,
    BadRequest,
    Response,
    decode_cursor,
    encode_cursor,
    error_response,
    json_response,
    parse_limit,
    parse_query,
)

__all__ = ["SANDBOX_TOKEN", "Faults", "SandboxAPI", "SandboxTransport"]

# Public on purpose: the sandbox only ever holds fake data.
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105

# Distinct filter combinations whose result lists stay cached: enough for a few concurrent
# exports plus the dashboard's searches, small enough to bound memory at 100k customers.
FILTER_CACHE_SIZE = 32

# Customers whose generated invoices stay cached: what a few people browsing need.
INVOICE_CACHE_SIZE = 256
# (method, endpoint name as `Faults.failing_endpoints` knows it, path)
_ROUTES = (
    ("GET", "customers", re.compile(r"/v1/customers")),
    ("GET", "customer", re.compile(r"/v1/customers/([^/]+)")),
    ("GET", "invoices", re.compile(r"/v1/customers/([^/]+)/invoices")),
    ("GET", "invoice", re.compile(r"/v1/customers/([^/]+)/invoices/([^/]+)")),
    ("GET", "invoice_pdf", re.compile(r"/v1/customers/([^/]+)/invoices/([^/]+)/pdf")),
    ("POST", "contracts", re.compile(r"/v2/contracts/list")),
    ("POST", "balances", re.compile(r"/v1/contracts/customerBalances/list")),
    ("POST", "alerts", re.compile(r"/v1/customer-alerts/list")),
    ("POST", "usage", re.compile(r"/v1/usage")),
)
assert {name for _, name, _ in _ROUTES} == set(ENDPOINTS)
# The two POST lists that page by a query-string cursor (the SDK's CursorPageWithoutLimit).
_BODY_ENDPOINT_PARAMS = frozenset({"next_page"})
_INVOICE_DETAIL_PARAMS = frozenset({"skip_zero_qty_line_items"})


class SandboxAPI:
    """The fake API: `handle` answers one request; `handle_control` drives the faults.

    `customers` is a list of wire-format dicts, a count for generated data, or None for
    the default generated list. The dicts are never modified.
    """

    def __init__(
        self,
        customers: int | Iterable[Mapping[str, Any]] | None = None,
        token: str = SANDBOX_TOKEN,
        faults: Faults | None = None,
        today: date | None = None,
    ) -> None:
        if not token:
            raise ValueError("the sandbox needs a non-empty token")
        if customers is None:
            rows: list[Mapping[str, Any]] = list(generate_customers())
        elif isinstance(customers, int):
            rows = list(generate_customers(customers))
        else:
            rows = list(customers)
        self.token = token
        self.faults = faults if faults is not None else Faults()

        self._customers: tuple[Mapping[str, Any], ...] = tuple(sorted(rows, key=created_key))
        # Positions into _customers; since _customers is in result order, sorting
        # positions puts any subset in result order too.
        self._by_id: dict[str, int] = {}
        self._by_salesforce_id: dict[str, list[int]] = {}
        self._by_alias: dict[str, list[int]] = {}
        self._archived: list[bool] = []
        for position, customer in enumerate(self._customers):
            self._by_id[str(customer["id"]).lower()] = position
            salesforce_id = (customer.get("customer_config") or {}).get("salesforce_account_id")
            if salesforce_id is not None:
                self._by_salesforce_id.setdefault(salesforce_id, []).append(position)
            for alias in customer.get("ingest_aliases") or ():
                self._by_alias.setdefault(alias, []).append(position)
            self._archived.append(is_archived(customer))
        self._active = tuple(p for p, archived in enumerate(self._archived) if not archived)
        self._archived_only = tuple(p for p, archived in enumerate(self._archived) if archived)
        # Each customer's JSON, encoded on first use and spliced into page bodies.
        self._encoded: list[bytes | None] = [None] * len(self._customers)

        self._lock = threading.Lock()
        self._selections: OrderedDict[Filters, tuple[int, ...]] = OrderedDict()
        self._invoices: OrderedDict[str, tuple[Mapping[str, Any], ...]] = OrderedDict()
        self._accounts: OrderedDict[tuple[str, date], Account] = OrderedDict()
        self._today = today
        self._usage_source = account_api.UsageSource(
            self._customers, self._position, lambda p: metrics_of(self._invoices_of(p))
        )
        self._request_count = 0
        self._fault_sequence = 0
        self._list_sequence = 0

    @property
    def customers(self) -> tuple[Mapping[str, Any], ...]:
        """All customers, in result order (read-only)."""
        return self._customers

    @property
    def request_count(self) -> int:
        """Requests answered by `handle` since creation or the last `reset`."""
        with self._lock:
            return self._request_count

    def reset(self) -> None:
        """Clear faults and counters (the data and its caches stay)."""
        with self._lock:
            self.faults = Faults()
            self._request_count = 0
            self._fault_sequence = 0
            self._list_sequence = 0

    # --- the API ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one API request. `query` is the raw query string, without the `?`."""
        faults = self.faults
        with self._lock:
            self._request_count += 1
        if faults.latency_s:
            time.sleep(faults.latency_s)

        if not self._authorised(headers):
            return error_response(401, "Unauthorized")

        if path.startswith(("/v1/", "/v2/")):
            with self._lock:
                self._fault_sequence += 1
                sequence = self._fault_sequence
            if faults.rate_limit_every and sequence % faults.rate_limit_every == 0:
                return self._rate_limited(faults)
            if faults.fail_every and sequence % faults.fail_every == 0:
                return error_response(faults.fail_status, "Sandbox injected failure")

        route = next(((r, m) for r in _ROUTES if (m := r[2].fullmatch(path))), None)
        if route is None:
            return error_response(404, "Not found")
        (route_method, endpoint, _), match = route
        if endpoint in faults.failing_endpoints:
            return error_response(faults.fail_status, f"Sandbox injected failure ({endpoint})")
        if method.upper() != route_method:
            return error_response(405, "Method not allowed", {"allow": route_method})
        try:
            return self._answer(endpoint, match.groups(), query, body, faults)
        except BadRequest as error:
            return error_response(400, str(error))

    def _answer(
        self, endpoint: str, path_ids: tuple[str, ...], query: str, body: bytes, faults: Faults
    ) -> Response:
        if endpoint == "customers":
            return self._list(query, faults)
        if endpoint == "customer":
            return self._get(path_ids[0])
        if path_ids:
            position = self._position(path_ids[0])
            if position is None:
                return error_response(404, "Customer not found")
            if endpoint == "invoices":
                return self._list_invoices(position, query, faults)
            return self._invoice(position, path_ids[1], query, pdf=endpoint == "invoice_pdf")

        data = account_api.parse_body(body)
        cursor = parse_query(query, _BODY_ENDPOINT_PARAMS).get("next_page")
        if endpoint == "usage":
            return account_api.list_usage(data, cursor, self._usage_source)
        position = self._position(account_api.customer_id_of(data))
        if position is None:
            return error_response(404, "Customer not found")
        account = self.account_of(position)
        if endpoint == "contracts":
            return account_api.list_contracts(data, account)
        if endpoint == "balances":
            return account_api.list_balances(data, account)
        return account_api.list_alerts(data, cursor, account)

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = value.strip().partition(" ")
        # compare_digest wants equal types; encoding also keeps non-ASCII input from raising.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.token.encode()
        )

    @staticmethod
    def _rate_limited(faults: Faults) -> Response:
        # Retry-After only takes whole seconds; round up so a client honouring it never
        # comes back early, and never say 0, which some clients read as "no delay needed".
        seconds = max(1, math.ceil(faults.retry_after_s))
        headers = {
            "retry-after": str(seconds),
            "retry-after-ms": str(round(faults.retry_after_s * 1000)),
        }
        return error_response(429, "Too many requests (sandbox injected rate limit)", headers)

    def _position(self, raw_id: str) -> int | None:
        """Where the customer of a path's ID is, or None: a 404 either way."""
        try:
            return self._by_id.get(str(uuid.UUID(raw_id)))
        except ValueError:
            return None

    def _get(self, raw_id: str) -> Response:
        position = self._position(raw_id)
        if position is None:
            return error_response(404, "Customer not found")
        return 200, dict(JSON_HEADERS), b'{"data":' + self._encode(position) + b"}"

    def _list(self, query: str, faults: Faults) -> Response:
        params = parse_query(query, KNOWN_PARAMS)
        filters = parse_filters(params)
        limit = parse_limit(params.get("limit"))
        digest = filters.digest()
        cursor = params.get("next_page")
        offset = decode_cursor(cursor, digest) if cursor is not None else 0
        selection = self._select(filters)

        with self._lock:
            self._list_sequence += 1
            list_sequence = self._list_sequence
        if faults.empty_page_every and list_sequence % faults.empty_page_every == 0:
            # An empty page whose cursor resumes at the same offset: nothing is lost, but
            # a client that stops at the first empty page will miss the rest.
            empty = {"data": [], "next_page": encode_cursor(offset, digest)}
            return json_response(200, empty)

        end = offset + limit
        rows = b",".join([self._encode(p) for p in selection[offset:end]])
        next_page = encode_cursor(end, digest) if end < len(selection) else None
        body = b'{"data":[' + rows + b'],"next_page":' + json.dumps(next_page).encode() + b"}"
        return 200, dict(JSON_HEADERS), body

    def _list_invoices(self, position: int, query: str, faults: Faults) -> Response:
        params = parse_query(query, INVOICE_PARAMS)
        limit = parse_limit(params.get("limit"))
        selection = select_invoices(self._invoices_of(position), params)
        # The cursor is bound to the customer and every other parameter but itself.
        digest = hashlib.sha256(
            json.dumps(
                [
                    str(self._customers[position]["id"]),
                    sorted((k, v) for k, v in params.items() if k != "next_page"),
                ]
            ).encode()
        ).hexdigest()[:12]
        cursor = params.get("next_page")
        offset = decode_cursor(cursor, digest) if cursor is not None else 0

        with self._lock:
            self._list_sequence += 1
            list_sequence = self._list_sequence
        if faults.empty_page_every and list_sequence % faults.empty_page_every == 0:
            return json_response(200, {"data": [], "next_page": encode_cursor(offset, digest)})

        end = offset + limit
        next_page = encode_cursor(end, digest) if end < len(selection) else None
        return json_response(200, {"data": list(selection[offset:end]), "next_page": next_page})

    def _invoice(self, position: int, raw_id: str, query: str, *, pdf: bool) -> Response:
        """One invoice (`GET .../invoices/{invoice_id}`), or its PDF (`.../pdf`)."""
        params = parse_query(query, _INVOICE_DETAIL_PARAMS)
        try:
            invoice_id = str(uuid.UUID(raw_id))
        except ValueError:
            return error_response(404, "Invoice not found")
        found = next((i for i in self._invoices_of(position) if i["id"] == invoice_id), None)
        if found is None:
            return error_response(404, "Invoice not found")
        if pdf:
            name = str(self._customers[position]["name"])
            return 200, {"content-type": "application/pdf"}, invoice_pdf(found, name)
        return json_response(200, {"data": select_invoices((found,), params)[0]})

    def account_of(self, position: int) -> Account:
        """The customer's contracts, balances and alerts as of today (LRU-cached)."""
        today = self.today()
        key = (str(self._customers[position]["id"]), today)
        with self._lock:
            cached = self._accounts.get(key)
            if cached is not None:
                self._accounts.move_to_end(key)
                return cached
        account = generate_account(self._customers[position], self._invoices_of(position), today)
        with self._lock:
            self._accounts[key] = account
            while len(self._accounts) > INVOICE_CACHE_SIZE:
                self._accounts.popitem(last=False)
        return account

    def today(self) -> date:
        """The day the contract-area data is anchored on: fixed, or the clock's UTC day."""
        return self._today or datetime.now(UTC).date()

    def _invoices_of(self, position: int) -> tuple[Mapping[str, Any], ...]:
        """The customer's invoices, oldest date first (LRU-cached)."""
        customer_id = str(self._customers[position]["id"])
        with self._lock:
            cached = self._invoices.get(customer_id)
            if cached is not None:
                self._invoices.move_to_end(customer_id)
                return cached
        invoices = tuple(sorted(generate_invoices(self._customers[position]), key=invoice_date))
        with self._lock:
            self._invoices[customer_id] = invoices
            while len(self._invoices) > INVOICE_CACHE_SIZE:
                self._invoices.popitem(last=False)
        return invoices

    def _encode(self, position: int) -> bytes:
        encoded = self._encoded[position]
        if encoded is None:
            # A race here only encodes the same bytes twice; no lock needed.
            encoded = json.dumps(
                self._customers[position], separators=(",", ":"), ensure_ascii=False
            ).encode()
            self._encoded[position] = encoded
        return encoded

    def _select(self, filters: Filters) -> tuple[int, ...]:
        """Positions of the customers matching `filters`, in result order (LRU-cached)."""
        with self._lock:
            cached = self._selections.get(filters)
            if cached is not None:
                self._selections.move_to_end(filters)
                return cached

        candidates: set[int] | None = None
        if filters.customer_ids is not None:
            candidates = {self._by_id[i] for i in filters.customer_ids if i in self._by_id}
        if filters.salesforce_account_ids is not None:
            # A plain, case-sensitive string match against the stored form, 15 or 18
            # characters: what Metronome most likely does (its docs are silent), so the
            # dashboard has to send both forms.
            matches = {
                p
                for sf in filters.salesforce_account_ids
                for p in self._by_salesforce_id.get(sf, ())
            }
            candidates = matches if candidates is None else candidates & matches
        if filters.ingest_alias is not None:
            matches = set(self._by_alias.get(filters.ingest_alias, ()))
            candidates = matches if candidates is None else candidates & matches

        if candidates is None:
            selection = self._archived_only if filters.only_archived else self._active
        else:
            selection = tuple(
                sorted(p for p in candidates if self._archived[p] == filters.only_archived)
            )

        with self._lock:
            self._selections[filters] = selection
            self._selections.move_to_end(filters)
            while len(self._selections) > FILTER_CACHE_SIZE:
                self._selections.popitem(last=False)
        return selection

    # --- the control endpoint (standalone server only) -----------------------------------------

    def handle_control(self, method: str, path: str, body: bytes = b"") -> Response:
        """Inspect or change faults at runtime (see `faults.handle_control`)."""
        return handle_control(self, method, path, body)


class SandboxTransport(httpx.BaseTransport):
    """An httpx transport answering from a SandboxAPI in-process, with no socket."""

    def __init__(self, api: SandboxAPI | None = None) -> None:
        self.api = api if api is not None else SandboxAPI()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        status, headers, body = self.api.handle(
            request.method,
            request.url.path,
            request.url.query.decode("ascii"),
            request.headers,
            request.content,
        )
        return httpx.Response(status, headers=headers, content=body, request=request)
