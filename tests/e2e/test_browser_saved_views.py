"""Saved views in a real browser: Finance chooses columns with the chooser, filters, saves
the search as a shared view; a colleague opens its short link in a fresh session, sees
those columns (also as a phone's card labels) and downloads a CSV with exactly them."""

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import VIEWPORT, WORD_TOO_WIDE, Dashboard

pytestmark = pytest.mark.e2e

CHOSEN = ["name", "id", "billable", "cf.region"]
HEADERS = ["Name", "Metronome ID", "Billable", "region"]
CSV_HEADER = ["name", "id", "billable_status", "custom_fields.region"]


def choose_columns(dashboard: Dashboard) -> None:
    """From the standard columns to CHOSEN, by keyboard: each button is focused and pressed."""
    page = dashboard.page
    page.locator("#choose-columns").click()
    expect(page.get_by_role("heading", name="Choose columns")).to_be_visible()
    for header in ("Ingest aliases", "Salesforce ID", "Created", "Updated", "Archived"):
        remove = page.get_by_role("button", name=f"Remove {header}", exact=True)
        remove.focus()
        page.keyboard.press("Enter")
        page.wait_for_load_state()
    add = page.get_by_role("button", name="Add region", exact=True)
    add.focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    # The added column keeps the keyboard focus.
    expect(page.locator(":focus")).to_have_attribute("value", "up:cf.region")
    page.get_by_role("button", name="Show these columns").click()
    page.wait_for_url(re.compile(r"/customers/\?.*columns=name%2Cid%2Cbillable%2Ccf.region"))


def test_a_shared_view_opens_for_a_colleague_with_its_columns_and_its_csv(
    dashboard, browser, app_url, data
):
    page = dashboard.page
    dashboard.log_in("finance")
    choose_columns(dashboard)
    expect(dashboard.results.locator("thead th")).to_have_text(HEADERS)

    dashboard.swap(page.locator("fieldset.billable label", has_text="Unbillable").click)
    assert dashboard.query()["columns"] == [",".join(CHOSEN)]

    page.locator("#save-view").click()
    page.get_by_label("Name", exact=True).fill("Unbillable <by region>")
    page.get_by_label("Share with the team").check()
    page.get_by_role("button", name="Save view").click()
    page.wait_for_url(re.compile(r"/customers/\?.*view="))
    expect(page.locator("#view-bar")).to_contain_text("View Unbillable <by region>")
    link = page.locator("nav.saved-views").get_by_role("link", name="Unbillable <by region>")
    short_url = link.get_attribute("href")
    assert short_url is not None and re.fullmatch(r"/customers/v/[a-z0-9]{8}/", short_url)
    dashboard.screenshot("saved-view-owner")

    # A colleague, in a fresh session (no cookies), opens the short link from a ticket.
    colleague_context = browser.new_context(
        base_url=app_url, viewport=VIEWPORT, accept_downloads=True
    )
    try:
        colleague = Dashboard(colleague_context.new_page())
        colleague.log_in("demo")
        colleague.page.goto(short_url)
        expect(colleague.page.locator("#view-bar")).to_contain_text("Unbillable <by region>")
        expect(colleague.page.locator("#view-modified")).to_have_count(0)
        expect(colleague.results.locator("thead th")).to_have_text(HEADERS)
        rows = colleague.results.locator("tbody tr")
        expect(rows.first).to_be_visible()
        assert rows.count() == rows.locator("xpath=self::tr[@data-customer-id]").count()
        for badge in rows.locator("td:nth-child(3) .badge").all_inner_texts():
            assert badge == "Unbillable"

        with colleague.page.expect_download() as download_info:
            colleague.page.locator("#download-csv").click()
        download = download_info.value
        assert download.failure() is None
        text = Path(download.path()).read_bytes().decode("utf-8-sig")
        header, *body = list(csv.reader(io.StringIO(text, newline="")))
        assert header == CSV_HEADER
        expected = {
            c["id"]
            for c in data.customers
            if c.get("archived_at") is None
            and (c.get("current_billable_status") or {}).get("value") == "unbillable"
        }
        assert {row[1] for row in body} == expected
        assert {row[3] for row in body} == {
            (data.by_id[row[1]].get("custom_fields") or {}).get("region", "") for row in body
        }

        # On a phone, the chosen columns are the card's labelled lines.
        colleague.page.set_viewport_size({"width": 390, "height": 844})
        third = colleague.results.locator("tbody tr").first.locator("td").nth(1)
        label = third.evaluate("cell => getComputedStyle(cell, '::before').content")
        assert label == '"Billable"'
        colleague.screenshot("saved-view-phone")
    finally:
        colleague_context.close()


def test_the_saved_view_pages_have_no_accessibility_violations(dashboard, request):
    violations = request.getfixturevalue("axe")  # tests/e2e/test_browser_accessibility.py
    page = dashboard.page
    dashboard.log_in("finance")
    # One page of results: the index's page-number links are not this feature's to check.
    page.goto(
        "/customers/?billable=billable&custom_field=industry%3DMedia&limit=100"
        "&columns=name%2Ccreated%2Ccf.plan%2Ccf.industry"
    )
    page.locator("#save-view").click()
    expect(page.get_by_role("heading", name="Save this search as a view")).to_be_visible()
    assert violations(page) == []  # the save page
    page.get_by_label("Name", exact=True).fill("Billable plans")
    page.get_by_role("button", name="Save view").click()
    page.wait_for_url(re.compile(r"/customers/\?.*view="))
    assert violations(page) == []

    dashboard.swap(page.locator("fieldset.billable label", has_text="Unbillable").click)
    expect(page.locator("#view-modified")).to_be_visible()
    assert violations(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    assert violations(page) == []
    page.set_viewport_size(VIEWPORT)

    page.locator("#choose-columns").click()
    expect(page.get_by_role("heading", name="Choose columns")).to_be_visible()
    assert violations(page) == []
    page.go_back()
    page.locator("#view-bar").get_by_role("link", name="Manage").click()
    expect(page.get_by_role("heading", name="View “Billable plans”")).to_be_visible()
    assert violations(page) == []


WIDE = (
    "name,id,aliases,salesforce,billable,billable_since,created,updated,archived,"
    "cf.industry,cf.region"
)


def test_chosen_columns_keep_names_whole_and_the_page_within_the_window(dashboard):
    page = dashboard.page
    dashboard.log_in("finance")
    page.set_viewport_size({"width": 1280, "height": 900})
    for chosen in (
        "name,id,aliases,salesforce,billable,created,updated,archived",
        "name,id,external_id,aliases,salesforce,billable,billable_since,updated",  # 8, wide
        WIDE,
    ):
        page.goto(f"/customers/?billable=billable&columns={chosen}")
        # A name breaks between words, never inside one ("Junip/er" beside the IDs).
        assert page.locator("tbody th").evaluate_all(WORD_TOO_WIDE) == [], chosen
        # No page wider than the window: eleven columns scroll inside the table's frame.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, chosen
    page.set_viewport_size(VIEWPORT)


# Whether an element's text is cut ("…") in its box.
TEXT_CUT = "elements => elements.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)"


def test_an_id_in_any_chosen_column_shows_whole(dashboard):
    # The standard table's rules for its own second and third columns (the Metronome ID
    # and the first alias, cut to leave room for Copy and "+N") once reached whichever
    # column a person chose there: at 1024 px every Metronome ID chosen third ended in "…",
    # with no Copy button in this table to get it whole.
    page = dashboard.page
    dashboard.log_in("finance")
    page.set_viewport_size({"width": 1024, "height": 900})
    page.goto(
        "/customers/?columns=name,created,id,salesforce,external_id,billable,updated,archived"
    )
    codes = page.locator("table.chosen tbody td code")
    expect(codes.first).to_be_visible()
    assert page.locator("table.chosen tbody td:nth-child(3) code").count() > 10
    assert codes.evaluate_all(TEXT_CUT) == []
    # Wider than the window, the table scrolls inside its frame, not the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    page.set_viewport_size(VIEWPORT)


def test_a_modified_view_keeps_its_links_on_one_line_for_support(dashboard, browser, app_url):
    # Support cannot download, so a note about the CSV stands where Finance's buttons are;
    # at 1280 it took the width the view's links needed, and Reset and Columns went under
    # the view's name.
    page = dashboard.page
    dashboard.log_in("finance")
    page.goto("/customers/?billable=unbillable")
    page.locator("#save-view").click()
    page.get_by_label("Name", exact=True).fill("Unbillable EMEA")
    page.get_by_label("Share with the team").check()
    page.get_by_role("button", name="Save view").click()
    page.wait_for_url(re.compile(r"/customers/\?.*view="))
    link = page.locator("nav.saved-views").get_by_role("link", name="Unbillable EMEA")
    short_url = link.get_attribute("href")
    context = browser.new_context(base_url=app_url, viewport={"width": 1280, "height": 800})
    try:
        support = Dashboard(context.new_page())
        support.log_in("support")
        support.page.goto(short_url)
        support.page.goto(support.page.url + "&q=acme")
        expect(support.page.locator("#view-modified")).to_be_visible()
        expect(support.page.locator("#export-hint")).to_be_visible()
        links = support.page.locator("#view-bar a")
        tops = links.evaluate_all("links => links.map(a => a.getBoundingClientRect().top)")
        assert len(tops) == 4 and max(tops) - min(tops) < 10, tops  # one line, not two
    finally:
        context.close()


def test_the_column_chooser_fits_a_phone(dashboard):
    page = dashboard.page
    dashboard.log_in("finance")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/customers/columns/?columns=name,id,aliases,cf.region")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    remove = page.get_by_role("button", name="Remove region", exact=True)
    box = remove.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    page.set_viewport_size(VIEWPORT)
