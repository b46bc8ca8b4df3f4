"""Builders shared by the test modules: customers in Metronome's wire format, the index's
sample customers and helpers that read the list page. Test modules import from here, never
from each other."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import Group, User
from django.test import Client

from customers import csv_file
from customers.metronome import Customer
from customers.sandbox import SANDBOX_TOKEN, SandboxAPI, SandboxTransport


def wire_customer(name: str, *, key: str = "", **changes: Any) -> dict[str, Any]:
    """A customer in Metronome's wire format, its IDs derived from `key` (default: the
    name); `changes` replace top-level keys."""
    key = key or name
    customer: dict[str, Any] = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
        "external_id": f"ext-{key.lower().replace(' ', '-')}",
        "ingest_aliases": [],
        "name": name,
        "customer_config": {"salesforce_account_id": None},
        "custom_fields": {},
        "created_at": "2024-01-01T00:00:00.000Z",
        "updated_at": "2024-01-01T00:00:00.000Z",
    }
    customer.update(changes)
    return customer


CUSTOMERS = [
    wire_customer(
        "Juniper HR Ltd.",
        ingest_aliases=["juniper-hr-1", "billing@juniper.example"],
        customer_config={"salesforce_account_id": "001xx000003DHur"},
        current_billable_status={"value": "billable", "effective_at": None},
        created_at="2021-03-04T10:00:00Z",
        updated_at="2025-06-01T00:00:00Z",
        custom_fields={"region": "emea", "plan": "Scale"},
    ),
    wire_customer(
        "HR Juniper Partners",
        customer_config={"salesforce_account_id": "a0D30000001n7PiEAI"},
        current_billable_status={"value": "unbillable", "effective_at": "2025-01-01T00:00:00Z"},
        created_at="2022-01-01T00:00:00Z",
        updated_at="2024-01-01T00:00:00Z",
        custom_fields={"region": "apac"},
    ),
    wire_customer(
        "Société Générale",
        created_at="2023-05-05T23:59:59Z",
        updated_at="2023-05-06T00:00:00Z",
        custom_fields={"account_manager": "Zoë Müller"},
    ),
    wire_customer(
        "Northwind Acme",
        created_at="2020-01-01T00:00:00Z",
        updated_at="2020-02-01T00:00:00Z",
        current_billable_status={"value": "billable", "effective_at": None},
    ),
    wire_customer(
        "Acme Corp",
        external_id="ACME-0001",
        created_at="2019-06-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        custom_fields={"region": "emea"},
    ),
    wire_customer(
        "Acme Archived",
        archived_at="2025-03-03T00:00:00Z",
        created_at="2018-01-01T00:00:00Z",
        updated_at="2025-03-03T00:00:00Z",
    ),
    wire_customer("株式会社 佐藤", created_at="2024-04-04T00:00:00Z"),
]


def customer_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def shown(response) -> list[str]:
    """The names of the rows shown, in order."""
    html = response.content.decode()
    return re.findall(r'<tr data-customer-id="[^"]+"><th><a href="[^"]+/">([^<]+)</a>', html)


def install_metronome(install_client, customers: list[dict[str, Any]]) -> None:
    install_client(SandboxTransport(SandboxAPI(customers)))


def salesforce_id_of(customer: dict[str, Any]) -> str | None:
    """The Salesforce account ID of a customer in the wire format, if it has one."""
    return (customer.get("customer_config") or {}).get("salesforce_account_id")


# --- Users, clients and responses (the security tests and others) ---

PASSWORD = "correct horse battery staple"


LIST_URL = "/customers/"


EXPORT_URL = "/customers/export.csv"


LOGIN_URL = "/accounts/login/"


def make_user(username: str, *groups: str, **fields) -> User:
    user = User.objects.create_user(username, password=PASSWORD, **fields)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body_of(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def text_of(response) -> str:
    return body_of(response).decode("utf-8", "replace")


def active_ids(api: SandboxAPI) -> list[str]:
    return [c["id"] for c in api.customers if not c.get("archived_at")]


def read_to_the_end(response):
    if response.streaming:
        response.getvalue()
    return response


def attempt_login(client: Client, username: str, password: str, address: str):
    return client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


def boom(*args, **kwargs):
    raise RuntimeError("internal detail: /srv/dashboard/secret.py line 42")


JSON_SCRIPT_TYPES = {"application/json", "application/ld+json"}


class MarkupAudit(HTMLParser):
    """Finds what a strict CSP would block or what would load from another origin: inline
    scripts and styles, style attributes, event-handler attributes (also htmx's hx-on, which
    needs eval), javascript: URLs, and third-party scripts, styles, images and frames."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name.startswith(("hx-on", "data-hx-on")):
                self.problems.append(f"<{tag} {name}=...>")
            if name == "style":
                self.problems.append(f"<{tag} style=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name in ("hx-get", "hx-post", "action") and value and not value.startswith("/"):
                self.problems.append(f"<{tag} {name}={value!r}> leaves the site")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            if "src" in names:
                self._check_first_party(tag, values["src"])
            elif values.get("type") not in JSON_SCRIPT_TYPES:
                self.problems.append("inline <script>")
        if tag == "link" and values.get("rel") in ("stylesheet", "icon", "preload"):
            self._check_first_party(tag, values.get("href") or "")
        if tag in ("img", "iframe", "frame", "embed", "object"):
            self._check_first_party(tag, values.get("src") or values.get("data") or "")

    handle_startendtag = handle_starttag

    def _check_first_party(self, tag: str, url: str):
        if tag == "img" and url.startswith("data:"):
            return
        if not url.startswith("/") or url.startswith("//"):
            self.problems.append(f"<{tag}> loads {url!r}")


def markup_problems(response) -> list[str]:
    audit = MarkupAudit()
    audit.feed(text_of(response))
    audit.close()
    return audit.problems


# --- The CSV export ---

CSV_BOM = b"\xef\xbb\xbf"


def parse_csv(body: bytes) -> list[list[str]]:
    """An exported file's rows, after checking it starts with the byte-order mark."""
    assert body.startswith(CSV_BOM)
    return list(csv.reader(io.StringIO(body[len(CSV_BOM) :].decode("utf-8"), newline="")))


def csv_cells(customer: Customer, extra_columns: Sequence[str] = ()) -> list[str]:
    """One customer's cells as the export writes its line, read back as a spreadsheet does."""
    [row] = csv.reader(io.StringIO(csv_file.lines([customer], extra_columns), newline=""))
    return row


def numbered_wire_customer(n: int, name: str = "", **fields) -> dict:
    """A hand-made CustomerDetail as Metronome sends it."""
    return {
        "id": str(uuid.UUID(int=n)),
        "name": name or f"Customer {n}",
        "external_id": f"ext-{n}",
        "ingest_aliases": [f"ext-{n}"],
        "customer_config": {"salesforce_account_id": None},
        "custom_fields": {},
        "created_at": f"2024-03-01T12:00:{n:02d}.123Z",
        "updated_at": f"2024-03-02T12:00:{n:02d}Z",
        **fields,
    }


# --- The sandbox, called in process ---

SANDBOX_AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def call_sandbox(
    api: SandboxAPI,
    path: str = "/v1/customers",
    query: str | Mapping[str, Any] = "",
    *,
    method: str = "GET",
    headers: Mapping[str, str] = SANDBOX_AUTH,
) -> tuple[int, dict[str, str], Any]:
    if not isinstance(query, str):
        query = urlencode(query)
    status, response_headers, body = api.handle(method, path, query, headers)
    return status, response_headers, json.loads(body)


def page_all_of_sandbox(
    api: SandboxAPI, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """Every row of a listing, following next_page; also returns the number of requests."""
    rows: list[dict[str, Any]] = []
    cursor = None
    requests = 0
    while True:
        query = dict(params)
        if cursor is not None:
            query["next_page"] = cursor
        status, _, payload = call_sandbox(api, query=query)
        requests += 1
        assert status == 200, payload
        rows.extend(payload["data"])
        cursor = payload["next_page"]
        if cursor is None:
            return rows, requests


def is_archived(customer: Mapping[str, Any]) -> bool:
    return customer.get("archived_at") is not None


def result_order(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(customers, key=lambda c: (c["created_at"], c["id"]))
