"""The customer view in a real browser: a name in the list opens it as a side panel with the
customer's invoices, Back and Close close it, and it fits a laptop and a phone."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from customers.sandbox.invoices import generate_invoices

pytestmark = pytest.mark.e2e

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def first_with_invoices(data, dashboard) -> dict:
    """The first customer on the first page whose view has a year of invoices."""
    for customer_id in dashboard.row_ids():
        customer = data.by_id[customer_id]
        if len(generate_invoices(customer)) >= 12:
            return customer
    raise AssertionError("no customer on the first page has a year of invoices")


def open_panel(dashboard, customer: dict):
    page = dashboard.page
    row = dashboard.results.locator(f'tr[data-customer-id="{customer["id"]}"]')
    row.get_by_role("link", name=customer["name"], exact=True).click()
    panel = page.locator("aside#customer-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("#invoices tbody tr[data-invoice-id]")).to_have_count(12)
    return panel


def test_a_name_opens_the_customer_panel_with_invoices_and_back_closes_it(dashboard, data):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    rows = dashboard.row_ids()
    customer = first_with_invoices(data, dashboard)

    panel = open_panel(dashboard, customer)
    assert urlsplit(page.url).path == f"/customers/{customer['id']}/"
    expect(panel.get_by_role("heading", level=1)).to_have_text(customer["name"])
    expect(panel.get_by_role("link", name=f"Open {customer['name']} in Metronome")).to_be_visible()
    expect(panel).to_be_focused()
    # Newest first: the first row is the draft of the month still running.
    expect(panel.locator("#invoices tbody tr[data-invoice-id]").first).to_contain_text("Draft")
    expect(panel.locator("#invoices tbody tr[data-invoice-id]").first).to_contain_text("Nov 2026")
    # The list stays underneath.
    expect(dashboard.results).to_be_visible()
    dashboard.screenshot("customer-panel", readme="customer-panel.png")

    # Closing takes the panel away without reloading the list (test_browser_daily_use.py).
    page.go_back()
    assert urlsplit(page.url).path == "/customers/"
    expect(page.locator("aside#customer-panel")).to_have_count(0)
    assert dashboard.row_ids() == rows

    # Close does the same as Back, and so does Escape.
    open_panel(dashboard, customer)
    page.get_by_role("link", name=re.compile("^Close")).click()
    assert urlsplit(page.url).path == "/customers/"
    expect(page.locator("aside#customer-panel")).to_have_count(0)

    open_panel(dashboard, customer)
    page.keyboard.press("Escape")
    expect(page.locator("aside#customer-panel")).to_have_count(0)


def test_with_a_panel_open_another_name_in_the_list_opens_that_customer(dashboard, data):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    first = first_with_invoices(data, dashboard)
    second = next(data.by_id[i] for i in dashboard.row_ids() if i != first["id"])
    open_panel(dashboard, first)

    # The page's address is now the first customer's: the list's links still lead home.
    link = dashboard.results.locator(f'tr[data-customer-id="{second["id"]}"] th a')
    expect(link).to_have_attribute("href", f"/customers/{second['id']}/")
    link.click()
    panel = page.locator("aside#customer-panel")
    expect(panel.get_by_role("heading", level=1)).to_have_text(second["name"])
    assert urlsplit(page.url).path == f"/customers/{second['id']}/"
    expect(dashboard.results).to_be_visible()


def test_the_panel_copies_the_id_and_reloading_shows_the_full_page(dashboard, data):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    customer = first_with_invoices(data, dashboard)
    panel = open_panel(dashboard, customer)

    panel.get_by_role("button", name="Copy Metronome ID").click()
    expect(panel.get_by_role("button", name="Copy Metronome ID")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == customer["id"]

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(customer["name"])
    expect(page.locator("#invoices tbody tr[data-invoice-id]")).to_have_count(12)
    expect(page.get_by_role("link", name="← Customers")).to_have_attribute("href", "/customers/")
    dashboard.screenshot("customer-page")


def test_on_a_phone_the_panel_takes_the_screen_without_horizontal_scroll(dashboard, data):
    page = dashboard.page
    page.set_viewport_size(PHONE)
    dashboard.log_in("support")
    customer = first_with_invoices(data, dashboard)
    panel = open_panel(dashboard, customer)

    box = panel.bounding_box()
    assert box is not None and box["x"] == 0 and box["width"] == PHONE["width"]
    overflow = panel.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow == 0, f"the panel scrolls sideways by {overflow} px"
    dashboard.screenshot("customer-panel-phone")

    invoices = panel.locator("#invoices")
    invoices.scroll_into_view_if_needed()
    table_overflow = invoices.locator(".table-wrap").evaluate(
        "el => el.scrollWidth - el.clientWidth"
    )
    assert table_overflow == 0, f"the invoices scroll sideways by {table_overflow} px"
    dashboard.screenshot("customer-panel-phone-invoices")


@pytest.fixture
def failing_sandbox(sandbox):
    """The shared sandbox, its faults cleared again however the test ends."""
    yield sandbox
    sandbox.reset()


def test_failing_invoices_show_in_their_own_region_and_retry_loads_them(
    dashboard, data, failing_sandbox
):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    customer = first_with_invoices(data, dashboard)

    # The panel's regions load side by side, in no fixed order: invoices fail by name.
    failing_sandbox.reset()
    failing_sandbox.inject_faults(failing_endpoints=["invoices"], fail_status=503)
    dashboard.results.locator(f'tr[data-customer-id="{customer["id"]}"]').get_by_role(
        "link", name=customer["name"], exact=True
    ).click()
    panel = page.locator("aside#customer-panel")
    problem = panel.locator("#invoices").get_by_role("alert")
    expect(problem).to_contain_text("Could not load invoices.")
    expect(problem).to_contain_text("HTTP 503")
    expect(panel.get_by_role("heading", level=1)).to_have_text(customer["name"])
    dashboard.screenshot("customer-panel-invoices-failed")

    failing_sandbox.reset()
    dashboard.swap(panel.locator("#invoices").get_by_role("link", name="Retry").click)
    expect(panel.locator("#invoices tbody tr[data-invoice-id]")).to_have_count(12)
    expect(panel.locator("#invoices").get_by_role("alert")).to_have_count(0)


def test_the_row_being_opened_says_so_while_metronome_is_slow(dashboard, data, failing_sandbox):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    customer = first_with_invoices(data, dashboard)
    row = dashboard.results.locator(f'tr[data-customer-id="{customer["id"]}"]')

    failing_sandbox.inject_faults(latency_s=1.0)
    row.get_by_role("link", name=customer["name"], exact=True).click()

    expect(row).to_have_class(re.compile(r"\bopening\b"))
    expect(page.locator("aside#customer-panel")).to_be_visible()
    expect(row).not_to_have_class(re.compile(r"\bopening\b"))
