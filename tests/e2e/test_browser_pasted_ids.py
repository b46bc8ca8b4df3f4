"""Pasting Salesforce account IDs in a real browser: every match across pages, the match
report with its archived and unknown IDs, copying the unknown ones, and a paste too long for
a URL, which is POSTed and kept under a short `?search=` URL."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def is_list_request(request) -> bool:
    return urlsplit(request.url).path == "/customers/"


def report_counts(dashboard) -> dict[str, str]:
    return dict(
        dashboard.results.locator("[data-count]").evaluate_all(
            "els => els.map(el => [el.dataset.count, el.textContent.trim()])"
        )
    )


def test_250_pasted_ids_find_every_match_and_report_the_archived_and_unknown_ones(dashboard, data):
    paste = data.paste(active=200, archived=30, unknown=20, seed=250)
    dashboard.log_in("support")
    page = dashboard.page

    page.get_by_label("Salesforce account IDs").fill(paste.text)
    with page.expect_request(is_list_request) as request:
        dashboard.search()
    # About 5 KB of query string: short enough to stay a plain, shareable GET URL.
    assert request.value.method == "GET"
    [pasted_in_url] = dashboard.query()["salesforce_account_ids"]
    assert re.split(r"[\s,]+", pasted_in_url.strip()) == paste.ids

    report = dashboard.results.locator(".match-report")
    expect(report).to_be_visible()
    assert report_counts(dashboard) == {
        "pasted": "250",
        "matched": "200",
        "other-state": "30",
        "not-found": "20",
    }
    unknown_in_pasted_order = [i for i in paste.ids if i in set(paste.unknown)]
    not_found = report.locator("[data-unmatched-id]")
    assert not_found.evaluate_all("els => els.map(el => el.textContent.trim())") == (
        unknown_in_pasted_order
    )
    expect(not_found.first).to_be_visible()

    archived = report.locator("[data-other-state-id]")
    expect(report.get_by_text("30 belong to archived customers")).to_be_visible()
    report.locator("summary").click()
    expect(archived.first).to_be_visible()
    assert set(archived.evaluate_all("els => els.map(el => el.dataset.otherStateId)")) == set(
        paste.archived
    )
    labels = archived.locator(".badge").evaluate_all(
        "badges => badges.map(b => [b.textContent.trim(), b.checkVisibility()])"
    )
    assert labels == [["archived", True]] * 30
    dashboard.screenshot("02-match-report")

    expect(report.get_by_role("button", name="Copy not-found IDs")).to_be_visible()
    copy = report.locator("button[data-copy-from]")  # its name changes once clicked
    copy.click()
    expect(copy).to_have_text("Copied 20 IDs")
    assert page.evaluate("navigator.clipboard.readText()").split("\n") == unknown_in_pasted_order

    rows = dashboard.all_row_ids()
    assert dashboard.page_label() == "Page 4"
    assert len(rows) == len(set(rows)) == 200
    assert set(rows) == paste.rows


def test_a_paste_too_long_for_a_url_is_posted_and_reloads_from_its_short_url(dashboard, data):
    paste = data.paste(active=320, archived=40, unknown=40, seed=400)
    dashboard.log_in("support")
    page = dashboard.page

    page.get_by_label("Salesforce account IDs").fill(paste.text)
    with page.expect_request(is_list_request) as request:
        dashboard.search()
    assert request.value.method == "POST"
    match = re.fullmatch(r"search=([0-9a-f]{20})", urlsplit(page.url).query)
    assert match, page.url
    expected_counts = {"pasted": "400", "matched": "320", "other-state": "40", "not-found": "40"}
    assert report_counts(dashboard) == expected_counts
    first_page = dashboard.row_ids()
    assert len(first_page) == 50
    assert set(first_page) <= paste.rows
    dashboard.screenshot("06-long-paste-saved-search")

    # The short URL is the search: a reload shows the same report, rows and pasted IDs.
    url = page.url
    page.reload()
    assert page.url == url
    assert report_counts(dashboard) == expected_counts
    assert dashboard.row_ids() == first_page
    pasted = page.get_by_label("Salesforce account IDs").input_value()
    assert re.split(r"[\s,]+", pasted.strip()) == paste.ids

    dashboard.next()
    assert dashboard.query()["search"] == [match.group(1)]
    dashboard.previous()
    assert dashboard.row_ids() == first_page
    rows = dashboard.all_row_ids()
    assert len(rows) == len(set(rows)) == 320
    assert set(rows) == paste.rows
