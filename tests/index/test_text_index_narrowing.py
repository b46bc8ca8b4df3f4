"""The text index only narrows: a search finds exactly the customers its comparisons find
over every row. On SQLite the FTS5 index keeps no positions (migration 0017), so a word is
asked for as the set of its trigrams, found anywhere in the row's text; what it lets through
too many, the comparisons drop, and it must never hold one back. CI runs this module on
SQLite and PostgreSQL."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from customers.index import matching
from customers.index import search as search_module
from customers.index.search import Archived, IndexFilters, search
from tests.factories import customer_id, wire_customer

CUSTOMERS = [
    wire_customer(
        "Harbor Analytics",
        external_id="acct-7781",
        ingest_aliases=["north star", "billing@harbor.example"],
        custom_fields={"notes": "moved from quayside"},
    ),
    wire_customer("Star North Freight"),
    wire_customer('The "Quoted" Company'),
    wire_customer("Ananas Trading", ingest_aliases=["banana-republic"]),
    wire_customer("Zürich Straße Versicherung"),
    wire_customer("東京 データ 株式会社"),
    wire_customer("Tabs\tand  spaces ltd", archived_at="2024-06-01T00:00:00Z"),
    wire_customer("Aaaa Holdings"),
]

# Words that are in a row only across two of its texts or in the wrong order, an alias
# of two words that no name holds, the same trigrams in another order ("anana" in "banana"
# and "ananas"), repeated trigrams, quotes (FTS5's own syntax), non-Latin and folded
# letters, short words, a whole alias, and nothing at all.
SEARCHES = [
    "north star",
    "star north",
    "north freight",
    "harbor quayside",
    "analytics acct",
    "anana",
    "banana",
    "nanab",
    "aaaa",
    "aaaaa",
    '"quoted"',
    'the "',
    'quoted" company',
    "zurich",
    "zürich strasse",
    "strasse",
    "東京",
    "データ 株式",
    "tabs and",
    "ab an",
    "billing@harbor.example",
    "harbor.exa",
    "7781",
    "zzqxv",
]


@pytest.fixture
def index(sync_index) -> None:
    sync_index(CUSTOMERS)


@pytest.mark.parametrize("q", SEARCHES)
@pytest.mark.parametrize("archived", list(Archived))
def test_the_text_index_changes_no_result(index, monkeypatch, q, archived):
    filters = IndexFilters(archived=archived)
    narrowed = search(q, filters=filters, per_page=50)
    # Every row compared: no text index, and nothing ruled out by it.
    monkeypatch.setattr(matching, "text_candidates", lambda word_choices: None)
    monkeypatch.setattr(search_module, "may_match", lambda q, folded: True)
    assert narrowed == search(q, filters=filters, per_page=50)


def test_the_searches_find_what_they_are_meant_to(index):
    """The comparison above means something only if the searches find the customers whose
    texts hold them in ways a phrase would not."""
    everyone = IndexFilters(archived=Archived.ALL)
    # An alias equal to the search ranks first, then a name starting with one of its words.
    assert search("north star").customer_ids == (
        customer_id("Harbor Analytics"),
        customer_id("Star North Freight"),
    )
    assert search("acct-7781").customer_ids == (customer_id("Harbor Analytics"),)
    assert search("analytics acct").customer_ids == ()
    assert search("anana").customer_ids == (customer_id("Ananas Trading"),)
    assert search("banana").customer_ids == (customer_id("Ananas Trading"),)
    assert search("nanab").customer_ids == ()
    assert search('"quoted"').customer_ids == (customer_id('The "Quoted" Company'),)
    assert search("zürich strasse").customer_ids == (customer_id("Zürich Straße Versicherung"),)
    assert search("データ 株式").customer_ids == (customer_id("東京 データ 株式会社"),)
    assert search("tabs and", filters=everyone).customer_ids == (
        customer_id("Tabs\tand  spaces ltd"),
    )
    assert search("aaaaa").corrected  # the same trigram as "aaaa", but no match


def test_sqlite_keeps_no_positions_in_its_text_index(index):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's trigram index is on the customers' table")
    assert "detail = none" in _text_index_definition()


def test_the_migration_rebuilds_an_index_with_positions_without_them(index):
    """An index synced before migration 0017 (its text index kept positions) finds the same
    customers after it, and its next sync keeps the new definition."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's text index only")
    migration = importlib.import_module("customers.migrations.0017_text_index_without_positions")
    before = {q: search(q, per_page=50) for q in SEARCHES}
    editor = _Editor()
    migration.rebuild_text_index("full")(None, editor)
    assert "detail = full" in _text_index_definition()
    assert {q: search(q, per_page=50) for q in SEARCHES} == before
    migration.rebuild_text_index("none")(None, editor)
    assert "detail = none" in _text_index_definition()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customer_index_fts")
        assert cursor.fetchone()[0] == len(CUSTOMERS)
    assert {q: search(q, per_page=50) for q in SEARCHES} == before


class _Editor:
    """What the migration uses of a schema editor, which SQLite refuses inside a test's
    transaction."""

    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)


def _text_index_definition() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'customer_index_fts'")
        return str(cursor.fetchone()[0])
