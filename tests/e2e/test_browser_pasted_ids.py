"""Pasting Salesforce account IDs in a real browser: every match across pages, the match
report with its archived and unknown IDs, copying the unknown ones, and a paste too long for
a URL, which is POSTed and kept under a short `?search=` URL."""

import re
from collections import Counter
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import WORD_TOO_WIDE
from tests.factories import salesforce_id_of

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
    report.locator("[data-group=other-state] summary").click()
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
    # Its name changes once clicked.
    copy = report.locator("[data-group=not-found] button[data-copy-from]")
    copy.click()
    expect(copy).to_have_text("Copied 20 IDs")
    assert page.evaluate("navigator.clipboard.readText()").split("\n") == unknown_in_pasted_order

    rows = dashboard.all_row_ids()
    assert dashboard.page_label() == "Page 4"
    assert len(rows) == len(set(rows)) == 200
    assert set(rows) == paste.rows

    # Switch to Archived is a link that keeps the pasted list.
    dashboard.first()
    dashboard.swap(report.get_by_role("link", name="switch to Archived").click)
    assert dashboard.query()["only_archived"] == ["true"]
    assert report_counts(dashboard)["matched"] == "30"
    expect(page.get_by_label("Archived")).to_be_checked()


def test_a_report_column_of_15_character_ids_finds_every_account_and_ignores_the_header(
    dashboard, data
):
    # Accounts held by one customer each, half storing the 15-character form in
    # Metronome and half the 18-character one; the report gives 15 characters for all.
    stored = {i: data.by_id[i]["customer_config"]["salesforce_account_id"] for i in data.active}
    held = Counter(
        sf[:15] for c in data.customers if (sf := c["customer_config"]["salesforce_account_id"])
    )
    unique = [i for i, sf in stored.items() if sf and held[sf[:15]] == 1]
    short = [i for i in unique if len(stored[i]) == 15][:4]
    long = [i for i in unique if len(stored[i]) == 18][:4]
    accounts = short + long
    column = "\n".join(["Account ID", *(stored[i][:15] for i in accounts)])
    dashboard.log_in("support")
    page = dashboard.page

    page.get_by_label("Salesforce account IDs").fill(column)
    dashboard.search()

    assert report_counts(dashboard) == {
        "pasted": "8",
        "matched": "8",
        "not-found": "0",
        "ignored": "1",
    }
    assert set(dashboard.row_ids()) == set(accounts)
    report = dashboard.results.locator(".match-report")
    ignored = report.locator("[data-group=ignored] [data-ignored-value]")
    assert ignored.all_text_contents() == ["Account ID"]
    expect(report.get_by_text("Ignored in Salesforce account IDs")).to_be_visible()
    # Those stored in the 18-character form say how they matched.
    other_form = report.locator("[data-matched-as]")
    assert other_form.all_text_contents() == [
        f"{stored[i][:15]} matched as {stored[i]}" for i in long
    ]
    expect(dashboard.results.locator(".count")).to_contain_text("Rows 1–8 of 8")
    dashboard.screenshot("07-report-column")
    # At a laptop's width the "Matched as" column holds a Salesforce ID whole.
    page.set_viewport_size({"width": 1280, "height": 800})
    cell = dashboard.results.locator("td[data-matched-as]").first
    assert cell.evaluate("td => td.scrollWidth <= td.clientWidth"), "cut at 1280"
    # The column narrows the others: their headers wrap between words, none cut with "…".
    headers = dashboard.results.locator("thead th")
    assert headers.evaluate_all(WORD_TOO_WIDE) == []
    cut = "ths => ths.filter(th => th.scrollWidth > th.clientWidth + 1).map(th => th.textContent)"
    assert headers.evaluate_all(cut) == []
    # A billable status's "since" date goes below its badge there, not cut with "…".
    billable = dashboard.results.locator("tbody td:nth-child(5)")
    assert billable.locator("small").count() > 0
    assert billable.evaluate_all(cut) == []

    # A customer ID (a UUID) is cut short there, and shows whole when pointed at.
    page.get_by_label("Salesforce account IDs").fill("")
    page.get_by_label("Customer IDs").fill(accounts[0])
    dashboard.search()
    cell = dashboard.results.locator("td[data-matched-as]").first
    assert cell.evaluate("td => td.scrollWidth > td.clientWidth"), "a UUID no longer cut"
    cell.locator("code").hover()
    expect(cell.locator("code")).to_have_attribute("title", accounts[0])


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


def test_paste_order_is_chosen_in_the_report_and_kept_by_the_next_change(dashboard, data):
    paste = data.paste(active=12, archived=0, unknown=0, seed=12)
    dashboard.log_in("support")
    page = dashboard.page
    page.get_by_label("Salesforce account IDs").fill(paste.text)
    dashboard.search()
    report = dashboard.results.locator(".match-report")
    expect(report.get_by_role("link", name="Creation order")).to_have_attribute(
        "aria-current", "true"
    )

    # Offered by the report after an htmx search, not only after a reload.
    dashboard.swap(report.get_by_role("link", name="Paste order").click)
    # Each pasted ID's customers (several may share an account), in creation order.
    in_paste_order = [
        c["id"]
        for pasted in paste.ids
        for c in data.customers
        if salesforce_id_of(c) == pasted and not c.get("archived_at")
    ]
    assert dashboard.row_ids() == in_paste_order
    assert dashboard.query()["order"] == ["pasted"]

    # Changing the page size submits the form: the order chosen in the report stays.
    dashboard.swap(lambda: page.get_by_label("Rows per page").select_option("25"))
    assert dashboard.query()["order"] == ["pasted"]
    assert dashboard.row_ids() == in_paste_order
    expect(report.get_by_role("link", name="Paste order")).to_have_attribute("aria-current", "true")
