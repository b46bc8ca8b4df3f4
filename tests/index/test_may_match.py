"""customers/index/matching.may_match: where the text index shows that no customer can match
a search, a misspelt name goes straight to its corrections. It must never rule out a
search that finds someone, by name, ID, alias, custom value or in either state. CI runs
this module on SQLite (the FTS5 table) and PostgreSQL (the typo dictionary, then the
trigram index)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.index import matching
from customers.index import search as search_module
from customers.index.matching import may_match
from customers.index.search import Archived, IndexFilters, search
from tests.factories import customer_id, wire_customer

KESTREL_SALESFORCE_ID = "001xx000003DHur"
CUSTOMERS = [
    wire_customer(
        "Harbor Analytics",
        external_id="acct-7781",
        ingest_aliases=["harbor-ingest-1", "billing@harbor.example"],
        custom_fields={"notes": "moved from quayside"},
    ),
    wire_customer("Harborside Foods"),
    wire_customer(
        "Kestrel Systems",
        customer_config={"salesforce_account_id": KESTREL_SALESFORCE_ID},
    ),
    wire_customer("Nova Retail", archived_at="2024-06-01T00:00:00Z"),
]

# What each finds: a name word, part of one, several in any order, an external ID whole and
# its start, an alias whole and its start, a custom value's words, a customer only archived,
# words too short for the trigram index, the IDs the text index does not hold, and
# misspellings of one and two words and nonsense.
SEARCHES = [
    "harbor",
    "arbo",
    "analytics harbor",
    "acct-7781",
    "acct-77",
    "harbor-ingest-1",
    "harbor-ing",
    "billing@harbor.example",
    "from quayside",
    "nova",
    "ha",
    "ha an",
    customer_id("Kestrel Systems"),
    KESTREL_SALESFORCE_ID,
    KESTREL_SALESFORCE_ID.upper(),
    "harbr",
    "hrabor analytcs",
    "kestrel sytsems",
    "zzqxv",
    "kestrel zzqxv",
]


@pytest.fixture
def index(sync_index) -> None:
    sync_index(CUSTOMERS)


@pytest.mark.parametrize("q", SEARCHES)
@pytest.mark.parametrize("archived", list(Archived))
def test_ruling_searches_out_changes_no_result(index, monkeypatch, q, archived):
    filters = IndexFilters(archived=archived)
    ruled = search(q, filters=filters, per_page=50)
    monkeypatch.setattr(search_module, "may_match", lambda q, folded: True)
    assert ruled == search(q, filters=filters, per_page=50)


def test_the_searches_find_what_they_are_meant_to(index):
    """The comparison above means something only if the searches find someone."""
    archived = IndexFilters(archived=Archived.ARCHIVED)
    for q in SEARCHES[:10]:
        filters = archived if q == "nova" else None
        assert search(q, filters=filters).customer_ids, q
    assert search("harbr").corrected
    assert search("hrabor analytcs").corrected


def test_a_misspelt_name_goes_straight_to_its_corrections(index, monkeypatch):
    assert may_match("harbor", "harbor")
    assert not may_match("harbr", "harbr")
    assert not may_match("kestrel zzqxv", "kestrel zzqxv")

    def ranked(*args, **kwargs):
        raise AssertionError("the search that finds nothing was ranked")

    monkeypatch.setattr(search_module, "ranked_matches", ranked)
    monkeypatch.setattr(search_module, "match_tiers", ranked)
    result = search("harbr")
    assert result.corrected
    assert result.customer_ids[:2] == (
        customer_id("Harbor Analytics"),
        customer_id("Harborside Foods"),
    )


@pytest.mark.parametrize(
    ("q", "asks_the_trigram_index"),
    [
        ("harbor analy", False),  # each word starts a name's word: the dictionary says so
        ("quayside", True),  # a custom value
        ("arbo", True),  # inside a name's word
        ("harbr", True),  # nowhere
    ],
)
def test_on_postgresql_names_are_let_through_by_the_dictionary_alone(
    index, q, asks_the_trigram_index
):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite asks its FTS5 table")
    with CaptureQueriesContext(connection) as statements:
        may_match(q, q)
    asked = any(" LIKE " in statement["sql"] for statement in statements.captured_queries)
    assert asked == asks_the_trigram_index


def planner_settings() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_seqscan'), current_setting('statement_timeout')"
        )
        return cursor.fetchone()


def test_on_postgresql_the_trigram_look_up_leaves_the_planner_as_it_was(index):
    """It rules sequential scans out and bounds its time for its own statement only, also
    inside a transaction (SET LOCAL outlives the savepoint of a nested atomic block)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner settings")
    assert connection.in_atomic_block  # the test's transaction
    before = planner_settings()
    assert not may_match("zzqxv", "zzqxv")
    assert planner_settings() == before == ("on", before[1])


def test_on_postgresql_a_look_up_past_its_bound_lets_the_search_through(index, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's statement timeout")
    before = planner_settings()
    monkeypatch.setattr(matching, "MAY_MATCH_TIMEOUT_MS", 20)
    slow = f"pg_sleep(0.2)::text IS NULL OR {matching._SEARCH_TEXT_LIKE}"
    monkeypatch.setattr(matching, "_SEARCH_TEXT_LIKE", slow)
    assert may_match("zzqxv", "zzqxv")  # not ruled out: cancelled, so not known
    # The cancelled statement rolled back only its own savepoint.
    assert planner_settings() == before
    assert search("harbr").corrected


def test_on_postgresql_a_word_without_trigrams_is_not_looked_up(index):
    """pg_trgm takes trigrams from runs of letters and digits only: "c++" or "..." would
    read the whole trigram index."""
    if connection.vendor != "postgresql":
        pytest.skip("pg_trgm")
    with CaptureQueriesContext(connection) as statements:
        assert may_match("zzqxv c++", "zzqxv c++")
    assert not any(" LIKE " in statement["sql"] for statement in statements.captured_queries)
