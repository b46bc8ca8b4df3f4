"""The typed values the client returns (frozen dataclasses and Structs), each read from the wire by
its `from_wire`, and the query of `GET /v1/customers`.

Reference: https://docs.metronome.com/api-reference/customers/list-customers"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

import msgspec

from customers.metronome.errors import MalformedResponse
from customers.metronome.wire import (
    read_datetime,
    read_number,
    read_optional_datetime,
    read_optional_text,
    read_text,
    read_text_mapping,
    read_texts,
)

MAX_PAGE_SIZE = 100
MAX_IDS_PER_REQUEST = 100  # `maxItems: 100` in Metronome's spec, for each ID filter


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


# The two values every listing builds one of for each customer are msgspec Structs, not
# frozen dataclasses: a frozen dataclass's __init__ sets each field through
# `object.__setattr__`, 0.7 µs for a customer's ten, where a Struct is built in C in 0.05 µs
# (bench/README.md, ninth pass). Frozen, compared and pickled (as the constructor's
# arguments) alike. `gc=False`: they hold strings, dates, a tuple and a dict of strings, so
# they can never be part of a reference cycle.
class CurrentBillableStatus(msgspec.Struct, frozen=True, gc=False):
    value: BillableStatus
    effective_at: datetime | None


class Customer(msgspec.Struct, frozen=True, gc=False):
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
        """Parse one CustomerDetail; absent and null `archived_at` and billable status alike.
        A listing's pages are read in C where they can be (`decode.customer_page`); this
        reads one customer, and every page that path declines, with every check."""
        try:
            if not isinstance(data, dict):
                raise TypeError("a customer must be an object")
            custom_fields = data["custom_fields"]
            aliases = data["ingest_aliases"]
            salesforce_id = data["customer_config"]["salesforce_account_id"]
            status = data.get("current_billable_status")
            if not (isinstance(custom_fields, dict) and isinstance(aliases, list)):
                raise TypeError("custom_fields must be an object and ingest_aliases a list")
            # Positional, in the fields' order (as `decode._built` builds it).
            return cls(
                read_text(data["id"]),
                read_text(data["name"]),
                read_text(data["external_id"]),
                read_texts(aliases),
                read_text_mapping(custom_fields),
                None if salesforce_id is None else read_text(salesforce_id) or None,
                read_datetime(data["created_at"]),
                read_datetime(data["updated_at"]),
                read_optional_datetime(data.get("archived_at")),
                (
                    CurrentBillableStatus(
                        BILLABLE_STATUS_BY_VALUE[status["value"]],
                        read_optional_datetime(status.get("effective_at")),
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


@dataclass(frozen=True, slots=True)
class CreditType:
    """What an amount is counted in: `USD (cents)`, or a custom pricing unit."""

    id: str
    name: str

    @classmethod
    def from_wire(cls, data: object) -> CreditType:
        if not isinstance(data, dict):
            raise TypeError("a credit type must be an object")
        return cls(id=read_text(data["id"]), name=read_text(data["name"]))


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
            name=read_text(data["name"]),
            total=read_number(data["total"]),
            type=read_text(data["type"]),
            credit_type=CreditType.from_wire(data["credit_type"]),
            quantity=None if quantity is None else read_number(quantity),
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
                id=read_text(data["id"]),
                customer_id=read_text(data["customer_id"]),
                status=read_text(data["status"]),
                type=read_text(data["type"]),
                total=read_number(data["total"]),
                credit_type=CreditType.from_wire(data["credit_type"]),
                line_items=tuple(InvoiceLineItem.from_wire(item) for item in line_items),
                issued_at=read_optional_datetime(data.get("issued_at")),
                start_timestamp=read_optional_datetime(data.get("start_timestamp")),
                end_timestamp=read_optional_datetime(data.get("end_timestamp")),
                contract_id=read_optional_text(data.get("contract_id")),
                plan_name=read_optional_text(data.get("plan_name")),
                billing_provider=read_optional_text(external.get("billing_provider_type")),
                external_status=read_optional_text(external.get("external_status")),
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
    # Invoices Metronome sent that could not be read: left out and counted, as every other
    # list of the customer view does, so one bad invoice does not hide the good ones.
    unreadable: int = 0


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
