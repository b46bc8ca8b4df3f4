"""The customers page answered from the customer index: the search box, the filters the API
lacks, sorting, totals, the live re-read from Metronome, the freshness line, the "Update
index now" button and the CSV export of an index search. CI runs it on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers import wiring
from customers.index import refresh as index_refresh
from customers.index import sync as index_sync
from customers.models import ExportAudit, SyncRun
from customers.sandbox import SandboxAPI, SandboxTransport
from customers.sandbox.api import Faults
from tests.factories import CUSTOMERS, customer_id, install_metronome, shown, wire_customer

LIST = reverse("customers:list")


def changed(name: str, /, **changes: Any) -> list[dict[str, Any]]:
    """CUSTOMERS with one of them changed in Metronome after the sync."""
    return [{**c, **changes} if c["name"] == name else c for c in CUSTOMERS]


# --- Search and filters ----------------------------------------------------------------------


def test_part_of_a_name_in_any_order_shows_the_customer(finance_client, indexed):
    response = finance_client.get(LIST, {"q": "hr junip"})

    assert response.status_code == 200
    assert shown(response) == ["HR Juniper Partners", "Juniper HR Ltd."]
    assert "Rows 1–2 of 2" in response.content.decode()


def test_accents_and_case_do_not_matter(finance_client, indexed):
    assert shown(finance_client.get(LIST, {"q": "SOCIETE gen"})) == ["Société Générale"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"billable": "billable"}, ["Juniper HR Ltd.", "Northwind Acme"]),
        ({"billable": "unbillable"}, ["HR Juniper Partners"]),
        ({"billable": "not_set"}, ["Acme Corp", "Société Générale", "株式会社 佐藤"]),
        (
            {"created_from": "2022-01-01", "created_to": "2023-05-05"},
            ["HR Juniper Partners", "Société Générale"],
        ),
        ({"updated_from": "2025-01-01"}, ["Acme Corp", "Juniper HR Ltd."]),
        ({"no_salesforce_id": "true", "q": "acme"}, ["Acme Corp", "Northwind Acme"]),
        ({"custom_field": "region=emea"}, ["Acme Corp", "Juniper HR Ltd."]),
        ({"only_archived": "all", "q": "acme"}, ["Acme Archived", "Acme Corp", "Northwind Acme"]),
        ({"only_archived": "true", "q": "acme"}, ["Acme Archived"]),
        ({"q": "juniper", "ingest_alias": "juniper-hr-1"}, ["Juniper HR Ltd."]),
        (
            {"q": "juniper", "customer_ids": customer_id("HR Juniper Partners")},
            ["HR Juniper Partners"],
        ),
    ],
)
def test_each_index_filter_narrows_the_page(finance_client, indexed, params, expected):
    response = finance_client.get(LIST, {"sort": "name", **params})

    assert response.status_code == 200
    assert shown(response) == expected


def test_an_index_search_offers_no_refresh_of_metronomes_page_cache(finance_client, indexed):
    # Refresh re-asks Metronome for a cached page of the API's own listing; an index search
    # has no such page (once, it drew a Refresh link with an empty href).
    body = finance_client.get(LIST, {"q": "acme"}).content.decode()
    assert "Rows 1–" in body and 'class="refresh"' not in body
    assert 'class="refresh" href="/customers/?refresh=true"' in (
        finance_client.get(LIST).content.decode()
    )


def test_invalid_filters_are_explained_not_a_500(finance_client, indexed):
    response = finance_client.get(
        LIST,
        {"created_from": "2024-02-01", "created_to": "2024-01-01", "custom_field": "emea"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Check the filters." in html
    assert "Created to must not be before created from." in html
    assert "Write the custom field as key=value" in html


def test_the_filters_travel_in_the_page_links(finance_client, indexed):
    response = finance_client.get(LIST, {"q": "acme", "only_archived": "all", "limit": "1"})

    html = response.content.decode().replace("&amp;", "&")
    assert 'href="/customers/?q=acme&only_archived=all&limit=1&page=2"' in html
    assert "Rows 1–1 of 3" in html


def test_a_posted_search_keeps_the_index_filters_in_its_url(finance_client, indexed):
    response = finance_client.post(LIST, {"q": "acme", "billable": "billable", "sort": "-name"})

    assert response.status_code == 303
    assert response["Location"] == "/customers/?q=acme&billable=billable&sort=-name"
    assert shown(finance_client.get(response["Location"])) == ["Northwind Acme"]


# --- Sorting, totals, pages ------------------------------------------------------------------


def test_sort_by_created_newest_first_from_the_header_link(finance_client, indexed):
    first = finance_client.get(LIST, {"q": "acme", "only_archived": "all", "sort": "created"})
    html = first.content.decode().replace("&amp;", "&")

    assert shown(first) == ["Acme Archived", "Acme Corp", "Northwind Acme"]
    assert '<th scope="col" aria-sort="ascending"><a class="sort"' in html
    descending = re.search(r'href="([^"]*sort=-created[^"]*)"', html)
    assert descending
    second = finance_client.get(descending.group(1))
    assert shown(second) == ["Northwind Acme", "Acme Corp", "Acme Archived"]
    assert 'aria-sort="descending"' in second.content.decode()


def test_the_plain_lists_headers_sort_by_asking_the_index(finance_client, indexed):
    plain = finance_client.get(LIST, {"only_archived": "true"})
    html = plain.content.decode().replace("&amp;", "&")
    assert "aria-sort" not in html  # Metronome's order: no column is the sort
    by_name = re.search(r'<a class="sort" href="([^"]*)"[^>]*>Name</a>', html)
    assert by_name and "sort=name" in by_name.group(1) and "only_archived=true" in by_name.group(1)

    sorted_page = finance_client.get(by_name.group(1))
    assert shown(sorted_page) == ["Acme Archived"]
    assert 'aria-sort="ascending"' in sorted_page.content.decode()


def test_headers_are_not_sort_links_before_the_index_exists_or_on_an_api_lookup(
    finance_client, db, install_client
):
    install_metronome(install_client, CUSTOMERS)
    before = finance_client.get(LIST).content.decode()
    assert 'class="sort"' not in before and "aria-sort" not in before

    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED
    looked_up = finance_client.get(LIST, {"ingest_alias": "juniper-hr-1"}).content.decode()
    assert 'class="sort"' not in looked_up


def index_total(response) -> str | None:
    found = re.search(
        r"of about <span data-index-total[^>]*>([^<]+)</span>", response.content.decode()
    )
    return found[1] if found else None


def test_the_plain_list_says_about_how_many_customers_the_index_counted(finance_client, indexed):
    archived = sum(1 for c in CUSTOMERS if c.get("archived_at"))
    active = len(CUSTOMERS) - archived
    assert active > 2 and archived > 0

    assert index_total(finance_client.get(LIST, {"limit": "2"})) == str(active)
    assert index_total(finance_client.get(LIST, {"only_archived": "true"})) == str(archived)
    # A filtered list is not the listing the index counted: its own total or none.
    assert index_total(finance_client.get(LIST, {"ingest_alias": "juniper-hr-1"})) is None


def test_the_counts_follow_a_sync_that_changes_the_index_and_not_before_one(
    finance_client, db, install_client
):
    install_metronome(install_client, CUSTOMERS)
    assert index_total(finance_client.get(LIST)) is None  # no sync yet: nothing counted

    run = index_sync.sync(wiring.get_client())
    archived = sum(1 for c in CUSTOMERS if c.get("archived_at"))
    assert (run.active_customers, run.archived_customers) == (len(CUSTOMERS) - archived, archived)
    again = index_sync.sync(wiring.get_client())  # nothing changed: the counts carried over
    assert (again.active_customers, again.archived_customers) == (
        run.active_customers,
        run.archived_customers,
    )
    install_metronome(install_client, [*CUSTOMERS, wire_customer("Newly Added")])
    grown = index_sync.sync(wiring.get_client())
    assert grown.active_customers == run.active_customers + 1


def test_true_total_and_page_numbers(finance_client, indexed):
    response = finance_client.get(LIST, {"only_archived": "all", "sort": "name", "limit": "2"})
    html = response.content.decode()

    assert "Rows 1–2 of 7" in html
    assert 'aria-current="page">1<' in html
    assert 'aria-label="Page 4"' in html
    last = finance_client.get(
        LIST, {"only_archived": "all", "sort": "name", "limit": "2", "page": "4"}
    )
    assert "Rows 7–7 of 7" in last.content.decode()
    assert shown(last) == ["株式会社 佐藤"]


# --- The live re-read ------------------------------------------------------------------------


def test_a_name_changed_after_the_sync_shows_the_new_name(finance_client, indexed, install_client):
    install_metronome(install_client, changed("Juniper HR Ltd.", name="Juniper People Ltd."))

    response = finance_client.get(LIST, {"q": "juniper hr ltd"})

    assert shown(response) == ["Juniper People Ltd."]


def test_a_customer_archived_after_the_sync_is_labelled(finance_client, indexed, install_client):
    install_metronome(install_client, changed("Northwind Acme", archived_at="2026-11-01T00:00:00Z"))

    response = finance_client.get(LIST, {"q": "northwind"})

    html = response.content.decode()
    assert shown(response) == ["Northwind Acme"]
    assert "archived since the index was updated" in html
    assert '<span class="badge badge-archived">1 Nov 2026</span>' in html


def test_a_customer_deleted_after_the_sync_is_labelled(finance_client, indexed, install_client):
    install_metronome(install_client, [c for c in CUSTOMERS if c["name"] != "Acme Corp"])

    response = finance_client.get(LIST, {"q": "acme corp"})

    assert shown(response) == ["Acme Corp"]
    assert "no longer in Metronome" in response.content.decode()


def test_a_page_is_re_read_with_one_call_per_state(finance_client, indexed, install_client):
    api = SandboxAPI(CUSTOMERS)
    install_client(SandboxTransport(api))

    finance_client.get(LIST, {"only_archived": "all"})

    # Six active customers in one call, the archived one in a second.
    assert api.request_count == 2


def test_when_metronome_is_down_a_search_shows_the_index_answer_marked_possibly_stale(
    finance_client, indexed, install_client
):
    api = SandboxAPI(CUSTOMERS)
    install_client(SandboxTransport(api))
    api.faults = Faults(fail_every=1, fail_status=500)

    response = finance_client.get(LIST, {"q": "acme"})

    html = response.content.decode()
    assert response.status_code == 200
    assert shown(response) == ["Acme Corp", "Northwind Acme"]
    stale = html[html.index("data-stale") :]
    assert "Possibly stale" in stale
    assert "Metronome is not answering normally (HTTP 500)" in stale.split("</div>")[0]
    assert "Could not load customers." not in html


# --- Freshness and the no-index state --------------------------------------------------------


def test_the_page_says_how_fresh_the_index_is(finance_client, indexed):
    SyncRun.objects.update(finished_at=timezone.now() - timedelta(minutes=4))

    html = finance_client.get(LIST).content.decode()

    assert "Index updated 4\xa0minutes ago." in html


def test_without_a_sync_the_search_box_says_what_to_run_and_the_api_still_answers(
    finance_client, install_client
):
    install_metronome(install_client, CUSTOMERS)

    response = finance_client.get(LIST)
    html = response.content.decode()

    assert "run <code>manage.py sync_customers</code>" in html
    assert re.search(r'<input type="search" name="q"[^>]*\sdisabled', html)
    assert len(shown(response)) == 6  # the active customers, from the API


def test_without_a_sync_an_index_search_in_a_link_is_explained(finance_client, install_client):
    install_metronome(install_client, CUSTOMERS)

    html = finance_client.get(LIST, {"q": "juniper"}).content.decode()

    assert "Check the filters." in html
    assert "The customer index has not been built yet" in html


# --- Update index now ------------------------------------------------------------------------


def test_the_sync_button_is_for_superusers_and_the_sync_index_permission(finance_client, indexed):
    assert "Update index now" not in finance_client.get(LIST).content.decode()
    assert finance_client.post(reverse("customers:sync_index")).status_code == 403


class InlineThread:
    """Runs the sync where the test can see it: a real thread would have its own database
    connection, outside the test's transaction (its rows would outlive the test)."""

    def __init__(self, *, target, name, daemon):
        self.target, self.name = target, name

    def start(self):
        self.target()


def test_the_sync_button_starts_a_sync_and_answers(client, db, install_client, monkeypatch):
    install_metronome(install_client, CUSTOMERS)
    monkeypatch.setattr(index_refresh, "Thread", InlineThread)
    client.force_login(User.objects.create_superuser("ada"))
    assert "Update index now" in client.get(LIST).content.decode()

    response = client.post(reverse("customers:sync_index"), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "Index update started." in response.content.decode()
    assert SyncRun.objects.get().outcome == SyncRun.Outcome.SUCCEEDED
    assert shown(client.get(LIST, {"q": "juniper hr ltd"})) == ["Juniper HR Ltd."]


def test_the_sync_buttons_message_shows_on_the_next_page_once(
    client, db, install_client, monkeypatch
):
    # The page is streamed (views._streamed_page): its messages are in the part drawn before
    # the view returns, so the middleware sees them read and does not keep them.
    install_metronome(install_client, CUSTOMERS)
    monkeypatch.setattr(index_refresh, "Thread", InlineThread)
    client.force_login(User.objects.create_superuser("ada"))

    redirect = client.post(reverse("customers:sync_index"))

    assert redirect.status_code == 303
    assert "Index update started." in client.get(LIST).content.decode()
    assert "Index update started." not in client.get(LIST).content.decode()


def test_the_sync_button_only_takes_a_post(admin_client, indexed):
    assert admin_client.get(reverse("customers:sync_index")).status_code == 405


def test_the_sync_button_says_when_a_sync_is_already_running(admin_client, indexed, monkeypatch):
    SyncRun.objects.create(started_at=timezone.now(), heartbeat_at=timezone.now())
    started = []
    monkeypatch.setattr(index_refresh, "start_in_background", lambda: started.append(1))

    response = admin_client.post(reverse("customers:sync_index"))

    assert response.status_code == 303
    page = admin_client.get(LIST).content.decode()
    assert "An index update is already running" in page
    assert started == []


# --- The CSV export of an index search --------------------------------------------------------


def test_the_export_of_an_index_search_writes_every_match_re_read_live(
    finance_client, db, install_client
):
    customers = [
        wire_customer(
            f"Bulk Customer {n:03}", custom_fields={"tier": "gold" if n % 2 else "silver"}
        )
        for n in range(250)
    ]
    install_metronome(install_client, customers)
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED
    renamed = [
        {**c, "name": "Bulk Customer 001 (renamed)"} if c["name"] == "Bulk Customer 001" else c
        for c in customers
    ]
    install_metronome(install_client, renamed)

    response = finance_client.get(
        reverse("customers:export"), {"q": "bulk", "custom_field": "tier=gold", "sort": "name"}
    )

    assert response.status_code == 200
    assert "filtered" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 125
    assert rows[0]["name"] == "Bulk Customer 001 (renamed)"
    assert all(row["custom_fields"] == '{"tier": "gold"}' for row in rows)
    audit = ExportAudit.objects.get()
    assert (audit.outcome, audit.rows_written) == (ExportAudit.Outcome.COMPLETE, 125)


def test_an_answer_cut_short_with_a_cursor_loses_no_customer_from_the_export_or_the_page(
    finance_client, db, install_client
):
    # Every third list call answers an empty page with a cursor to the rest (Metronome may
    # cut a page short): the re-read follows it, rather than take the customers for deleted.
    customers = [wire_customer(f"Bulk Customer {n:03}") for n in range(250)]
    install_metronome(install_client, customers)
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED
    api = SandboxAPI(customers, faults=Faults(empty_page_every=3))
    install_client(SandboxTransport(api))

    response = finance_client.get(reverse("customers:export"), {"q": "bulk", "sort": "name"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    page = finance_client.get(LIST, {"q": "bulk", "sort": "name", "limit": "100"})

    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["name"] for row in rows] == sorted(c["name"] for c in customers)
    audit = ExportAudit.objects.get()
    assert (audit.outcome, audit.rows_written) == (ExportAudit.Outcome.COMPLETE, 250)
    assert len(shown(page)) == 100
    assert "no longer in Metronome" not in page.content.decode()


def test_the_csv_gives_every_custom_field_key_the_index_knows_its_own_column(
    client, indexed, settings
):
    from django.contrib.auth.models import Group, User

    settings.CSV_CUSTOM_FIELD_COLUMNS = ["region"]
    user = User.objects.create_user("fiona")
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    response = client.get("/customers/export.csv")
    header = b"".join(response.streaming_content).decode("utf-8-sig").split("\r\n", 1)[0]
    extra = [name for name in header.split(",") if name.startswith("custom_fields.")]
    keys = sorted({key for customer in CUSTOMERS for key in customer["custom_fields"]})
    # The configured ones first, then the rest the index knows, sorted.
    assert extra == [
        f"custom_fields.{key}" for key in ["region", *(k for k in keys if k != "region")]
    ]


@pytest.mark.parametrize("field", ["created_to", "updated_to", "created_from"])
def test_a_day_at_the_end_of_the_calendar_is_a_form_error_on_the_page_and_the_export(
    finance_client, indexed, field
):
    response = finance_client.get(LIST, {field: "9999-12-31"})

    assert response.status_code == 200
    assert "Choose a day between 1900 and 9000." in response.content.decode()
    export = finance_client.get("/customers/export.csv", {field: "9999-12-31"})
    assert export.status_code == 400


def test_a_look_up_answered_with_more_customers_than_asked_for_says_so(
    finance_client, db, install_client
):
    # A re-read of 100 IDs answered page after page of new customers is a broken answer,
    # not an account "far more than" anything: the page says what happened in those words.
    customers = [wire_customer(f"Bulk Customer {n:03}") for n in range(20)]
    install_metronome(install_client, customers)
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED
    pages_sent = 0

    def endless(request: httpx.Request) -> httpx.Response:
        nonlocal pages_sent
        pages_sent += 1
        more = [wire_customer(f"Stranger {pages_sent}-{n}") for n in range(60)]
        return httpx.Response(200, json={"data": more, "next_page": f"c{pages_sent}"})

    install_client(httpx.MockTransport(endless))
    page = finance_client.get(LIST, {"q": "bulk"})

    text = " ".join(page.content.decode().split())
    assert "answered a look-up of 20 customer IDs with more than 100 customers" in text
    assert "far more than this account has" not in text
    assert pages_sent == 2


def test_past_the_cap_only_the_most_used_keys_get_columns_and_the_chooser_says_so(
    finance_client, db, install_client, monkeypatch
):
    from customers.index import search as index_search

    monkeypatch.setattr(index_search, "MAX_CUSTOM_FIELD_KEYS", 3)
    common = {"region": "emea", "tier": "gold", "owner": "kim"}
    customers = [
        wire_customer(f"Keyed {n}", custom_fields={**common, f"rare_{n}": "x"}) for n in range(5)
    ]
    install_metronome(install_client, customers)
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED

    response = finance_client.get("/customers/export.csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    header = body.split("\r\n", 1)[0].split(",")
    assert [name for name in header if name.startswith("custom_fields.")] == [
        "custom_fields.owner",
        "custom_fields.region",
        "custom_fields.tier",
    ]
    # Nothing lost: the rare keys are in each row's custom_fields column.
    rows = list(csv.DictReader(io.StringIO(body)))
    assert all(
        f"rare_{n}" in row["custom_fields"]
        for n, row in enumerate(sorted(rows, key=lambda r: r["name"]))
    )
    chooser = " ".join(finance_client.get("/customers/columns/").content.decode().split())
    assert "the 3 most used keys are offered; 5 used less are left out" in chooser


def test_the_chooser_keeps_a_chosen_key_some_customer_has_beyond_the_most_used(
    finance_client, db, install_client, monkeypatch
):
    from customers.index import search as index_search

    monkeypatch.setattr(index_search, "MAX_CUSTOM_FIELD_KEYS", 1)
    customers = [
        wire_customer(f"Keyed {n}", custom_fields={"region": "emea", f"rare_{n}": "x"})
        for n in range(3)
    ] + [wire_customer("Accented", custom_fields={"région": "x"})]
    install_metronome(install_client, customers)
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED

    chooser = finance_client.get(
        "/customers/columns/", {"columns": "name,cf.rare_1,cf.gone,cf.région"}
    )

    text = " ".join(chooser.content.decode().split())
    assert (
        "Left out, as unknown, repeated, or a custom field no customer has now: "
        "<code>cf.gone</code>." in text
    )
    assert 'name="columns" value="name,cf.rare_1,cf.région"' in text
    # A link naming many made-up keys costs no query for each: the keys are in the cache.
    made_up = ",".join(f"cf.made_up_{n}" for n in range(30))
    with CaptureQueriesContext(connection) as queries:
        finance_client.get("/customers/columns/", {"columns": f"name,{made_up}"})
    assert not [q for q in queries.captured_queries if "custom_fields" in q["sql"]]
    shown = finance_client.get("/customers/columns/", {"columns": "name,cf.rare_1", "show": "1"})
    assert shown.status_code == 302 and "columns=name%2Ccf.rare_1" in shown["Location"]


def count_line(response) -> str:
    found = re.search(
        r'<p class="count" id="row-count"[^>]*>(.*?)</p>', response.content.decode(), re.S
    )
    return " ".join(re.sub(r"<[^>]+>", "", found[1]).split()) if found else ""


def test_the_count_says_filtered_only_when_more_than_the_toggle_and_sort_narrow_it(
    finance_client, indexed
):
    assert "filtered" not in count_line(finance_client.get(LIST, {"only_archived": "all"}))
    assert "filtered" not in count_line(finance_client.get(LIST, {"sort": "-created"}))
    assert count_line(finance_client.get(LIST, {"q": "acme"})).endswith(", filtered")
    assert count_line(finance_client.get(LIST, {"billable": "billable"})).endswith(", filtered")
