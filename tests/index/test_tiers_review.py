"""Review of customers/index/tiers.py: properties over a crafted index (names sharing words,
ties, LIKE metacharacters, accents, IDs and aliases starting with or equal to words)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers import wiring
from customers.index import search as search_module
from customers.index import sync as index_sync
from customers.index import tiers
from customers.index.keys import fold, salesforce_key
from customers.index.matching import parse_uuid, ranked_matches
from customers.index.search import Archived, IndexFilters, search
from customers.models import IndexedCustomer
from customers.sandbox import SandboxAPI, SandboxTransport
from tests.factories import wire_customer

ARCHIVED = "2024-06-01T00:00:00Z"
WORDS = [
    "ab", "abc", "abcd", "a%b", "a_b", "a\\b", "café", "cafe", "zoë", "b", "ha", "harbor",
    "harbors", "Ärger", "straße", "ss", "x", "xy", "xyz", "100%", "50_50", "é", "ﬁsh",
]  # fmt: skip


def _customers() -> list[dict]:
    rng = random.Random(24)
    found = []
    for n in range(120):
        name = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        changes: dict = {}
        if rng.random() < 0.25:
            changes["ingest_aliases"] = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 2)))
            ]
        if rng.random() < 0.25:
            changes["external_id"] = rng.choice(WORDS) + rng.choice(["", "-1", " x"])
        if rng.random() < 0.2:
            changes["custom_fields"] = {"notes": " ".join(rng.choice(WORDS) for _ in range(2))}
        if rng.random() < 0.2:
            changes["archived_at"] = ARCHIVED
        found.append(wire_customer(name, key=f"c{n}", **changes))
    return found


CUSTOMERS = _customers()


@pytest.fixture
def index(db, install_client, monkeypatch) -> None:
    assert tiers.code_point_order()
    monkeypatch.setattr(tiers, "in_use", lambda: True)
    install_client(SandboxTransport(SandboxAPI(CUSTOMERS)))
    run = index_sync.sync(wiring.get_client())
    assert run.outcome == "succeeded", run.error


def every_page(q, per_page, filters=None):
    found: list[str] = []
    totals: list[int] = []  # every page's, exact ones only
    for page in range(1, 300):
        result = search(q, filters=filters, page=page, per_page=per_page)
        found += result.customer_ids
        if result.total_exact:
            totals.append(result.total)
        if not result.has_more:
            assert result.total_exact
            # Every page says the same total, not only the last (a first page once said less).
            assert set(totals) == {len(found)}, (q, per_page, totals)
            return found
    raise AssertionError("the pages never end")


def ranked_in_one_query(q, filters=None):
    filtered = search_module._filtered(filters or IndexFilters())
    ordered = ranked_matches(filtered, q, fold(q)).order_by("rank", "name_folded", "id")
    return [str(i) for i in ordered.values_list("id", flat=True)]


def oracle(q, archived=Archived.ACTIVE):
    """What the search should find, in Python, from the documented ranks."""
    folded = fold(q)
    searched = folded.split()
    parsed = parse_uuid(q)
    key = salesforce_key(q)
    ranked = []
    for c in IndexedCustomer.objects.all():
        if archived is Archived.ACTIVE and c.archived_at is not None:
            continue
        if archived is Archived.ARCHIVED and c.archived_at is None:
            continue
        name = c.name_folded
        every_word = all(w in name for w in searched)
        if (
            c.external_id_folded == folded
            or (parsed is not None and c.id == parsed)
            or (key and c.salesforce_key == key)
            or f"\n{folded}\n" in c.aliases_folded
        ):
            rank = 0
        elif name.startswith(folded):
            rank = 1
        elif len(searched) > 1 and every_word and any(name.startswith(w) for w in searched):
            rank = 2
        elif (
            c.external_id_folded.startswith(folded)
            or f"\n{folded}" in c.aliases_folded
            or folded in c.custom_values_folded
            or every_word
        ):
            rank = 3
        else:
            continue
        ranked.append((rank, name, c.id))
    return [str(i) for _, _, i in sorted(ranked)]


PIECES = [*WORDS, "%", "_", "\\", '"', "'", "  ", "a", "h", "har", "af", "Zoe", "STRASSE"]
queries = st.lists(st.sampled_from(PIECES), min_size=1, max_size=3).map(" ".join)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    q=queries,
    per_page=st.sampled_from([1, 2, 3, 7, 50]),
    archived=st.sampled_from(list(Archived)),
)
def test_property_tiers_match_one_query_and_the_oracle(index, q, per_page, archived):
    filters = IndexFilters(archived=archived)
    expected = ranked_in_one_query(q, filters)
    assert expected == oracle(q, archived)
    if not expected:
        return  # the typo fallback: another test
    assert every_page(q, per_page, filters) == expected


# --- Finding: the collation check trusts datcollate, which an ICU database ignores ----------


@pytest.fixture
def icu_database(db):
    """A database made as docs/deployment.md says (LC_COLLATE 'C.UTF-8') on a cluster whose
    template is ICU (initdb --locale-provider=icu, PostgreSQL 15+): its datcollate reads
    C.UTF-8, but text compares by ICU's rules."""
    from django.db import connection

    if connection.vendor != "postgresql" or connection.pg_version < 150000:
        pytest.skip("PostgreSQL 15+ only: ICU as a database's default collation")
    import psycopg

    settings_dict = connection.settings_dict
    name = f"{settings_dict['NAME']}_icu"
    params = {
        "host": settings_dict["HOST"] or None,
        "port": settings_dict["PORT"] or None,
        "user": settings_dict["USER"],
        "password": settings_dict["PASSWORD"],
    }
    with psycopg.connect(dbname=settings_dict["NAME"], autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(
            f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'und' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
        )
    try:
        with psycopg.connect(dbname=name, autocommit=True, **params) as icu:
            yield name, icu
    finally:
        with psycopg.connect(dbname=settings_dict["NAME"], autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_an_icu_database_whose_datcollate_says_c_utf8_is_not_code_point_order(
    icu_database, monkeypatch
):
    from django.db import connection
    from django.db.backends.postgresql.base import DatabaseWrapper

    name, icu = icu_database
    # What goes wrong there: a prefix's range holds names that do not start with it (a
    # zero-width space or soft hyphen is ignored), and the word tiers' prefixes, sorted in
    # Python, are not in the database's order.
    in_range = "SELECT %s >= 'ab' AND %s < 'ac'"
    assert icu.execute(in_range, ["a\u200bbz", "a\u200bbz"]).fetchone() == (True,)
    assert icu.execute("SELECT 'ab zz ~x' < '~x zz ab'").fetchone() == (False,)
    # The check must see it.
    wrapper = DatabaseWrapper({**connection.settings_dict, "NAME": name}, alias="icu")
    try:
        monkeypatch.setattr(tiers, "connection", wrapper)
        assert not tiers.code_point_order()
    finally:
        wrapper.close()
