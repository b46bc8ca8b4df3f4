"""`manage.py sync_customers` and customers/index/sync.py: the index follows Metronome, a
failed sync leaves the previous index whole, and one sync runs at a time."""

from __future__ import annotations

import json
import math
import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from customers import metronome, wiring
from customers.index import keys, rows, staging
from customers.index import search as customer_index
from customers.index import sync as index_sync
from customers.index.rows import fingerprint
from customers.models import IndexedCustomer, IndexedNameWord, SyncRun
from customers.sandbox import Faults, SandboxAPI, SandboxTransport
from tests.factories import wire_customer


def names_in_index() -> set[str]:
    return set(IndexedCustomer.objects.values_list("name", flat=True))


def as_sent(customer: dict[str, Any]) -> bytes:
    """A customer's JSON as the sandbox writes it into a page."""
    return json.dumps(customer, separators=(",", ":"), ensure_ascii=False).encode()


def sync_from(install_client, customers: list[dict[str, Any]], **client_options) -> SyncRun:
    install_client(SandboxTransport(SandboxAPI(customers)), **client_options)
    return index_sync.sync(wiring.get_client())


@pytest.mark.django_db
def test_first_sync_indexes_active_and_archived_customers(install_client):
    run = sync_from(
        install_client,
        [
            wire_customer("Acme"),
            wire_customer("Globex", archived_at="2025-01-01T00:00:00Z"),
        ],
    )

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert (run.seen, run.inserted, run.updated, run.deleted) == (2, 2, 0, 0)
    assert names_in_index() == {"Acme", "Globex"}
    globex = IndexedCustomer.objects.get(name="Globex")
    assert globex.archived_at is not None


@pytest.mark.django_db
def test_sync_stores_every_field_and_its_search_forms(install_client):
    sync_from(
        install_client,
        [
            wire_customer(
                "Société Générale",
                ingest_aliases=["SG-Paris", "billing@sg.example"],
                customer_config={"salesforce_account_id": "001xx000003DHur"},
                custom_fields={"region": "EMEA", "Notes": "Zoë's account"},
                current_billable_status={
                    "value": "unbillable",
                    "effective_at": "2025-02-03T04:05:06Z",
                },
            )
        ],
    )

    customer = IndexedCustomer.objects.get()
    assert customer.name == "Société Générale"
    assert customer.name_folded == "societe generale"
    assert customer.ingest_aliases == ["SG-Paris", "billing@sg.example"]
    assert customer.aliases_folded == "\nsg-paris\nbilling@sg.example\n"
    assert customer.salesforce_account_id == "001xx000003DHur"
    assert customer.salesforce_account_id_18 == "001xx000003DHurAAG"
    assert customer.salesforce_key == "001xx000003DHurAAG"
    assert customer.billable_status == "unbillable"
    assert customer.billable_status_effective_at.isoformat() == "2025-02-03T04:05:06+00:00"
    assert customer.custom_fields == {"region": "EMEA", "Notes": "Zoë's account"}
    assert "zoe's account" in customer.custom_values_folded
    assert set(IndexedNameWord.objects.values_list("word", flat=True)) == {"societe", "generale"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "at",
    [
        "2024-03-01T12:00:00Z",  # no fraction of a second
        "2024-03-01T12:00:00.5Z",
        "2024-03-01T12:00:00.000001Z",
        "2024-03-01T12:00:00.123456+00:00",
        "2024-03-01T13:00:00.25+01:00",  # not in UTC
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ],
)
def test_each_time_is_stored_exactly_as_django_writes_it(install_client, at):
    # Filters and sorts compare the stored text (on SQLite) with the values Django writes
    # for a query: the same time written another way would sort and filter wrongly.
    sync_from(
        install_client,
        [
            wire_customer(
                "Acme",
                created_at=at,
                updated_at=at,
                archived_at=at,
                current_billable_status={"value": "billable", "effective_at": at},
            )
        ],
    )

    columns = ["created_at", "updated_at", "archived_at", "billable_status_effective_at"]
    if connection.vendor == "sqlite":  # the text itself, not the datetime Django reads it as
        columns = [f"CAST({column} AS TEXT)" for column in columns]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {IndexedCustomer._meta.db_table}")  # noqa: S608
        (stored,) = cursor.fetchall()
    time = metronome.wire.read_datetime(at)
    assert list(stored) == [connection.ops.adapt_datetimefield_value(time)] * len(columns)
    assert IndexedCustomer.objects.filter(created_at=time, archived_at__gte=time).exists()


@pytest.mark.django_db
def test_a_nul_character_from_metronome_is_stored_as_a_replacement_not_a_failed_sync(
    install_client,
):
    # PostgreSQL's text and jsonb cannot hold U+0000: one such name failed the whole sync.
    run = sync_from(
        install_client,
        [
            wire_customer(
                "Nul\x00Corp",
                ingest_aliases=["nul\x00alias"],
                external_id="ext\x00id",
                custom_fields={"no\x00te": "va\x00lue"},
            ),
            wire_customer("Plain Co"),
        ],
    )

    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error
    stored = IndexedCustomer.objects.get(name="Nul\ufffdCorp")
    assert stored.ingest_aliases == ["nul\ufffdalias"]
    assert stored.external_id == "ext\ufffdid"
    assert stored.custom_fields == {"no\ufffdte": "va\ufffdlue"}
    assert customer_index.search("nul").customer_ids == (str(stored.id),)


@pytest.mark.django_db
def test_resync_updates_archives_removes_and_adds(install_client):
    sync_from(
        install_client, [wire_customer("Acme"), wire_customer("Globex"), wire_customer("Initech")]
    )
    acme_id = IndexedCustomer.objects.get(name="Acme").id

    renamed = wire_customer("Acme Corporation", key="Acme", updated_at="2025-01-01T00:00:00Z")
    archived = wire_customer("Globex", archived_at="2025-01-02T00:00:00Z")
    run = sync_from(install_client, [renamed, archived, wire_customer("Umbrella")])

    assert (run.seen, run.inserted, run.updated, run.deleted) == (3, 1, 2, 1)
    assert names_in_index() == {"Acme Corporation", "Globex", "Umbrella"}
    assert IndexedCustomer.objects.get(id=acme_id).name_folded == "acme corporation"
    assert IndexedCustomer.objects.get(name="Globex").archived_at is not None
    # Search follows: the new name is found, the old and the removed ones are not.
    assert customer_index.search("corporation").customer_ids == (str(acme_id),)
    assert customer_index.search("acme corp").total == 1
    assert customer_index.search("initech").total == 0
    assert customer_index.search("umbrella").total == 1
    # The typo dictionary follows the names.
    assert IndexedNameWord.objects.filter(word="corporation").exists()
    assert not IndexedNameWord.objects.filter(word="initech").exists()


@pytest.mark.django_db
def test_unchanged_customers_are_not_rewritten(install_client):
    customers = [wire_customer("Acme"), wire_customer("Globex")]
    sync_from(install_client, customers)
    first_indexed_at = IndexedCustomer.objects.get(name="Acme").indexed_at

    run = sync_from(install_client, customers)

    assert (run.inserted, run.updated, run.deleted) == (0, 0, 0)
    assert IndexedCustomer.objects.get(name="Acme").indexed_at == first_indexed_at


def test_the_fingerprint_follows_the_bytes_metronome_sent():
    acme = json.dumps(wire_customer("Acme")).encode()

    assert fingerprint(acme) == fingerprint(bytes(acme))
    assert fingerprint(acme) != fingerprint(json.dumps(wire_customer("Globex")).encode())
    # Any change of spelling counts (the row is then read and written again, never missed).
    assert fingerprint(b'{"a": 1, "b": 2}') != fingerprint(b'{"b": 2, "a": 1}')
    assert fingerprint(b'{"a": 1}') != fingerprint(b'{"a": 1.0}')


@pytest.mark.django_db
def test_a_customer_id_in_any_spelling_of_a_uuid_is_indexed_by_its_value(install_client):
    canonical = "0f8e3b1c-2d4a-4b6c-8e9f-a1b2c3d4e5f6"
    spellings = [canonical.upper(), "{" + canonical + "}", canonical.replace("-", "")]
    run = sync_from(install_client, [{**wire_customer("Acme"), "id": canonical.upper()}])

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert str(IndexedCustomer.objects.get().id) == canonical
    for broken in ("0f8e3b1c-2d4a-4b6c-8e9f-a1b2c3d4e5fg", canonical[:-1], "-" + canonical[1:]):
        run = sync_from(install_client, [{**wire_customer("Initech"), "id": broken}])
        assert run.outcome == SyncRun.Outcome.FAILED, broken
    for spelt in spellings[1:]:
        run = sync_from(install_client, [{**wire_customer("Acme"), "id": spelt}])
        assert run.outcome == SyncRun.Outcome.SUCCEEDED, spelt
        assert str(IndexedCustomer.objects.get().id) == canonical


@pytest.mark.django_db
def test_failure_half_way_keeps_the_previous_index_whole(install_client):
    sync_from(install_client, [wire_customer(f"Old {n}") for n in range(250)])
    before = names_in_index()

    api = SandboxAPI([wire_customer(f"New {n}") for n in range(250)])
    # The third list request fails, after two pages were staged; no retries.
    api.faults = Faults(fail_every=3, fail_status=500)
    install_client(SandboxTransport(api), max_retries=0)
    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.FAILED
    assert "previous sync" in run.error
    assert run.finished_at is not None
    assert names_in_index() == before
    assert customer_index.last_successful_sync().pk != run.pk


@pytest.mark.django_db
def test_only_the_customer_whose_json_changed_is_rewritten(install_client, monkeypatch):
    # One write per page, so the comparison runs batch by batch against the index.
    monkeypatch.setattr(index_sync, "PAGES_PER_WRITE", 1)
    customers = [wire_customer(f"Customer {n}") for n in range(250)]
    sync_from(install_client, customers)
    indexed_at = dict(IndexedCustomer.objects.values_list("name", "indexed_at"))

    customers[120] = {**customers[120], "custom_fields": {"plan": "Scale"}}
    run = sync_from(install_client, customers[:200] + customers[201:])

    assert (run.seen, run.inserted, run.updated, run.deleted) == (249, 0, 1, 1)
    changed = IndexedCustomer.objects.get(name="Customer 120")
    assert changed.custom_fields == {"plan": "Scale"} and changed.custom_values_folded == "scale"
    assert changed.indexed_at != indexed_at["Customer 120"]
    others = IndexedCustomer.objects.exclude(name="Customer 120")
    assert {c.name: c.indexed_at for c in others} == {
        name: at for name, at in indexed_at.items() if name not in ("Customer 120", "Customer 200")
    }


@pytest.mark.django_db
def test_a_changed_customer_is_checked_in_full_before_it_is_written(install_client):
    # The fingerprint reads only the id; a customer that changed is read in full, and one
    # Metronome sent broken fails the sync rather than reach the index.
    sync_from(install_client, [wire_customer("Acme"), wire_customer("Globex")])
    before = set(IndexedCustomer.objects.values_list("name", "fingerprint"))

    run = sync_from(install_client, [wire_customer("Acme"), {**wire_customer("Globex"), "name": 7}])

    assert run.outcome == SyncRun.Outcome.FAILED
    assert "could not read" in run.error
    assert set(IndexedCustomer.objects.values_list("name", "fingerprint")) == before


@pytest.mark.django_db
def test_a_resync_failing_after_batches_were_staged_keeps_the_index_whole(
    install_client, monkeypatch
):
    monkeypatch.setattr(index_sync, "PAGES_PER_WRITE", 1)
    sync_from(install_client, [wire_customer(f"Old {n}") for n in range(250)])
    before = set(IndexedCustomer.objects.values_list("name", "fingerprint"))

    changed = [wire_customer(f"Old {n}", updated_at="2025-05-05T00:00:00Z") for n in range(250)]
    api = SandboxAPI(changed)
    api.faults = Faults(fail_every=4, fail_status=500)  # after three staged pages
    install_client(SandboxTransport(api), max_retries=0)
    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.FAILED
    assert set(IndexedCustomer.objects.values_list("name", "fingerprint")) == before
    # And the next sync that completes applies every change.
    run = sync_from(install_client, changed)
    assert (run.inserted, run.updated, run.deleted) == (0, 250, 0)


@pytest.mark.django_db
def test_malformed_customer_from_metronome_fails_the_sync_and_keeps_the_index(install_client):
    sync_from(install_client, [wire_customer("Acme")])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": "x"}], "next_page": None})

    install_client(httpx.MockTransport(handler))
    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.FAILED
    assert "could not read" in run.error
    assert names_in_index() == {"Acme"}


@pytest.mark.django_db
def test_a_customer_unreadable_in_full_fails_a_first_sync_and_leaves_the_index_empty(
    install_client,
):
    # A first sync reads each customer in full as its page is listed, in the listing's
    # thread: what goes wrong there ends the run as it would in the writing thread.
    customers = [wire_customer(f"Customer {n}") for n in range(250)]
    customers[180] = {**customers[180], "custom_fields": {"region": 7}}

    run = sync_from(install_client, customers)

    assert run.outcome == SyncRun.Outcome.FAILED
    assert "could not read" in run.error
    assert not IndexedCustomer.objects.exists()
    assert sync_from(install_client, customers[:180]).outcome == SyncRun.Outcome.SUCCEEDED
    assert IndexedCustomer.objects.count() == 180


@pytest.mark.django_db
def test_a_first_sync_reads_in_full_only_the_copy_of_a_customer_it_keeps(install_client):
    # Metronome repeats a customer on a later page: the listing keeps the first copy, and a
    # first sync, like a resync, never reads the repeat in full (here it could not).
    acme, globex, initech = (wire_customer(name) for name in ("Acme", "Globex", "Initech"))
    pages = {
        None: {"data": [acme, globex], "next_page": "page-2"},
        "page-2": {"data": [{**acme, "custom_fields": {"region": 7}}, initech], "next_page": None},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["only_archived"] == "true":
            return httpx.Response(200, json={"data": [], "next_page": None})
        return httpx.Response(200, json=pages[request.url.params.get("next_page")])

    install_client(httpx.MockTransport(handler))
    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error
    assert names_in_index() == {"Acme", "Globex", "Initech"}
    assert IndexedCustomer.objects.get(name="Acme").custom_fields == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "broken",
    [
        {"customer_config": {"salesforce_account_id": math.nan}},
        {"current_billable_status": math.inf},
        {"archived_at": -math.inf},
    ],
    ids=["NaN Salesforce ID", "Infinity status", "-Infinity archived"],
)
def test_a_customer_the_checked_readers_refuse_fails_the_sync_even_if_it_was_valid_before(
    install_client, broken
):
    # A page holding NaN is read the checked way; written back with NaN as null, the
    # customer would have passed, with the fingerprint of its valid self.
    valid = wire_customer("Acme", current_billable_status=None)
    assert sync_from(install_client, [valid]).outcome == SyncRun.Outcome.SUCCEEDED

    run = sync_from(install_client, [{**valid, **broken}])

    assert run.outcome == SyncRun.Outcome.FAILED
    assert "could not read" in run.error
    assert names_in_index() == {"Acme"}
    with pytest.raises(metronome.MalformedResponse):
        # As the export reads it (the sandbox lists a customer with any archived_at as archived).
        query = metronome.CustomerQuery(only_archived="archived_at" in broken)
        list(wiring.get_client().iter_pages(query))


@pytest.mark.django_db
def test_interrupted_sync_is_recorded_and_keeps_the_index(install_client):
    sync_from(install_client, [wire_customer("Acme")])

    def handler(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    install_client(httpx.MockTransport(handler))
    with pytest.raises(KeyboardInterrupt):
        index_sync.sync(wiring.get_client())

    run = SyncRun.objects.first()
    assert run.outcome == SyncRun.Outcome.INTERRUPTED
    assert names_in_index() == {"Acme"}


# A real transaction, and afterwards the groups and permissions the migrations made are
# restored (a plain transactional test empties every table for the tests after it).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_sync_while_one_runs_exits_saying_so(install_client):
    first_request_arrived = threading.Event()
    release = threading.Event()
    api = SandboxAPI([wire_customer("Acme")])

    def slow_handler(request: httpx.Request) -> httpx.Response:
        first_request_arrived.set()
        release.wait(timeout=30)
        status, headers, body = api.handle(
            request.method, request.url.path, request.url.query.decode(), request.headers
        )
        return httpx.Response(status, headers=headers, content=body)

    install_client(httpx.MockTransport(slow_handler))
    outcome: list[SyncRun] = []

    def first_sync() -> None:
        try:
            outcome.append(index_sync.sync(wiring.get_client()))
        finally:
            connection.close()

    thread = threading.Thread(target=first_sync)
    thread.start()
    try:
        assert first_request_arrived.wait(timeout=30)
        out = StringIO()
        call_command("sync_customers", stdout=out)
        assert "Another customer index sync is running" in out.getvalue()
    finally:
        release.set()
        thread.join(timeout=30)

    assert outcome[0].outcome == SyncRun.Outcome.SUCCEEDED
    assert SyncRun.objects.count() == 1
    assert names_in_index() == {"Acme"}
    # With the first one finished, the next sync runs.
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED


@pytest.mark.django_db
def test_a_sync_that_died_without_finishing_does_not_block_the_next(install_client):
    long_ago = timezone.now() - timedelta(hours=1)
    dead = SyncRun.objects.create(
        started_at=long_ago,
        heartbeat_at=long_ago,
        holds_lock=True if connection.vendor == "sqlite" else None,
    )

    run = sync_from(install_client, [wire_customer("Acme")])

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    dead.refresh_from_db()
    assert dead.outcome == SyncRun.Outcome.INTERRUPTED
    assert dead.holds_lock is None


@pytest.mark.django_db
def test_customer_listed_both_active_and_archived_is_indexed_once(install_client):
    # Archived between the two listings: Metronome may list it in both.
    active = wire_customer("Acme")
    archived = wire_customer("Acme", archived_at="2025-01-01T00:00:00Z")

    def handler(request: httpx.Request) -> httpx.Response:
        only_archived = request.url.params["only_archived"] == "true"
        return httpx.Response(
            200, json={"data": [archived if only_archived else active], "next_page": None}
        )

    install_client(httpx.MockTransport(handler))
    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert IndexedCustomer.objects.count() == 1


@pytest.mark.django_db
def test_customer_listed_twice_keeps_the_last_listing_even_when_that_one_is_unchanged(
    install_client, monkeypatch
):
    archived = wire_customer("Acme", archived_at="2025-01-01T00:00:00Z")
    sync_from(install_client, [archived])
    # Listed as active first (differs from the index: staged in full), then as archived
    # (what the index already has: not staged again). The index must stay archived.
    listings = (wire_customer("Acme"), archived)
    monkeypatch.setattr(
        index_sync,
        "_both_listings",
        lambda client, read, to_row, **_: iter(
            [metronome.RowPage((read(listed["id"], as_sent(listed)),), None) for listed in listings]
        ),
    )

    run = index_sync.sync(wiring.get_client())

    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error
    assert (run.seen, run.inserted, run.updated, run.deleted) == (2, 0, 0, 0)
    assert IndexedCustomer.objects.get().archived_at is not None


@pytest.mark.django_db
def test_command_reports_counts_and_logs_progress_without_a_terminal(install_client):
    install_client(SandboxTransport(SandboxAPI(250)))
    out = StringIO()

    call_command("sync_customers", "--log-every", "1", stdout=out)

    text = out.getvalue()
    assert "Syncing: " in text and "pages so far" in text
    assert "250 customers listed, 250 added, 0 changed, 0 removed" in text


@pytest.mark.django_db
def test_command_fails_with_the_reason_when_metronome_fails(install_client):
    install_client(httpx.MockTransport(lambda request: httpx.Response(401)), max_retries=0)
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("sync_customers", stdout=StringIO(), stderr=err)

    assert "Customer index sync failed: Metronome:" in err.getvalue()
    assert "Bearer" not in err.getvalue()


@pytest.mark.parametrize("raw", ["0", "ten minutes", "-5m", "5d"])
def test_every_rejects_what_is_not_a_duration(raw):
    with pytest.raises(CommandError, match="duration"):
        call_command("sync_customers", f"--every={raw}")


def index_names() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, IndexedCustomer._meta.db_table))


@pytest.mark.django_db
def test_a_first_sync_builds_the_indexes_again_after_filling_the_table(install_client):
    before = index_names()
    assert {"customer_index_active_name", "customer_index_arch_billable"} <= before

    sync_from(install_client, [wire_customer("Acme"), wire_customer("Globex")])

    assert index_names() == before
    assert customer_index.search("globex").total == 1


@pytest.mark.django_db
def test_a_first_sync_on_postgresql_lays_the_rows_out_in_name_order(install_client):
    """A common name word's matches are then read from a few pages of the table, not one
    page each. Listed in another order, as Metronome lists them."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite reads its rows through a memory map: their order made no difference")
    listed = [wire_customer(f"{word} {n}") for n in range(40) for word in ("Zeta", "Acme", "Mu")]
    with connection.cursor() as cursor:
        # A table as new, as before a real first sync: the rows other tests wrote and
        # rolled back leave room in its pages, where PostgreSQL may put a row anywhere.
        cursor.execute("TRUNCATE customers_indexedcustomer")
    sync_from(install_client, listed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name_folded FROM customers_indexedcustomer ORDER BY ctid")
        laid_out = [name for (name,) in cursor.fetchall()]
    assert len(laid_out) == len(listed)
    assert laid_out == sorted(laid_out)


@pytest.mark.django_db
def test_a_new_row_format_rewrites_every_row_once_on_the_next_sync(install_client, monkeypatch):
    customers = [wire_customer("Ørsted"), wire_customer("Acme")]
    sync_from(install_client, customers)
    # A row built the old way (here: folded without the letters fold now reads).
    IndexedCustomer.objects.filter(name="Ørsted").update(name_folded="ørsted")

    monkeypatch.setattr(rows, "ROW_FORMAT", b"rows-next")
    run = sync_from(install_client, customers)

    assert (run.inserted, run.updated, run.deleted) == (0, 2, 0)
    assert IndexedCustomer.objects.get(name="Ørsted").name_folded == "orsted"
    assert sync_from(install_client, customers).updated == 0


@pytest.mark.django_db
def test_a_name_of_thousands_of_words_gives_the_typo_dictionary_only_its_first_few(
    install_client,
):
    # And neither it nor an alias or external ID as long fails the sync on PostgreSQL, whose
    # index keys hold at most about 2,700 bytes.
    long_name = " ".join(f"word{n:05d}" for n in range(5000))
    huge = wire_customer(long_name, ingest_aliases=["a" * 20_000], external_id="e" * 20_000)
    run = sync_from(install_client, [huge, wire_customer("Acme Corporation")])
    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error

    words = set(IndexedNameWord.objects.values_list("word", flat=True))
    assert words == {f"word{n:05d}" for n in range(staging.MAX_NAME_WORDS)} | {
        "acme",
        "corporation",
    }
    # Stored whole, and found by its beginning; its folded copy, a sort key, is cut where
    # PostgreSQL's index keys end.
    stored = IndexedCustomer.objects.get(name=long_name)
    assert len(stored.name_folded) == keys.MAX_INDEXED_TEXT
    assert customer_index.search("word00003 word00004").customer_ids == (str(stored.id),)


@pytest.mark.django_db
def test_a_failed_dictionary_rebuild_leaves_the_swapped_index_and_the_next_sync_retries(
    install_client, monkeypatch
):
    from django.db import OperationalError

    rebuild = staging.rebuild_name_words
    calls: list[str] = []

    def locked() -> None:
        calls.append("failed")
        raise OperationalError("database is locked")

    monkeypatch.setattr(staging, "rebuild_name_words", locked)
    run = sync_from(install_client, [wire_customer("Acme")])

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert run.error == index_sync.NAME_WORDS_NOT_REBUILT
    assert IndexedCustomer.objects.filter(name="Acme").exists()
    assert not IndexedNameWord.objects.exists()

    # Nothing changed since, but the dictionary is rebuilt; after that, left alone.
    monkeypatch.setattr(staging, "rebuild_name_words", lambda: (calls.append("ran"), rebuild()))
    again = sync_from(install_client, [wire_customer("Acme")])
    assert (again.updated, again.error) == (0, "")
    assert list(IndexedNameWord.objects.values_list("word", flat=True)) == ["acme"]
    sync_from(install_client, [wire_customer("Acme")])
    assert calls == ["failed", "ran"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="VACUUM is PostgreSQL's")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_sync_that_wrote_rows_leaves_the_index_vacuumed(install_client):
    # Too few rows for autovacuum to step in first: only the sync's own VACUUM marks the
    # pages all-visible, which is what lets a deep page's index-only scan skip the table.
    sync_from(install_client, [wire_customer(f"Customer {n}") for n in range(300)])

    with connection.cursor() as cursor:
        for model in (IndexedCustomer, IndexedNameWord):
            cursor.execute(
                "SELECT relpages, relallvisible FROM pg_class WHERE relname = %s",
                [model._meta.db_table],
            )
            pages, all_visible = cursor.fetchone()
            assert pages > 0
            assert all_visible == pages, model


@pytest.mark.django_db
def test_a_count_that_fails_after_the_swap_leaves_the_run_succeeded(install_client, monkeypatch):
    def broken() -> tuple[int, int]:
        raise RuntimeError("the count failed")

    with monkeypatch.context() as patched:
        patched.setattr(staging, "customers_by_state", broken)
        run = sync_from(install_client, [wire_customer("Acme")])

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert (run.active_customers, run.archived_customers) == (None, None)
    assert names_in_index() == {"Acme"}
    # The next sync counts again, though nothing changed.
    assert index_sync.sync(wiring.get_client()).active_customers == 1
