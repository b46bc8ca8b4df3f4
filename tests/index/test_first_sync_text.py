"""A first sync on SQLite fills its text index (FTS5) while it stages and renames it over the
live one in the swap (customers/index/staging.py): it must hold exactly what a sync that
writes the text index row by row holds, and a first sync that fails leaves nothing behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.db import connection

from customers import metronome, wiring
from customers.index import search as customer_index
from customers.index import staging
from customers.index import sync as index_sync
from customers.models import IndexedCustomer, SyncRun
from customers.sandbox import Faults, SandboxAPI, SandboxTransport
from tests.factories import wire_customer

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 text index is SQLite's"),
]


def text_index() -> list[tuple[Any, ...]]:
    """Each text-index entry with the id of the row it is keyed to (None: no row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.id, f.name, f.other FROM customer_index_fts f "
            "LEFT JOIN customers_indexedcustomer i ON i.text_key = f.rowid ORDER BY i.id"
        )
        return cursor.fetchall()


def assert_text_index_follows_rows() -> None:
    """Every row has one entry under its `text_key`, holding its current text, and there is
    no other entry."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT text_key, {staging._TEXT_VALUES} FROM customers_indexedcustomer "  # noqa: S608
            "ORDER BY text_key"
        )
        expected = cursor.fetchall()
        cursor.execute("SELECT rowid, name, other FROM customer_index_fts ORDER BY rowid")
        assert cursor.fetchall() == expected
    assert None not in {key for key, *_ in expected}


def tables() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def customers() -> list[dict[str, Any]]:
    return [
        wire_customer(
            f"Société {n} Générale",
            ingest_aliases=[f"SG-{n}", f"billing{n}@sg.example"],
            custom_fields={"region": "EMEA", "notes": f"Zoë {n}"},
            archived_at="2025-01-01T00:00:00Z" if n % 7 == 0 else None,
        )
        for n in range(230)
    ]


def sync_from(install_client, listed: list[dict[str, Any]]) -> SyncRun:
    install_client(SandboxTransport(SandboxAPI(listed)))
    return index_sync.sync(wiring.get_client())


def test_a_first_sync_writes_the_text_index_a_row_by_row_sync_writes(install_client, monkeypatch):
    monkeypatch.setattr(index_sync, "PAGES_PER_WRITE", 1)  # several writes, each filling it
    listed = customers()
    run = sync_from(install_client, listed)
    assert (run.inserted, run.updated) == (230, 0)
    staged_as_it_went = text_index()

    # The same customers again, with every row changed: the swap writes their entries, row
    # by row, into the existing text index (the path every resync takes).
    IndexedCustomer.objects.update(fingerprint="")
    run = sync_from(install_client, listed)
    assert (run.inserted, run.updated, run.deleted) == (0, 230, 0)

    assert len(staged_as_it_went) == 230
    with connection.cursor() as cursor:  # filled merging less often; live with the default
        cursor.execute("SELECT v FROM customer_index_fts_config WHERE k = 'automerge'")
        assert cursor.fetchall() in ([], [(4,)])
    assert staged_as_it_went == text_index()
    assert_text_index_follows_rows()
    assert staging.TEXT_NEXT not in tables()
    assert customer_index.search("societe 17").total >= 1
    assert customer_index.search("billing43@sg.example").total == 1
    assert customer_index.search("zoe 3").total >= 1


def test_a_customer_listed_twice_in_a_first_sync_has_one_entry_the_last_listing(
    install_client, monkeypatch
):
    monkeypatch.setattr(index_sync, "PAGES_PER_WRITE", 1)
    first = wire_customer("Acme", ingest_aliases=["before-archiving"])
    last = {**first, "ingest_aliases": ["after-archiving"], "archived_at": "2025-01-01T00:00:00Z"}

    def handler(request: httpx.Request) -> httpx.Response:
        listed = last if request.url.params["only_archived"] == "true" else first
        return httpx.Response(200, json={"data": [listed], "next_page": None})

    install_client(httpx.MockTransport(handler))
    # Both listings one after the other, so which one is last does not depend on threads.
    monkeypatch.setattr(
        index_sync,
        "_both_listings",
        lambda client, read, to_row, **_: (
            page
            for archived in (False, True)
            for page in index_sync._listing(
                client, metronome.CustomerQuery(only_archived=archived), read, to_row, 1000
            )
        ),
    )
    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    [(_, name, other)] = text_index()
    assert name == "acme" and "after-archiving" in other and "before" not in other
    assert customer_index.search("before-archiving").total == 0


def test_a_first_sync_that_fails_leaves_no_text_index_behind(install_client, monkeypatch):
    monkeypatch.setattr(index_sync, "PAGES_PER_WRITE", 1)
    api = SandboxAPI(customers())
    api.faults = Faults(fail_every=3, fail_status=500)  # after two staged pages
    install_client(SandboxTransport(api), max_retries=0)

    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.FAILED
    assert text_index() == [] and IndexedCustomer.objects.count() == 0
    assert staging.TEXT_NEXT not in tables()
    # And the next one starts afresh.
    run = sync_from(install_client, customers()[:5])
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert len(text_index()) == 5


def test_a_next_text_index_left_by_a_process_that_died_is_dropped(install_client):
    staging.create(first_sync=True)  # as a first sync killed before its swap leaves it
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO customer_index_fts_next (name, other) VALUES ('y', 'z')")

    run = sync_from(install_client, customers()[:3])

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert len(text_index()) == 3 and "y" not in {name for _, name, _ in text_index()}
    assert staging.TEXT_NEXT not in tables()


def test_a_resync_keeps_each_rows_text_under_its_key(install_client, monkeypatch):
    """Renamed, archived, removed and new customers: the entries of the changed and removed
    rows go, the changed and new rows get theirs under their keys, the others keep theirs."""
    monkeypatch.setattr(index_sync, "PAGES_PER_WRITE", 1)
    listed = customers()
    sync_from(install_client, listed)
    keys_before = dict(IndexedCustomer.objects.values_list("id", "text_key"))

    renamed = {**listed[10], "name": "Quokka Renamed Ltd"}
    archived = {**listed[11], "archived_at": "2026-01-01T00:00:00Z"}
    new = [wire_customer(f"Newcomer {n} Wombat") for n in range(3)]
    # listed[12] and listed[13] are gone; the rest unchanged.
    relisted = [renamed, archived, *listed[14:], *listed[:10], *new]
    run = sync_from(install_client, relisted)

    assert (run.inserted, run.updated, run.deleted) == (3, 2, 2)
    assert_text_index_follows_rows()
    keys_after = dict(IndexedCustomer.objects.values_list("id", "text_key"))
    kept = set(keys_before) & set(keys_after)
    assert all(keys_after[i] == keys_before[i] for i in kept)  # a changed row keeps its key
    assert len(set(keys_after.values())) == len(keys_after)
    assert customer_index.search("quokka").customer_ids == (renamed["id"],)
    assert customer_index.search("wombat").total == 3
    gone = {listed[12]["id"], listed[13]["id"]}
    assert not gone & set(customer_index.search("societe").customer_ids)
    # And again with nothing changed: nothing written, every entry where it was.
    run = sync_from(install_client, relisted)
    assert (run.inserted, run.updated, run.deleted) == (0, 0, 0)
    assert_text_index_follows_rows()
