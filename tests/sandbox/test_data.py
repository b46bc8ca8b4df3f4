"""customers/sandbox/data.py: the generated customers, the same every run."""

from __future__ import annotations

import collections
import json
import re
import uuid

from customers import salesforce
from customers.sandbox import data as sandbox_data
from customers.sandbox import (
    generate_customers,
)
from tests.factories import (
    RFC3339_MS,
    is_archived,
    result_order,
)

# --- generated data ------------------------------------------------------------------------


def test_same_seed_regenerates_identical_customers() -> None:
    first = json.dumps(generate_customers(300, seed=7))
    sandbox_data._cached.cache_clear()  # regenerate for real, not from the cache
    assert json.dumps(generate_customers(300, seed=7)) == first


def test_different_seeds_generate_different_customers() -> None:
    one = generate_customers(300, seed=1)
    two = generate_customers(300, seed=2)
    assert {c["id"] for c in one}.isdisjoint({c["id"] for c in two})
    assert [c["name"] for c in one] != [c["name"] for c in two]


def test_callers_get_a_fresh_list_so_reordering_it_leaves_the_cache_intact() -> None:
    mine = generate_customers(50, seed=3)
    mine.reverse()
    mine.append({})
    again = generate_customers(50, seed=3)
    assert len(again) == 50
    assert again == result_order(again)


def test_default_list_has_5000_unique_uuid_customers_in_created_order(customers) -> None:
    assert len(customers) >= 5000
    ids = [c["id"] for c in customers]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    assert customers == result_order(customers)


def test_every_customer_has_the_required_fields_with_the_right_types(customers) -> None:
    for customer in customers:
        assert isinstance(customer["name"], str) and customer["name"]
        assert isinstance(customer["external_id"], str)
        assert isinstance(customer["ingest_aliases"], list)
        assert isinstance(customer["custom_fields"], dict)
        assert "salesforce_account_id" in customer["customer_config"]
        assert all(
            isinstance(k, str) and isinstance(v, str) for k, v in customer["custom_fields"].items()
        )


def test_timestamps_are_rfc3339_utc_with_milliseconds_and_consistent(customers) -> None:
    first, last = customers[0]["created_at"], customers[-1]["created_at"]
    assert first.startswith("2019") and last.startswith("2026-11")
    for customer in customers:
        stamps = [customer["created_at"], customer["updated_at"]]
        if is_archived(customer):
            stamps.append(customer["archived_at"])
            assert customer["archived_at"] > customer["created_at"]
            assert customer["updated_at"] >= customer["archived_at"]
        billable = customer.get("current_billable_status")
        if billable and billable["effective_at"] is not None:
            stamps.append(billable["effective_at"])
        assert all(RFC3339_MS.fullmatch(stamp) for stamp in stamps), stamps
        assert customer["updated_at"] >= customer["created_at"]


def test_about_ten_percent_are_archived(customers, archived) -> None:
    assert 0.07 <= len(archived) / len(customers) <= 0.13


def test_active_customers_send_archived_at_as_null_or_leave_the_key_out(active) -> None:
    absent = sum("archived_at" not in c for c in active)
    null = sum("archived_at" in c and c["archived_at"] is None for c in active)
    assert absent + null == len(active)
    assert 0.2 <= absent / len(active) <= 0.4
    assert null > absent


def test_billable_status_is_mostly_billable_and_absent_for_some_accounts(customers) -> None:
    statuses = [c["current_billable_status"] for c in customers if "current_billable_status" in c]
    absent = len(customers) - len(statuses)
    assert 0.10 <= absent / len(customers) <= 0.20
    values = collections.Counter(s["value"] for s in statuses)
    assert set(values) == {"billable", "unbillable"}
    assert values["billable"] > 3 * values["unbillable"]
    assert any(s["effective_at"] is None for s in statuses)


def test_salesforce_ids_are_real_account_ids_some_null_some_shared(customers) -> None:
    ids = [c["customer_config"]["salesforce_account_id"] for c in customers]
    present = [i for i in ids if i is not None]
    assert 0.80 <= len(present) / len(ids) <= 0.90
    assert all(re.fullmatch(r"001[A-Za-z0-9]{12}(?:[A-Z0-5]{3})?", i) for i in present)
    counts = collections.Counter(present)
    shared = [sf for sf, n in counts.items() if n > 1]
    assert shared and max(counts.values()) == 2
    assert 0.003 <= 2 * len(shared) / len(customers) <= 0.02
    # A shared ID belongs to an archived record and the active one that replaced it.
    for sf in shared:
        pair = [c for c in customers if c["customer_config"]["salesforce_account_id"] == sf]
        assert sorted(is_archived(c) for c in pair) == [False, True]


def test_salesforce_ids_carry_valid_suffixes_and_some_are_stored_in_15_character_form(
    customers,
) -> None:
    present = [
        c["customer_config"]["salesforce_account_id"]
        for c in customers
        if c["customer_config"]["salesforce_account_id"] is not None
    ]
    long_form = [i for i in present if len(i) == 18]
    short_form = [i for i in present if len(i) == 15]
    assert len(long_form) + len(short_form) == len(present)
    assert 0.10 <= len(short_form) / len(present) <= 0.20
    # The sandbox computes suffixes on its own, so this checks one implementation against
    # the other; the documented examples pin down the dashboard's.
    assert all(salesforce.normalise(i).reading is salesforce.Reading.CHECKED for i in long_form)
    # Each 18-character ID is unique in its first 15 characters, so both forms name one
    # account whichever the customer stored.
    keys = collections.Counter(salesforce.key_for_stored(i) for i in set(present))
    assert max(keys.values()) == 1


def test_each_customer_has_one_to_three_aliases_and_external_id_is_the_first(customers) -> None:
    lengths = collections.Counter(len(c["ingest_aliases"]) for c in customers)
    assert set(lengths) <= {1, 2, 3, 4} and lengths[1] and lengths[2] and lengths[3]
    assert lengths[4] <= len(customers) * 0.005  # a replacement that inherited an alias
    assert all(c["external_id"] == c["ingest_aliases"][0] for c in customers)
    owners = collections.Counter(a for c in customers for a in set(c["ingest_aliases"]))
    assert max(owners.values()) <= 2
    assert sum(n == 2 for n in owners.values()) <= len(customers) * 0.01
    # The three shapes real accounts use: slug-number, acct_…, billing@….example.
    assert any(re.fullmatch(r"[a-z0-9-]+-[0-9]+", a) for a in owners)
    assert any(re.fullmatch(r"acct_[a-z0-9]{10}", a) for a in owners)
    assert any(re.fullmatch(r"billing(\+[0-9]+)?@[a-z0-9-]+\.example", a) for a in owners)


def test_names_include_non_ascii_commas_and_quotes(customers) -> None:
    names = {c["name"] for c in customers}
    assert any(not name.isascii() for name in names)
    assert any("," in name and '"' in name for name in names)
    assert "株式会社テスト" in names or "Zürich Datenwerk AG" in names
    assert len(names) > 1000


def test_custom_fields_include_csv_hostile_values_and_empty_objects(customers) -> None:
    values = [v for c in customers for v in c["custom_fields"].values()]
    assert any("," in v for v in values)
    assert any('"' in v for v in values)
    assert any("\n" in v for v in values)
    assert any(not v.isascii() for v in values)
    for prefix in "=+-@":
        assert any(v.startswith(prefix) for v in values), prefix
    assert any(c["custom_fields"] == {} for c in customers)
    keys = {k for c in customers for k in c["custom_fields"]}
    assert {"region", "plan", "account_manager", "netsuite_id", "notes"} <= keys
