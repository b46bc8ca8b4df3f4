"""The row a customer becomes in the index: its id as the database driver takes it, a
fingerprint that says whether it changed since the last sync, and the full row, written out
per database rather than through Django's fields (bench/README.md)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import connection

from customers.index.search import fold, salesforce_id_18, salesforce_key
from customers.metronome import Customer
from customers.models import IndexedCustomer

# The index's columns, in the order every staging row has them.
COLUMNS = list(IndexedCustomer._meta.concrete_fields)


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def row_builders(
    indexed_at: datetime,
) -> tuple[
    Callable[[Customer], tuple[object, str]],
    Callable[[Customer, object, str], tuple[object, ...]],
]:
    """Two functions: a customer's id (as the database driver takes it) and fingerprint,
    cheap enough for every customer listed; and its full staging row, in `COLUMNS` order,
    only for those that changed. Written out rather than through the fields'
    get_db_prep_save, which took most of a 100,000-customer sync's time (bench/README.md)."""
    if connection.vendor == "sqlite":

        def timestamp(value: datetime | None) -> object:
            # As Django stores it on SQLite: naive UTC, in str()'s format. Metronome sends
            # UTC, so cutting "+00:00" off is the common, cheap case.
            if value is None:
                return None
            if value.tzinfo is UTC:
                return str(value)[:-6]
            return str(value.astimezone(UTC).replace(tzinfo=None))

        def identifier(value: str) -> object:
            if _CANONICAL_UUID.fullmatch(value):
                return value.replace("-", "")
            return uuid.UUID(value).hex  # any other spelling, or a clear ValueError
    else:

        def timestamp(value: datetime | None) -> object:
            return value

        def identifier(value: str) -> object:
            return uuid.UUID(value)

    to_json = json.JSONEncoder(ensure_ascii=False).encode

    indexed = timestamp(indexed_at)
    expected = [
        "id", "name", "name_folded", "ingest_aliases", "aliases_folded", "external_id",
        "external_id_folded", "salesforce_account_id", "salesforce_account_id_18",
        "salesforce_key", "billable_status", "billable_status_effective_at", "created_at",
        "updated_at", "archived_at", "custom_fields", "custom_values_folded", "fingerprint",
        "indexed_at",
    ]  # fmt: skip
    if [field.attname for field in COLUMNS] != expected:
        raise AssertionError("the index's columns changed: update row_builders")

    def identify(customer: Customer) -> tuple[object, str]:
        status = customer.billable_status
        # repr() of the values in one tuple: one call into C, unambiguous (strings quoted,
        # datetimes with their zone), and stable for the same values.
        values = (
            customer.name,
            customer.ingest_aliases,
            customer.external_id,
            customer.salesforce_account_id,
            status.value.value if status else None,
            status.effective_at if status else None,
            customer.created_at,
            customer.updated_at,
            customer.archived_at,
            customer.custom_fields,
        )
        digest = hashlib.blake2b(repr(values).encode(), digest_size=16).hexdigest()
        return identifier(customer.id), digest

    def row(customer: Customer, db_id: object, fingerprint: str) -> tuple[object, ...]:
        aliases = customer.ingest_aliases
        custom_fields = customer.custom_fields
        salesforce_id = customer.salesforce_account_id or ""
        status = customer.billable_status
        return (
            db_id,
            customer.name,
            fold(customer.name),
            to_json(aliases),
            "".join(f"\n{fold(alias)}" for alias in aliases) + "\n",
            customer.external_id,
            fold(customer.external_id),
            salesforce_id,
            salesforce_id_18(salesforce_id),
            salesforce_key(salesforce_id),
            status.value.value if status else "",
            timestamp(status.effective_at if status else None),
            timestamp(customer.created_at),
            timestamp(customer.updated_at),
            timestamp(customer.archived_at),
            to_json(custom_fields),
            "\n".join(fold(value) for value in custom_fields.values()),
            fingerprint,
            indexed,
        )

    return identify, row
