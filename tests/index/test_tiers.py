"""customers/index/tiers.py: a ranked search read in tiers (exact IDs, names starting with the
search, the rest) finds exactly what ranking every match in one query finds, in the same
order, page after page; its totals stop at the cap. CI runs this module on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from contextlib import closing

import pytest
from django.db import connection, connections

from customers import wiring
from customers.index import search as search_module
from customers.index import sync as index_sync
from customers.index import tiers
from customers.index.keys import fold, words
from customers.index.matching import ranked_matches, typo_matches, typo_rank
from customers.index.search import Archived, IndexFilters, Sort, search
from customers.index.typos import corrections_of
from customers.models import IndexedCustomer
from customers.sandbox import SandboxAPI, SandboxTransport
from tests.factories import customer_id, wire_customer

ARCHIVED = "2024-06-01T00:00:00Z"
# Names sharing words and prefixes, IDs starting with or equal to a searched word, an
# archived customer: every tier has members, some of them in more than one tier's reach.
CUSTOMERS = [
    wire_customer("Harbor Analytics"),
    wire_customer("Harbor Analytics", key="harbor analytics 2"),
    wire_customer("Harbor Labs Inc."),
    wire_customer("Harborside Foods"),
    wire_customer("Blue Harbor Cloud"),
    wire_customer("Blue Harbor Data"),
    wire_customer("Red Harbor", archived_at=ARCHIVED),
    wire_customer("Analytics Harbor"),
    # An ID that is the search word: first, though its name does not hold it.
    wire_customer("Kestrel Systems", external_id="harbor"),
    # An alias equal to the search word, and one starting with it.
    wire_customer("Cobalt Energy", ingest_aliases=["harbor", "cobalt-1"]),
    wire_customer("Atlas Media", ingest_aliases=["harbor-atlas-7"]),
    # A custom value holding it.
    wire_customer("Onyx Freight", custom_fields={"notes": "moved from harbor labs"}),
    wire_customer("Zenith Harbour Ltd"),
    wire_customer("Silver Birch Labs"),
    wire_customer("Blue Birch Silverware"),
    wire_customer("Nova Retail"),
]


@pytest.fixture
def index(db, install_client, monkeypatch) -> None:
    # Tiers on SQLite too (in production only PostgreSQL uses them): the same SQL.
    assert tiers.code_point_order()  # SQLite, and CI's PostgreSQL (C.UTF-8)
    monkeypatch.setattr(tiers, "in_use", lambda: True)
    install_client(SandboxTransport(SandboxAPI(CUSTOMERS)))
    run = index_sync.sync(wiring.get_client())
    assert run.outcome == "succeeded", run.error


def every_page(q: str, per_page: int, filters: IndexFilters | None = None) -> list[str]:
    """Every page of the search's results, one after the other, up to its last."""
    found: list[str] = []
    totals: list[int] = []  # every page's, exact ones only
    for page in range(1, 100):
        result = search(q, filters=filters, page=page, per_page=per_page)
        found += result.customer_ids
        if result.total_exact:
            totals.append(result.total)
        if not result.has_more:
            assert result.total_exact
            assert set(totals) == {len(found)}, (q, per_page, totals)  # every page's total
            return found
    raise AssertionError("the pages never end")


def ranked_in_one_query(q: str, archived: Archived = Archived.ACTIVE) -> list[str]:
    filtered = search_module._filtered(IndexFilters(archived=archived))
    ordered = ranked_matches(filtered, q, fold(q)).order_by("rank", "name_folded", "id")
    return [str(i) for i in ordered.values_list("id", flat=True)]


@pytest.mark.parametrize(
    "q",
    [
        "harbor",
        "HARB",
        "harbor analytics",
        "analytics harbor",
        "birch silver",
        "labs birch",
        "blue",
        "lab",
        "ha",
        "nova",
    ],
)
@pytest.mark.parametrize("per_page", [1, 2, 3, 50])
def test_the_tiers_find_what_ranking_every_match_finds_in_the_same_order(index, q, per_page):
    assert every_page(q, per_page) == ranked_in_one_query(q)


def test_the_tiers_follow_the_archived_toggle(index):
    for archived in Archived:
        filters = IndexFilters(archived=archived)
        assert every_page("harbor", 2, filters=filters) == ranked_in_one_query("harbor", archived)


def test_exact_ids_then_names_starting_with_the_search_then_the_rest(index):
    found = every_page("harbor", 50)
    by_id = dict(IndexedCustomer.objects.values_list("id", "name"))
    assert [by_id[uuid] for uuid in map(search_module.parse_uuid, found)] == [
        # Exact IDs: the external ID and the alias "harbor".
        "Cobalt Energy",
        "Kestrel Systems",
        # Names starting with it, by name.
        "Harbor Analytics",
        "Harbor Analytics",
        "Harbor Labs Inc.",
        "Harborside Foods",
        # The rest by name: an alias starting with it ranks with names containing it.
        "Analytics Harbor",
        "Atlas Media",
        "Blue Harbor Cloud",
        "Blue Harbor Data",
        "Onyx Freight",
    ]


def test_several_words_rank_names_starting_with_one_of_them_before_the_rest(index):
    assert every_page("birch silver", 50) == [
        customer_id("Silver Birch Labs"),
        customer_id("Blue Birch Silverware"),
    ]


def test_a_page_past_the_end_and_one_inside_the_last_tier(index):
    every = every_page("harbor", 50)
    past = search("harbor", page=20, per_page=3)
    assert (past.customer_ids, past.total, past.total_exact, past.has_more) == ((), 11, True, False)
    last = search("harbor", page=4, per_page=3)
    assert list(last.customer_ids) == every[9:]
    assert (last.total, last.total_exact, last.has_more) == (11, True, False)


def test_text_totals_stop_at_the_cap_and_the_pages_go_on(index, monkeypatch):
    monkeypatch.setattr(search_module, "TOTAL_CAP", 4)
    first = search("harbor", per_page=3)
    assert (first.total, first.total_exact, first.total_shown) == (4, False, "more than 4")
    assert first.has_more and first.page_count == 2
    # Every page still comes, and the last one knows the total without counting.
    assert every_page("harbor", 3) == ranked_in_one_query("harbor")
    last = search("harbor", page=4, per_page=3)
    assert (last.total, last.total_exact) == (11, True)
    # Under the cap, the total is exact.
    blue = search("blue", per_page=1)  # Blue Harbor Cloud and Data, Blue Birch Silverware
    assert (blue.total, blue.total_exact, blue.has_more) == (3, True, True)


def test_a_page_of_tiers_is_one_statement_and_its_count_another(index, django_assert_num_queries):
    # Two words are four tiers; a statement a tier and one a count made a search of them
    # six round trips to the database, each built by the ORM (bench/README.md).
    # Whether the text index may match (matching.may_match), the exact IDs, the page's
    # ranges, the count.
    with django_assert_num_queries(4):
        found = search("harbor analytics", per_page=1)
    every = ranked_in_one_query("harbor analytics")
    assert (found.total, found.total_exact, found.has_more) == (len(every), True, True)
    assert found.customer_ids == tuple(every[:1])


@pytest.mark.parametrize(("q", "per_page"), [("labs", 1), ("harbor", 6)])
def test_a_first_page_the_text_tier_fills_counts_it_for_the_total(index, q, per_page):
    # The text tier is read only for the room the ranges leave; when it fills that room it
    # may hold more, and the total must count it (a review found it taken as its size).
    every = ranked_in_one_query(q)
    found = search(q, per_page=per_page)
    assert found.customer_ids == tuple(every[:per_page])
    assert (found.total, found.total_exact, found.has_more) == (len(every), True, True)


@pytest.mark.parametrize("typed", ["harbr", "hrabor", "anlaytics"])
@pytest.mark.parametrize("per_page", [1, 2, 50])
def test_a_misspelt_word_finds_what_ranking_every_match_finds(index, typed, per_page):
    corrections = corrections_of(words(fold(typed)))
    filtered = search_module._filtered(IndexFilters())
    ranked = typo_matches(filtered, corrections).annotate(rank=typo_rank(corrections))
    expected = [
        str(i) for i in ranked.order_by("rank", "name_folded", "id").values_list("id", flat=True)
    ]
    assert expected
    assert search(typed).corrected
    assert every_page(typed, per_page) == expected


def test_a_misspelt_word_ranks_names_starting_with_a_correction_first(index):
    result = search("harbr", per_page=50)
    names = dict(IndexedCustomer.objects.values_list("id", "name"))
    found = [names[search_module.parse_uuid(i)] for i in result.customer_ids]
    assert found[:4] == [
        "Harbor Analytics",
        "Harbor Analytics",
        "Harbor Labs Inc.",
        "Harborside Foods",
    ]
    assert set(found[4:]) == {"Analytics Harbor", "Blue Harbor Cloud", "Blue Harbor Data"}


def test_an_alias_equal_to_the_search_ranks_first(index):
    assert search("cobalt-1").customer_ids == (customer_id("Cobalt Energy"),)


@pytest.mark.parametrize(
    ("prefixes", "kept"),
    [
        (["harbor", "harb", "harborside", "blue"], ["blue", "harb"]),
        (["acme", "acne"], ["acme", "acne"]),
    ],
)
def test_prefixes_inside_another_are_dropped(prefixes, kept):
    assert tiers.distinct_prefixes(prefixes) == kept


@pytest.mark.parametrize(
    ("prefix", "after"),
    [("abc", "abd"), ("ab\U0010ffff", "ac"), ("a\ud7ff", "a\ue000"), ("\U0010ffff", None)],
)
def test_the_range_of_a_prefix_ends_at_its_successor(prefix, after):
    assert tiers._successor(prefix) == after


def test_a_search_of_many_words_is_ranked_in_one_query_not_a_tier_a_word(index, monkeypatch):
    # Nine distinct words would be nine tiers, each a query (a 200-character search of
    # two-letter words, sixty); one ranked query finds the same.
    many = "harbor analytics blue red labs inc foods cloud data"
    assert len(tiers.distinct_prefixes(words(fold(many)))) > tiers.MAX_WORD_TIERS
    expected = every_page(many, 3)

    def no_tiers(*args, **kwargs):
        raise AssertionError("read in tiers")

    monkeypatch.setattr(search_module, "match_tiers", no_tiers)
    assert every_page(many, 3) == expected
    with pytest.raises(AssertionError, match="read in tiers"):
        every_page("harbor analytics", 3)  # two words: still tiers


# --- The export's stream of every match ----------------------------------------------------


@pytest.mark.parametrize(
    ("q", "sort", "filters"),
    [
        ("harbor", None, None),
        ("harbor analytics", None, None),
        ("birch silver", None, None),
        ("harbor", Sort.NAME_DESC, None),
        ("harbor", Sort.CREATED, None),
        ("harbr", None, None),  # corrected
        ("anlaytics harbr", None, None),  # two words corrected
        ("harbr", Sort.NAME, None),
        ("", None, None),
        ("", Sort.UPDATED_DESC, IndexFilters(archived=Archived.ALL)),
        ("harbor", None, IndexFilters(archived=Archived.ALL)),
    ],
)
@pytest.mark.parametrize("in_tiers", [True, False])
def test_the_exports_stream_of_matches_is_every_page_in_order(
    index, monkeypatch, q, sort, filters, in_tiers
):
    monkeypatch.setattr(tiers, "in_use", lambda: in_tiers)
    pages: list[str] = []
    for page in range(1, 100):
        result = search(q, filters=filters, sort=sort, page=page, per_page=2)
        pages += result.customer_ids
        if not result.has_more:
            break

    streamed = list(search_module.iter_ids(q, filters=filters, sort=sort, chunk_size=3))

    assert streamed == pages
    assert streamed  # every case finds something


# Serialized rollback, as every transactional test here: a plain one empties the tables and
# its flush re-creates the content types that the next serialized test then restores again.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_exports_stream_reads_one_state_of_the_index_while_a_sync_changes_it(
    install_client, monkeypatch
):
    monkeypatch.setattr(tiers, "in_use", lambda: True)
    install_client(SandboxTransport(SandboxAPI(CUSTOMERS)))
    assert index_sync.sync(wiring.get_client()).outcome == "succeeded"
    before = every_page("harbor", 50)

    with closing(search_module.iter_ids("harbor", chunk_size=2)) as stream:
        first = [next(stream), next(stream)]
        # Nothing is left open in the database for the export's minutes of API calls: a
        # cursor held across them breaks behind PgBouncer in transaction mode (and on the
        # tests' in-memory SQLite, an open read would lock the sync below out).
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_cursors")
                assert cursor.fetchone() == (0,)
        # A sync commits from another connection: the first match goes, a new one comes
        # first.
        changed = [c for c in CUSTOMERS if c["name"] != "Blue Harbor Cloud"]
        changed.append(wire_customer("Aaa Harbor First"))
        install_client(SandboxTransport(SandboxAPI(changed)))
        outcomes: list[str] = []

        def sync_elsewhere() -> None:
            try:
                outcomes.append(index_sync.sync(wiring.get_client()).outcome)
            finally:
                connections.close_all()

        thread = threading.Thread(target=sync_elsewhere)
        thread.start()
        thread.join()
        assert outcomes == ["succeeded"]
        assert every_page("harbor", 50) != before  # the pages see the sync

        assert first + list(stream) == before  # the stream does not
