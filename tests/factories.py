"""Builders shared by the test modules: customers in Metronome's wire format, the index's
sample customers and helpers that read the list page. Test modules import from here, never
from each other."""

from __future__ import annotations

import re
import uuid
from typing import Any

from customers.sandbox import SandboxAPI, SandboxTransport


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
    return re.findall(r'<th scope="row"><a href="[^"]+/">([^<]+)</a>', html)


def install_metronome(install_client, customers: list[dict[str, Any]]) -> None:
    install_client(SandboxTransport(SandboxAPI(customers)))


def salesforce_id_of(customer: dict[str, Any]) -> str | None:
    """The Salesforce account ID of a customer in the wire format, if it has one."""
    return (customer.get("customer_config") or {}).get("salesforce_account_id")
