"""customers/metronome/models.py: customers read from Metronome's wire format into typed values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from customers.metronome import (
    BillableStatus,
    CurrentBillableStatus,
    Customer,
)
from customers.sandbox import SandboxAPI
from tests.fake_metronome import (
    customer_id,
    salesforce_id,
    wire_customer,
)

# --- 6. Parsing --------------------------------------------------------------------------------


def test_timestamps_are_parsed_as_aware_datetimes():
    customer = Customer.from_wire(
        wire_customer(
            1,
            created_at="2024-03-01T12:30:00.250Z",
            updated_at="2024-03-01T14:30:00+02:00",
            archived_at="2025-01-02T03:04:05Z",
        )
    )

    assert customer.created_at == datetime(2024, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)
    assert customer.updated_at == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert customer.archived_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    for value in (customer.created_at, customer.updated_at, customer.archived_at):
        assert value.utcoffset() is not None


@pytest.mark.parametrize("archived_at", ["absent", None])
def test_archived_at_absent_or_null_means_active(archived_at):
    wire = wire_customer(1) if archived_at == "absent" else wire_customer(1, archived_at=None)

    customer = Customer.from_wire(wire)

    assert customer.archived_at is None
    assert customer.archived_at is None


def test_archived_at_present_means_archived():
    customer = Customer.from_wire(wire_customer(1, archived_at="2025-05-05T05:05:05Z"))

    assert customer.archived_at is not None


def test_billable_status_absent_is_none():
    assert Customer.from_wire(wire_customer(1)).billable_status is None


def test_billable_status_present_is_a_typed_value():
    customer = Customer.from_wire(
        wire_customer(
            1,
            current_billable_status={"value": "unbillable", "effective_at": "2024-06-01T00:00:00Z"},
        )
    )

    assert customer.billable_status == CurrentBillableStatus(
        value=BillableStatus.UNBILLABLE, effective_at=datetime(2024, 6, 1, tzinfo=UTC)
    )
    assert isinstance(customer.billable_status.value, BillableStatus)


def test_billable_status_without_an_effective_date_has_none():
    customer = Customer.from_wire(
        wire_customer(1, current_billable_status={"value": "billable", "effective_at": None})
    )

    assert customer.billable_status == CurrentBillableStatus(BillableStatus.BILLABLE, None)


def test_a_null_salesforce_account_id_is_none():
    wire = wire_customer(1, customer_config={"salesforce_account_id": None})

    assert Customer.from_wire(wire).salesforce_account_id is None


def test_the_other_fields_are_read_as_sent():
    wire = wire_customer(
        7,
        name='Ørsted Datavirk ApS, "Nord"',
        ingest_aliases=["a-1", "billing@x.example"],
        custom_fields={"plan": '=HYPERLINK("x")', "region": "eu"},
    )

    customer = Customer.from_wire(wire)

    assert customer.id == customer_id(7)
    assert customer.name == 'Ørsted Datavirk ApS, "Nord"'
    assert customer.external_id == "ext-7"
    assert customer.ingest_aliases == ("a-1", "billing@x.example")
    assert dict(customer.custom_fields) == {"plan": '=HYPERLINK("x")', "region": "eu"}
    assert customer.salesforce_account_id == salesforce_id(7)


@pytest.fixture(scope="module")
def big_sandbox() -> SandboxAPI:
    return SandboxAPI(1500)


def test_every_sandbox_customer_parses(big_sandbox):
    for wire in big_sandbox.customers:
        customer = Customer.from_wire(wire)
        assert (customer.archived_at is not None) == (wire.get("archived_at") is not None)
        assert (customer.billable_status is None) == ("current_billable_status" not in wire)


def test_a_customer_survives_the_cache_with_every_field():
    import pickle

    import msgspec

    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values = {
        "id": "0c5e4f3a-3f7c-4b8e-9a8e-2f4a1c9d7b6e",
        "name": "Acme",
        "external_id": "acme",
        "ingest_aliases": ("acme", "acme-eu"),
        "custom_fields": {"region": "EU"},
        "salesforce_account_id": "001xx000003DHurAAG",
        "created_at": moment,
        "updated_at": moment.replace(day=3),
        "archived_at": moment.replace(day=4),
        "billable_status": CurrentBillableStatus(BillableStatus.UNBILLABLE, moment),
    }
    # Every field of Customer is set above, so the round trip below covers each one.
    assert set(values) == {field.name for field in msgspec.structs.fields(Customer)}
    customer = Customer(**values)
    assert pickle.loads(pickle.dumps(customer, pickle.HIGHEST_PROTOCOL)) == customer  # noqa: S301 (our own bytes)

    # A customer cached before Customer was a Struct was pickled as a call of its constructor
    # with its fields in order: it still reads back.
    class CachedBefore:
        def __reduce__(self) -> tuple[type[Customer], tuple[object, ...]]:
            return (Customer, tuple(values.values()))

    assert pickle.loads(pickle.dumps(CachedBefore())) == customer  # noqa: S301 (our own bytes)
