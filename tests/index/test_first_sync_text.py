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
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name, other FROM customer_index_fts ORDER BY id")
        return cursor.fetchall()


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
        lambda client, read, **_: (
            page
            for archived in (False, True)
            for page in client.follow_listed(
                metronome.CustomerQuery(only_archived=archived), 100, read
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
        cursor.execute(
            "INSERT INTO customer_index_fts_next (id, name, other) VALUES ('x', 'y', 'z')"
        )

    run = sync_from(install_client, customers()[:3])

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert len(text_index()) == 3 and "y" not in {name for _, name, _ in text_index()}
    assert staging.TEXT_NEXT not in tables()
