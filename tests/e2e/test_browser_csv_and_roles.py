"""The CSV download in a real browser, and who sees its button: Finance does, Support
doesn't."""

import csv
import io
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def download_csv(dashboard) -> tuple[str, list[list[str]]]:
    """Click the page's Download CSV button; the file's name and its rows, header first."""
    with dashboard.page.expect_download() as download_info:
        dashboard.page.locator("#download-csv").click()
    download = download_info.value
    assert download.failure() is None
    text = Path(download.path()).read_bytes().decode("utf-8")
    assert text.startswith("\ufeff"), "no byte-order mark: Excel would misread non-ASCII names"
    return download.suggested_filename, list(csv.reader(io.StringIO(text[1:], newline="")))


def ids_in(rows: list[list[str]]) -> list[str]:
    header, *body = rows
    assert header[:2] == ["id", "name"], header
    return [row[0] for row in body]


def test_download_csv_of_archived_customers_has_every_one_of_them_and_the_bom(dashboard, data):
    dashboard.log_in("finance")
    dashboard.show("Archived")
    expect(dashboard.page.locator("#download-csv")).to_have_attribute(
        "href", re.compile(r"only_archived=true")
    )

    name, rows = download_csv(dashboard)
    # The sandbox's made-up customers say so in the file's name.
    assert re.fullmatch(r"metronome-customers-SANDBOX-archived-\d{8}T\d{4}Z\.csv", name), name
    # Every archived customer, in the API's order, not just the 50 on the screen.
    assert ids_in(rows) == data.archived


def test_download_csv_of_a_long_pasted_search_has_every_match(dashboard, data):
    paste = data.paste(active=320, archived=40, unknown=40, seed=400)
    dashboard.log_in("finance")
    dashboard.page.get_by_label("Salesforce account IDs").fill(paste.text)
    dashboard.search()
    # The link carries the saved search's short key, like the page's own URL.
    href = dashboard.page.locator("#download-csv").get_attribute("href")
    assert parse_qs(urlsplit(href).query) == dashboard.query()

    name, rows = download_csv(dashboard)
    assert name.startswith("metronome-customers-SANDBOX-filtered-")
    ids = ids_in(rows)
    assert len(ids) == len(set(ids)) == 320
    assert set(ids) == paste.rows


def test_a_download_that_cannot_start_says_why(dashboard, sandbox, problems):
    dashboard.log_in("finance")
    expect(dashboard.results.locator("tbody tr").first).to_be_visible()
    try:
        sandbox.inject_faults(failing_endpoints=["customers"])
        dashboard.page.locator("#download-csv").click()
        # The export's page saying why: not a click that does nothing.
        alert = dashboard.page.get_by_role("alert")
        expect(alert).to_contain_text("The CSV file could not be made.")
        expect(alert).to_contain_text("No file was downloaded.")
    finally:
        sandbox.reset()
    problems.provoked_at("/customers/export.csv")


def test_support_sees_no_download_button(dashboard):
    dashboard.log_in("support")
    expect(dashboard.results.locator("tbody tr").first).to_be_visible()
    expect(dashboard.page.locator("#download-csv")).to_have_count(0)
    dashboard.screenshot("05-support-view")


def test_finance_sees_a_download_button_for_what_is_on_the_screen(dashboard):
    dashboard.log_in("finance")
    button = dashboard.page.locator("#download-csv")
    expect(button).to_be_visible()
    expect(button).to_have_text("Download CSV")
    assert button.get_attribute("href") == "/customers/export.csv"

    dashboard.show("Archived")
    expect(button).to_be_visible()
    assert parse_qs(urlsplit(button.get_attribute("href")).query) == {"only_archived": ["true"]}
