"""customers/index/search.py and typos.py: search, ranking, filters, sorting and totals over
the synced index, the same on SQLite and PostgreSQL (CI runs this module on both)."""

from __future__ import annotations

from datetime import date

import pytest

from customers import wiring
from customers.index import search as search_module
from customers.index import sync as index_sync
from customers.index import tiers
from customers.index.keys import fold, salesforce_id_18
from customers.index.search import (
    Archived,
    Billable,
    IndexFilters,
    Sort,
    search,
)
from customers.models import IndexedCustomer, IndexedNameTrigram, IndexedNameWord
from customers.sandbox import SandboxAPI, SandboxTransport
from tests.factories import CUSTOMERS, customer_id, wire_customer


@pytest.fixture
def index(db, install_client) -> None:
    install_client(SandboxTransport(SandboxAPI(CUSTOMERS)))
    run = index_sync.sync(wiring.get_client())
    assert run.outcome == "succeeded", run.error


def names(q: str = "", **options) -> list[str]:
    result = search(q, **options)
    by_id = {str(c.id): c.name for c in IndexedCustomer.objects.filter(id__in=result.customer_ids)}
    return [by_id[customer_id] for customer_id in result.customer_ids]


def test_fold_removes_accents_case_and_extra_spaces():
    assert fold("  Société   GÉNÉRALE ") == "societe generale"
    assert fold("Straße") == "strasse"
    # Letters with no accent to remove, as typed without them.
    assert fold("Ørsted Æble Łódź Œuvre") == "orsted aeble lodz oeuvre"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("001xx000003DHur", "001xx000003DHurAAG"),
        ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
        ("0015500001WO1ZiABL", "0015500001WO1ZiABL"),  # not a valid suffix: kept as is
        ("not an id", ""),
    ],
)
def test_salesforce_ids_are_normalised_to_18_characters(given, expected):
    assert salesforce_id_18(given) == expected


def test_name_search_ignores_case_and_accents_both_ways(index):
    assert names("societe") == ["Société Générale"]
    assert names("GÉNÉRALE") == ["Société Générale"]
    assert names("Généräle Société") == ["Société Générale"]


def test_name_words_match_in_any_order_and_partly(index):
    assert set(names("juniper hr")) == {"Juniper HR Ltd.", "HR Juniper Partners"}
    assert set(names("hr junip")) == {"Juniper HR Ltd.", "HR Juniper Partners"}
    assert names("partn jun") == ["HR Juniper Partners"]


def test_non_latin_names_are_found_by_part(index):
    assert names("佐藤") == ["株式会社 佐藤"]


def test_prefix_ranks_before_contains(index):
    # Both contain "acme"; only one starts with it (the archived one is filtered out).
    assert names("acme") == ["Acme Corp", "Northwind Acme"]
    assert names("juniper") == ["Juniper HR Ltd.", "HR Juniper Partners"]


def test_exact_id_ranks_first(index):
    # "acme-0001" is Acme Corp's external ID; a name containing it would rank after.
    assert names("ACME-0001") == ["Acme Corp"]
    assert names(customer_id("Northwind Acme").upper()) == ["Northwind Acme"]


@pytest.mark.parametrize("pasted", ["001xx000003DHur", "001xx000003DHurAAG", "001XX000003DHURAAG"])
def test_salesforce_id_in_either_form_and_any_case_finds_the_customer(index, pasted):
    assert names(pasted) == ["Juniper HR Ltd."]


def test_fifteen_character_salesforce_id_is_case_sensitive(index):
    # Another case is another record: its 18-character form differs.
    assert names("001XX000003DHUR") == []


def test_ingest_alias_and_external_id_match_by_prefix(index):
    assert names("billing@junip") == ["Juniper HR Ltd."]
    assert names("acme-00") == ["Acme Corp"]


def test_custom_field_values_are_searched(index):
    assert names("zoe muller") == ["Société Générale"]


def test_close_misspellings_are_found_when_nothing_matches_exactly(index):
    result = search("junpier")
    assert result.corrected
    assert result.corrections == {"junpier": ("juniper",)}
    assert set(names("junpier")) == {"Juniper HR Ltd.", "HR Juniper Partners"}
    assert names("socete generale") == ["Société Générale"]


def test_misspellings_are_not_offered_when_the_search_matches(index):
    # "acme" matches; "acne" would be one edit away but is not searched for.
    assert not search("acme").corrected


def test_nothing_close_finds_nothing(index):
    result = search("xylophone")
    assert (result.total, result.customer_ids, result.corrected) == (0, (), False)


def test_search_text_with_like_wildcards_is_taken_literally(index):
    assert names("%") == []
    # "_" is no wildcard: "_cme" only finds Acme as a misspelling of "acme".
    assert search("_cme").corrected


def test_archived_toggle_active_archived_and_all(index):
    assert "Acme Archived" not in names("acme")
    assert names("acme", filters=IndexFilters(archived=Archived.ARCHIVED)) == ["Acme Archived"]
    assert names("acme", filters=IndexFilters(archived=Archived.ALL)) == [
        "Acme Archived",
        "Acme Corp",
        "Northwind Acme",
    ]


@pytest.mark.parametrize(
    ("billable", "expected"),
    [
        ({Billable.BILLABLE}, {"Juniper HR Ltd.", "Northwind Acme"}),
        ({Billable.UNBILLABLE}, {"HR Juniper Partners"}),
        ({Billable.NOT_SET}, {"Société Générale", "Acme Corp", "株式会社 佐藤"}),
        (
            {Billable.UNBILLABLE, Billable.NOT_SET},
            {"HR Juniper Partners", "Société Générale", "Acme Corp", "株式会社 佐藤"},
        ),
    ],
)
def test_billable_status_filter_matches_any_of_the_chosen_statuses(index, billable, expected):
    assert set(names(filters=IndexFilters(billable=frozenset(billable)))) == expected


def test_created_date_range_includes_both_whole_days(index):
    filters = IndexFilters(created_from=date(2022, 1, 1), created_to=date(2023, 5, 5))
    assert set(names(filters=filters)) == {"HR Juniper Partners", "Société Générale"}


def test_updated_date_range(index):
    filters = IndexFilters(updated_from=date(2025, 1, 1))
    assert set(names(filters=filters)) == {"Juniper HR Ltd.", "Acme Corp"}
    assert names(filters=IndexFilters(updated_to=date(2020, 12, 31))) == ["Northwind Acme"]


def test_customers_without_salesforce_id(index):
    assert "Juniper HR Ltd." not in names(filters=IndexFilters(no_salesforce_id=True))
    assert len(names(filters=IndexFilters(no_salesforce_id=True))) == 4


def test_custom_field_key_equals_value(index):
    filters = IndexFilters(custom_field=("region", "emea"))
    assert set(names(filters=filters)) == {"Juniper HR Ltd.", "Acme Corp"}
    assert names(filters=IndexFilters(custom_field=("region", "EMEA"))) == []


@pytest.mark.parametrize("key", ["Fälligkeit (Tage)", 'plan "tier".name', "région", "a\\b"])
def test_custom_field_keys_with_accents_quotes_and_dots_filter_too(db, install_client, key):
    customers = [
        wire_customer("Keyed", custom_fields={key: "30", "other": "30"}),
        wire_customer("Other value", custom_fields={key: "31"}),
        wire_customer("Other key", custom_fields={"other": "30"}),
    ]
    install_client(SandboxTransport(SandboxAPI(customers)))
    assert index_sync.sync(wiring.get_client()).outcome == "succeeded"

    assert names(filters=IndexFilters(custom_field=(key, "30"))) == ["Keyed"]
    assert names(filters=IndexFilters(custom_field=(key, "3"))) == []


def test_id_lists_and_ingest_alias_filters(index):
    filters = IndexFilters(
        customer_ids=(customer_id("Acme Corp"), customer_id("Northwind Acme"), "not-a-uuid")
    )
    assert set(names(filters=filters)) == {"Acme Corp", "Northwind Acme"}
    salesforce = IndexFilters(salesforce_account_ids=("a0d30000001n7pieai", "001xx000003DHur"))
    assert set(names(filters=salesforce)) == {"Juniper HR Ltd.", "HR Juniper Partners"}
    assert names(filters=IndexFilters(ingest_alias="juniper-hr-1")) == ["Juniper HR Ltd."]


def test_filters_combine_with_the_search(index):
    filters = IndexFilters(billable=frozenset({Billable.BILLABLE}))
    assert names("acme", filters=filters) == ["Northwind Acme"]


@pytest.mark.parametrize(
    ("sort", "first", "last"),
    [
        (Sort.NAME, "Acme Corp", "株式会社 佐藤"),
        (Sort.NAME_DESC, "株式会社 佐藤", "Acme Corp"),
        (Sort.CREATED, "Acme Corp", "株式会社 佐藤"),
        (Sort.CREATED_DESC, "株式会社 佐藤", "Acme Corp"),
        (Sort.UPDATED, "Northwind Acme", "Acme Corp"),
        (Sort.UPDATED_DESC, "Acme Corp", "Northwind Acme"),
    ],
)
def test_sort_orders(index, sort, first, last):
    ordered = names(sort=sort)
    assert (ordered[0], ordered[-1]) == (first, last)


def test_explicit_sort_replaces_rank(index):
    assert names("acme", sort=Sort.NAME_DESC) == ["Northwind Acme", "Acme Corp"]


def test_total_and_pages(index):
    first = search(per_page=2)
    assert (first.total, first.page_count, first.first_row, first.last_row) == (6, 3, 1, 2)
    third = search(page=3, per_page=2)
    assert (third.first_row, third.last_row) == (5, 6)
    every_page = [search(page=page, per_page=2).customer_ids for page in (1, 2, 3)]
    assert len({cid for page in every_page for cid in page}) == 6
    beyond = search(page=4, per_page=2)
    assert (beyond.total, beyond.customer_ids, beyond.first_row) == (6, (), 0)


@pytest.mark.parametrize(("page", "per_page"), [(0, 50), (1, 0), (1, 1001)])
def test_page_numbers_out_of_range_are_refused(db, page, per_page):
    with pytest.raises(ValueError):
        search(page=page, per_page=per_page)


def test_empty_index_finds_nothing(db):
    assert search("acme").total == 0
    assert search("acme").customer_ids == ()


def test_salesforce_keys_keep_their_case_as_the_paste_boxes_read_them():
    from customers.index.keys import salesforce_key

    # Two 15-character IDs that differ only in case are two accounts.
    assert salesforce_key("001dn00000abcde") != salesforce_key("001DN00000ABCDE")
    # An 18-character ID whose case a spreadsheet changed is the same account.
    assert salesforce_key("001xx000003dhuraag") == salesforce_key("001xx000003DHurAAG")
    assert salesforce_key("001xx000003DHur") == "001xx000003DHurAAG"
    # One whose suffix cannot fit is kept as given: two such differing in case stay two.
    assert salesforce_key("0015500001WO1ZiABL") != salesforce_key("0015500001wo1ziABL")
    assert salesforce_key("not an id") == ""


def test_the_migration_gives_keys_stored_lower_cased_their_case_again(index):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("customers.migrations.0009_salesforce_key_in_its_case")
    IndexedCustomer.objects.filter(name="Juniper HR Ltd.").update(
        salesforce_key="001xx000003dhuraag"
    )

    migration.recompute_keys(apps, None)

    assert IndexedCustomer.objects.get(name="Juniper HR Ltd.").salesforce_key == (
        "001xx000003DHurAAG"
    )
    assert names("001xx000003DHurAAG") == ["Juniper HR Ltd."]


def test_totals_past_the_cap_say_more_than_and_keep_paging(index, monkeypatch):
    monkeypatch.setattr(search_module, "TOTAL_CAP", 3)
    first = search(per_page=2)  # 6 active customers, counted only up to 3 + 1
    assert (first.total, first.total_exact, first.total_shown) == (3, False, "more than 3")
    assert first.has_more and first.page_count == 2
    second = search(page=2, per_page=2)
    assert second.has_more and second.page_count == 3  # one past this page while it is full
    # The last page knows how many there are without counting.
    last = search(page=3, per_page=2)
    assert (last.total, last.total_exact, last.has_more, last.last_row) == (6, True, False, 6)
    every_page = [search(page=page, per_page=2).customer_ids for page in (1, 2, 3)]
    assert len({cid for page in every_page for cid in page}) == 6
    # A filter's total is capped the same way; an exact one is shown as it is.
    billable = search(filters=IndexFilters(billable=frozenset({Billable.BILLABLE})), per_page=1)
    assert (billable.total, billable.total_exact) == (2, True)


def test_a_text_search_counts_its_matches_only_up_to_the_cap(index, monkeypatch):
    # Ranked in tiers (PostgreSQL), a search reads only as far as its page: past the cap
    # its total is "more than", as a filter's (tests/index/test_tiers.py).
    monkeypatch.setattr(tiers, "in_use", lambda: True)
    monkeypatch.setattr(search_module, "TOTAL_CAP", 1)
    result = search("acme", per_page=1)
    assert (result.total_shown, result.total_exact, result.has_more, result.page_count) == (
        "more than 1",
        False,
        True,
        2,
    )
    last = search("acme", page=2, per_page=1)
    assert (last.total, last.total_exact, last.has_more) == (2, True, False)


def test_a_page_past_the_end_says_how_far_the_matches_go(index):
    result = search("acme", page=5, per_page=1)
    assert (result.total, result.customer_ids, result.has_more) == (2, (), False)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("ujniper", "juniper"),  # the first two letters swapped
        ("junipr", "juniper"),  # a letter left out
        ("juniperr", "juniper"),  # one too many
        ("nortwhind", "northwind"),
        ("acem", "acme"),  # a short word: one slip
    ],
)
def test_typos_anywhere_in_a_word_are_corrected(index, typed, meant):
    result = search(typed)
    assert result.corrected
    assert meant in result.corrections[typed]
    assert result.customer_ids


def test_a_word_inside_a_name_word_stands_as_typed_beside_a_corrected_one(index):
    # "unipe" is inside "juniper", "hr" starts a word: neither is corrected, "partnrs" is.
    result = search("unipe hr partnrs")
    assert result.corrections == {
        "unipe": ("unipe",),
        "hr": ("hr",),
        "partnrs": ("partners",),
    }
    assert names("unipe hr partnrs") == ["HR Juniper Partners"]
    # A short word that starts no name word leaves nothing to correct the others with.
    assert search("zq partnrs").corrections == {}


def test_two_slips_in_a_short_word_are_too_many(index):
    assert not search("aecm").corrected  # "acme" with two swaps: four letters allow one


def test_the_typo_dictionary_follows_the_names(db, install_client):
    install_client(SandboxTransport(SandboxAPI([wire_customer("Quillfeather Labs")])))
    assert index_sync.sync(wiring.get_client()).outcome == "succeeded"
    assert search("quilfeather").corrections == {"quilfeather": ("quillfeather",)}
    install_client(SandboxTransport(SandboxAPI([wire_customer("Copperleaf Labs")])))
    assert index_sync.sync(wiring.get_client()).outcome == "succeeded"
    # The word went with its only customer, its trigrams too; the new one is there.
    assert not search("quilfeather").customer_ids
    assert not IndexedNameTrigram.objects.filter(word="quillfeather").exists()
    assert search("coperleaf").corrections == {"coperleaf": ("copperleaf",)}
    assert set(IndexedNameWord.objects.values_list("word", flat=True)) == {"copperleaf", "labs"}


def test_corrected_names_starting_with_the_correction_come_first(index):
    assert names("acem") == ["Acme Corp", "Northwind Acme"]
    assert names("acem", sort=Sort.NAME_DESC) == ["Northwind Acme", "Acme Corp"]
