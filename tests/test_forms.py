"""customers/forms.py: what the customers page accepts from a URL or a form, before any
API call."""

from __future__ import annotations

import uuid

import pytest
from django.http import QueryDict

from customers.forms import (
    MAX_CURSOR_TRAIL,
    MAX_PASTE_CHARACTERS,
    MAX_PASTED_IDS,
    CustomerFilterForm,
)
from customers.metronome import CustomerQuery
from customers.urlstate import DEFAULT_PAGE_SIZE


def form(query: str) -> CustomerFilterForm:
    return CustomerFilterForm(QueryDict(query))


def test_an_empty_query_is_every_active_customer_at_the_default_page_size():
    empty = form("")
    assert empty.is_valid()
    assert empty.query() == CustomerQuery()
    assert empty.cleaned_data["limit"] == DEFAULT_PAGE_SIZE
    assert empty.cleaned_data["page"] is None and empty.cleaned_data["prev"] == []


def test_customer_ids_are_canonical_lowercase_uuids():
    valid = form("customer_ids=182BD5E5-6E1A-4FE4-A799-AA6D9A6AB26E")
    assert valid.is_valid()
    assert valid.query().customer_ids == ("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e",)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("only_archived=maybe", "only_archived"),
        ("customer_ids=not-a-uuid", "customer_ids"),
        ("salesforce_account_ids=001-too-short", "salesforce_account_ids"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("next_page=" + "c" * 2001, "next_page"),
        ("prev=a%00b&next_page=x", "prev"),
    ],
)
def test_bad_values_are_errors_on_their_field(query, field):
    bad = form(query)
    assert not bad.is_valid()
    assert field in bad.errors


def test_more_pasted_ids_than_allowed_is_an_error_saying_how_many():
    ids = ",".join(str(uuid.UUID(int=n)) for n in range(MAX_PASTED_IDS + 1))
    bad = form(f"customer_ids={ids}")
    assert not bad.is_valid()
    assert "1,001 Metronome customer IDs were pasted; search at most 1,000" in str(bad.errors)


def paste_of(length: int) -> str:
    """An 18-character Salesforce ID, then report cells that are not IDs, to `length`."""
    text = "001Dn00000AbCdEIAZ"
    return text + ("\tAcme Corp" * length)[: length - len(text)]


def test_a_paste_longer_than_allowed_is_refused_unread_and_kept_as_pasted():
    too_long = paste_of(MAX_PASTE_CHARACTERS + 1)
    bad = CustomerFilterForm(QueryDict(mutable=True) | {"salesforce_account_ids": too_long})
    assert not bad.is_valid()
    assert f"This box holds {MAX_PASTE_CHARACTERS + 1:,} characters; paste at most" in str(
        bad.errors["salesforce_account_ids"]
    )
    # Not read: nothing reported as ignored, and the box shows the text as it was pasted.
    assert bad.ignored_values == [] and bad.pasted_text == {}
    assert bad["salesforce_account_ids"].value() == too_long


def test_a_paste_of_the_longest_allowed_is_read():
    longest = paste_of(MAX_PASTE_CHARACTERS)
    read = CustomerFilterForm(QueryDict(mutable=True) | {"salesforce_account_ids": longest})
    assert read.is_valid(), read.errors
    (found,) = read.query().salesforce_account_ids
    assert found.lower() == "001dn00000abcdeiaz"
    assert read.ignored_values[0][1][0].value == "Acme Corp"


def test_a_paste_whose_compacted_form_would_not_read_back_is_refused():
    # Quoting a value with a quote in it ('5" pipe' -> '"5"" pipe"') lengthens it: a paste
    # under the cap could be stored as a search its own page then refused.
    rows = "001Dn00000AbCdEIAZ" + '\tWidget 5" pipe co' * 5_000
    assert len(rows) <= MAX_PASTE_CHARACTERS
    form = CustomerFilterForm(QueryDict(mutable=True) | {"salesforce_account_ids": rows})
    assert not form.is_valid()
    assert "more than can be kept" in str(form.errors["salesforce_account_ids"])


def test_a_trail_longer_than_any_link_the_dashboard_makes_is_refused():
    params = QueryDict(mutable=True)
    params.setlist("prev", ["p"] * (MAX_CURSOR_TRAIL + 1))
    params["next_page"] = "x"
    assert not CustomerFilterForm(params).is_valid()
