"""A whole customers page is sent in two parts (views._streamed_page): the layout, the filters
and a loading line at once, the results region when Metronome has answered. The rows stay in
the page's HTML for scripts; only when each part leaves changes."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from django.db import connection

from customers import listing, wiring
from customers.index import sync as index_sync
from customers.models import SyncRun
from customers.views import StreamedPage

ROW = re.compile(r'<tr data-customer-id="([^"]+)"')


@pytest.fixture
def streaming_client(support_client):
    support_client.reads_pages_whole = False  # tests/conftest.py reads pages whole otherwise
    return support_client


def test_the_filters_and_a_loading_line_leave_before_metronome_is_asked(
    streaming_client, sandbox_api
):
    response = streaming_client.get("/customers/?limit=10")
    assert isinstance(response, StreamedPage) and response["X-Accel-Buffering"] == "no"
    parts = iter(response.streaming_content)

    first = next(parts).decode()
    assert sandbox_api.request_count == 0, "the first part waits for nothing"
    assert 'id="filters"' in first and '<p class="initial-loading" role="status">' in first
    assert 'id="results"' not in first and not ROW.search(first)

    rest = b"".join(parts).decode()
    assert sandbox_api.request_count == 1
    assert rest.startswith('<section id="results"')
    assert len(ROW.findall(rest)) == 10 and 'rel="next"' in rest
    assert rest.rstrip().endswith("</html>")


def test_the_whole_page_is_the_same_page_read_in_one_piece(support_client, sandbox_api):
    page = support_client.get("/customers/?limit=10").content.decode()
    fragment = support_client.get("/customers/?limit=10", HTTP_HX_REQUEST="true")
    assert ROW.findall(page) == ROW.findall(fragment.content.decode())
    # The loading line is followed by the region, which hides it (dashboard.css).
    assert re.search(r'Loading customers…</p><section id="results"', page)
    assert page.count('id="results"') == 1 and "\x00" not in page


def test_metronome_failing_shows_its_error_where_the_rows_go(support_client, install_client):
    install_client(
        httpx.MockTransport(lambda request: httpx.Response(503, json={"message": "down"})),
        max_retries=0,
    )
    response = support_client.get("/customers/")
    page = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<section id="results".*Could not load customers', page, re.S)
    assert "Retry" in page


def test_a_bug_after_the_first_part_is_said_in_the_page_and_logged(
    support_client, sandbox_api, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr(listing, "find", broken)
    with caplog.at_level(logging.ERROR, logger="customers.views"):
        page = support_client.get("/customers/").content.decode()
    assert "Something went wrong on the dashboard" in page and page.rstrip().endswith("</html>")
    assert "secret detail" not in page
    assert any("secret detail" in (record.exc_text or "") for record in caplog.records)


def test_the_request_log_counts_the_calls_the_second_part_made(support_client, sandbox_api, caplog):
    with caplog.at_level(logging.INFO, logger="dashboard.request"):
        support_client.get("/customers/?limit=10")
    lines = [r for r in caplog.records if r.name == "dashboard.request"]
    assert len(lines) == 1 and lines[0].api_calls == 1


def test_the_first_part_knows_the_search_before_its_answer(support_client, sandbox_api):
    # The filters fold away under an active search and the sort is kept, as they did when
    # the page was drawn after the answer.
    searched = support_client.get("/customers/?ingest_alias=nobody").content.decode()
    plain = support_client.get("/customers/").content.decode()
    assert '<details class="filters-fold">' in searched
    assert '<details class="filters-fold" open>' in plain


def test_the_folded_filters_say_which_of_them_are_in_use(support_client, sandbox_api):
    # A list cut short by a filter folded out of sight must say so.
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED
    body = support_client.get(
        "/customers/?custom_field=region%3Dmea&created_from=2024-01-01&no_salesforce_id=false"
    ).content.decode()
    assert '<details class="filters-fold">' in body
    summary = re.search(
        r"<summary>Pasted IDs, ingest alias and more filters(.*?)</summary>", body, re.S
    )
    assert summary and "· in use: Created dates, Custom field</span>" in summary[1]
    assert "in use" not in support_client.get("/customers/").content.decode()
    # An htmx search refreshes it beside the results (the form is not swapped).
    fragment = support_client.get(
        "/customers/?ingest_alias=x", headers={"HX-Request": "true", "HX-Target": "results"}
    ).content.decode()
    in_use = re.search(r'<span id="fold-in-use"[^>]*hx-swap-oob="true">([^<]*)<', fragment)
    assert in_use and in_use[1] == " · in use: Ingest alias"


def test_a_long_searchs_slot_and_cache_wait_until_the_page_is_sent(streaming_client, sandbox_api):
    """Giving the slot back and caching the search for its next pages change nothing on the
    page: they are done once it is sent, not between Metronome's answer and the rows."""
    from customers.models import WorkSlot

    wanted = [c["id"] for c in sandbox_api.customers[:3]]
    shown = [c["id"] for c in sandbox_api.customers[:3] if not c.get("archived_at")]
    url = "/customers/?customer_ids=" + ",".join(wanted)
    response = streaming_client.get(url)
    parts = iter(response.streaming_content)
    next(parts)
    assert ROW.findall(next(parts).decode()) == shown
    assert WorkSlot.objects.count() == 1, "held while the page is sent"
    calls = sandbox_api.request_count
    b"".join(streaming_client.get(url).streaming_content)  # the same search in another tab
    assert sandbox_api.request_count > calls, "not cached yet: asked again"

    b"".join(parts)  # the test client closes the response at the stream's end
    assert WorkSlot.objects.count() == 0
    calls = sandbox_api.request_count
    again = streaming_client.get(url)
    assert ROW.findall(b"".join(again.streaming_content).decode()) == shown
    assert sandbox_api.request_count == calls, "the search, cached once the page was sent"


def test_a_page_never_read_to_its_end_still_gives_its_slot_back(
    streaming_client, sandbox_api, monkeypatch
):
    from customers.models import WorkSlot

    wanted = [c["id"] for c in sandbox_api.customers[:3]]
    response = streaming_client.get("/customers/", {"customer_ids": ",".join(wanted)})
    parts = iter(response.streaming_content)
    next(parts)
    next(parts)  # the results: the search ran and holds its slot
    assert WorkSlot.objects.count() == 1
    # The browser went away: the server closes the response. (The test's database
    # connection is kept through that, as Django's test client keeps it.)
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: None)
    response.close()
    assert WorkSlot.objects.count() == 0
