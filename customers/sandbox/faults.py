"""The failures the sandbox injects: latency, errors, rate limits, empty pages, and one or
more endpoints that always fail (`failing_endpoints`, by the names in `ENDPOINTS`)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, Protocol

from .wire import Response, error_response, json_response

# The names `failing_endpoints` takes: one per endpoint the sandbox serves.
ENDPOINTS = (
    "customers",  # GET /v1/customers
    "customer",  # GET /v1/customers/{id}
    "invoices",  # GET /v1/customers/{id}/invoices
    "invoice",  # GET /v1/customers/{id}/invoices/{invoice_id}
    "invoice_pdf",  # GET /v1/customers/{id}/invoices/{invoice_id}/pdf
    "contracts",  # POST /v2/contracts/list
    "balances",  # POST /v1/contracts/customerBalances/list
    "alerts",  # POST /v1/customer-alerts/list
    "usage",  # POST /v1/usage
)


@dataclasses.dataclass
class Faults:
    """Failures the sandbox injects, read afresh on every request so they can change live.

    Counting is per API instance over authenticated requests on /v1/ and /v2/ paths; 0 turns
    a fault off. Every request to an endpoint named in `failing_endpoints` fails with
    `fail_status`, so a test or a demo can break one region of a page and no other.
    Replacing the whole object (`api.faults = Faults(...)`) is atomic; mutating fields one
    by one is fine for tests and demos, which is all this is for.
    """

    latency_s: float = 0.0
    fail_every: int = 0
    fail_status: int = 503
    rate_limit_every: int = 0
    retry_after_s: float = 1.0
    empty_page_every: int = 0
    failing_endpoints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        endpoints = self.failing_endpoints
        if isinstance(endpoints, str) or not isinstance(endpoints, list | tuple):
            raise ValueError("failing_endpoints must be a list of endpoint names")
        unknown = sorted(set(endpoints) - set(ENDPOINTS))
        if unknown:
            raise ValueError(
                f"failing_endpoints: unknown {', '.join(map(str, unknown))}; "
                f"known: {', '.join(ENDPOINTS)}"
            )
        self.failing_endpoints = tuple(endpoints)
        for field in dataclasses.fields(self):
            if field.name == "failing_endpoints":
                continue
            value = getattr(self, field.name)
            # bool is an int subclass; True as "every 1st request" would be a silent surprise.
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{field.name} must be a number")
            if field.type == "int" and not isinstance(value, int):
                raise ValueError(f"{field.name} must be an integer")
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number >= 0")
            if field.type == "float":
                # JSON and the CLI hand over whole numbers as int; keep to_dict stable.
                setattr(self, field.name, float(value))
        if not 400 <= self.fail_status <= 599:
            raise ValueError("fail_status must be an HTTP error status (400-599)")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["failing_endpoints"] = list(self.failing_endpoints)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build from JSON-like data; raises ValueError on unknown keys or bad values."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        return cls(**data)


class _Controlled(Protocol):
    faults: Faults

    @property
    def request_count(self) -> int: ...

    @property
    def customers(self) -> tuple[Mapping[str, Any], ...]: ...

    def reset(self) -> None: ...


def handle_control(api: _Controlled, method: str, path: str, body: bytes = b"") -> Response:
    """Inspect or change an API's faults at runtime: `/_sandbox/faults`, `/reset`, `/stats`.

    Unauthenticated by design, so the standalone server exposes it only to whoever can
    reach its port; the in-process transport does not route here at all.
    """
    method = method.upper()
    if path == "/_sandbox/faults":
        if method == "GET":
            return json_response(200, api.faults.to_dict())
        if method == "POST":
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return error_response(400, "body must be a JSON object")
            if not isinstance(data, dict):
                return error_response(400, "body must be a JSON object")
            try:
                api.faults = Faults.from_dict(data)
            except (TypeError, ValueError) as error:
                return error_response(400, str(error))
            return json_response(200, api.faults.to_dict())
        return error_response(405, "Method not allowed", {"allow": "GET, POST"})
    if path == "/_sandbox/reset":
        if method != "POST":
            return error_response(405, "Method not allowed", {"allow": "POST"})
        api.reset()
        return json_response(200, api.faults.to_dict())
    if path == "/_sandbox/stats":
        if method != "GET":
            return error_response(405, "Method not allowed", {"allow": "GET"})
        stats = {"request_count": api.request_count, "customers": len(api.customers)}
        return json_response(200, stats)
    return error_response(404, "Not found")
