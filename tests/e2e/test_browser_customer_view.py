"""The customer view's regions in a real browser: every region filled, a day's usage on
focus, line items on demand, the PDF download for Finance, one region failing alone and its
retry, the panel with every region; laptop and phone, axe clean."""

import json

import pytest
from playwright.sync_api import expect

from customers.sandbox import SANDBOX_TOKEN, SandboxAPI

pytestmark = pytest.mark.e2e

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
HEADERS = {"authorization": f"Bearer {SANDBOX_TOKEN}"}
REGIONS = {
    "alerts": "Alerts",
    "contracts": "Contracts",
    "balances": "Commits and credits",
    "usage": "Usage, last 30 days",
    "invoices": "Recent invoices",
}


@pytest.fixture(scope="module")
def local() -> SandboxAPI:
    """The same data as the running sandbox (default seed and size, the same day)."""
    return SandboxAPI()


def _post(api: SandboxAPI, path: str, customer_id: str) -> list[dict]:
    body = json.dumps({"customer_id": customer_id, "include_balance": True}).encode()
    return json.loads(api.handle("POST", path, "", HEADERS, body)[2])["data"]


def rich(api: SandboxAPI, among: list[str] | None = None) -> dict:
    """An active customer with an alert in alarm, three contracts and four balances."""
    wanted = set(among) if among is not None else None
    for customer in api.customers:
        if customer.get("archived_at") or (wanted is not None and customer["id"] not in wanted):
            continue
        if len(customer["name"]) > 30:
            continue
        alerts = _post(api, "/v1/customer-alerts/list", customer["id"])
        if not any(a["customer_status"] == "in_alarm" for a in alerts):
            continue
        if len(_post(api, "/v2/contracts/list", customer["id"])) < 2:
            continue
        if len(_post(api, "/v1/contracts/customerBalances/list", customer["id"])) >= 3:
            return customer
    raise AssertionError("no rich customer")


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def test_every_region_of_the_customer_view_at_laptop_and_phone_size(dashboard, local, axe):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("finance")
    customer = rich(local)
    page.goto(f"/customers/{customer['id']}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(customer["name"])
    for region, heading in REGIONS.items():
        section = page.locator(f"section#{region}")
        expect(section.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(section.get_by_role("alert")).to_have_count(0)

    # Each ID beside its Copy button, not wrapped under it, at a laptop's width.
    for row in page.locator(".customer-fields > div").filter(has=page.locator("button")).all():
        value = row.locator("code").first.bounding_box()
        copy = row.locator("button").first.bounding_box()
        assert value and copy and copy["y"] < value["y"] + value["height"], row.inner_text()

    dashboard.screenshot("customer-view-laptop", readme="customer-view.png")

    # Alerts in alarm first, unmistakable.
    expect(page.locator("#alerts .alert-card").first).to_have_class("card alert-card in-alarm")
    expect(page.locator("#alerts .alert-card").first).to_contain_text("In alarm")
    # The current contract first.
    expect(page.locator("#contracts .phase-heading").first).to_have_text("Current")
    # Each balance with its bar; spent ones last.
    balances = page.locator("#balances li.balance")
    expect(page.locator("#balances meter")).to_have_count(balances.count())

    # A day's usage on focus, the same as in its table. A chart is one Tab stop: the arrow
    # keys move between its days, and Tab leaves it for its table.
    chart = page.locator("#usage figure").first
    bars = chart.locator("g.bar")
    bars.first.focus()
    expect(bars.first).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(bars.nth(1)).to_be_focused()
    label = bars.nth(1).get_attribute("aria-label")
    # Shown on the page too, not only to a screen reader or in a mouse's tooltip.
    expect(chart.locator("[data-readout]")).to_have_text(label)
    bars.nth(3).hover()
    expect(chart.locator("[data-readout]")).to_have_text(bars.nth(3).get_attribute("aria-label"))
    bars.nth(1).focus()
    page.keyboard.press("Tab")
    expect(chart.locator("summary")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(bars.nth(1)).to_be_focused()  # back where the person left the chart
    page.keyboard.press("End")
    expect(bars.last).to_be_focused()
    # A day clicked is where Tab comes back to, as one reached by the keys.
    bars.nth(5).click()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    expect(bars.nth(5)).to_be_focused()
    chart.locator("summary").click()
    second_row = chart.locator("tbody tr").nth(1)
    assert (
        label == f"{second_row.locator('th').inner_text()}: {second_row.locator('td').inner_text()}"
    )
    expect(chart.locator("tbody tr")).to_have_count(30)

    assert axe(page) == []

    # Line items on demand, under their invoice.
    first_invoice = page.locator("#invoices tbody tr[data-invoice-id]").first
    invoice_id = first_invoice.get_attribute("data-invoice-id")
    dashboard.swap(first_invoice.get_by_role("link", name="Line items").click)
    lines = page.locator(f"#lines-{invoice_id}")
    expect(lines).to_be_visible()
    expect(lines.locator("table.line-items tbody tr").first).to_be_visible()

    # The PDF, downloaded through the dashboard.
    with page.expect_download() as download_info:
        first_invoice.get_by_role("link", name="PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"invoice-{invoice_id}.pdf"
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    page.set_viewport_size(PHONE)
    page.goto(f"/customers/{customer['id']}/")
    expect(page.locator("section#alerts")).to_be_in_viewport()
    no_horizontal_scroll(page)
    dashboard.screenshot("customer-view-phone", readme="customer-view-phone.png")
    assert axe(page) == []


def open_with_failing(dashboard, local, sandbox, endpoint: str) -> dict:
    """Support's view of a rich customer, at laptop size, with `endpoint` failing (the
    caller resets the sandbox)."""
    dashboard.page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    customer = rich(local)
    sandbox.inject_faults(failing_endpoints=[endpoint])
    dashboard.page.goto(f"/customers/{customer['id']}/")
    return customer


def test_one_failing_region_says_so_and_its_retry_brings_it_back(
    dashboard,
    local,
    sandbox,
    axe,
):
    page = dashboard.page
    try:
        open_with_failing(dashboard, local, sandbox, "balances")
        broken = page.locator("section#balances")
        expect(broken.get_by_role("alert")).to_contain_text("Could not load commits and credits.")
        for region in REGIONS:
            if region != "balances":
                expect(page.locator(f"section#{region}").get_by_role("alert")).to_have_count(0)
        expect(page.locator("#contracts .card").first).to_be_visible()
        # Support may not export: no PDF links.
        expect(page.locator("#invoices").get_by_role("link", name="PDF")).to_have_count(0)
        dashboard.screenshot("customer-view-region-failing")
        assert axe(page) == []
        # Failing again: the new Retry has focus, not the page's body.
        dashboard.swap(broken.get_by_role("link", name="Retry loading commits and credits").click)
        expect(broken.get_by_role("link", name="Retry loading commits and credits")).to_be_focused()
    finally:
        sandbox.reset()
    dashboard.swap(broken.get_by_role("link", name="Retry loading commits and credits").click)
    expect(page.locator("section#balances").get_by_role("alert")).to_have_count(0)
    expect(page.locator("#balances meter").first).to_be_visible()
    # Back: focus on the region's heading, where a keyboard or screen-reader user goes on.
    expect(page.locator("#balances h2")).to_be_focused()
    dashboard.screenshot("customer-view-region-retried")


def test_the_customers_own_retry_lands_focus_on_the_customer(dashboard, local, sandbox, problems):
    page = dashboard.page
    try:
        customer = open_with_failing(dashboard, local, sandbox, "customer")
        problem = page.locator("#customer > .problem")
        expect(problem).to_contain_text("Could not load this customer.")
        # The other regions answered and stay.
        expect(page.locator("#contracts .card").first).to_be_visible()
        dashboard.swap(problem.get_by_role("link", name="Retry").click)
        # Failing again: the new Retry has focus, not the page's body.
        retry = page.locator("#customer > .problem").get_by_role("link", name="Retry")
        expect(retry).to_be_focused()

        # A Retry whose connection drops brings nothing back; opening an invoice's line
        # items later (inside the same #customer) keeps focus where the person clicked.
        retry_path = retry.get_attribute("hx-get")
        page.route(lambda url: url.endswith(retry_path), lambda route: route.abort())
        with page.expect_event("requestfailed"):
            retry.click()
        page.wait_for_function("() => !document.querySelector('.htmx-request')")
        page.unroute_all()
        first_invoice = page.locator("#invoices tbody tr[data-invoice-id]").first
        lines_link = first_invoice.get_by_role("link", name="Line items")
        dashboard.swap(lines_link.click)
        expect(page.locator("#invoices table.line-items").first).to_be_visible()
        expect(lines_link).to_be_focused()
        # The dropped connection is logged by chromium and htmx: expected here.
        expected = ("net::ERR_FAILED", "htmx:sendError", "htmx:afterRequest")
        assert all(any(text in error for text in expected) for error in problems.console_errors), (
            problems.console_errors
        )
        problems.console_errors.clear()
    finally:
        sandbox.reset()
    dashboard.swap(retry.click)
    expect(page.locator("#customer > .problem")).to_have_count(0)
    expect(page.locator("h1#customer-name")).to_have_text(customer["name"])
    expect(page.locator("h1#customer-name")).to_be_focused()


def test_a_pdf_metronome_cannot_give_says_so_instead_of_downloading(
    dashboard, local, sandbox, problems
):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("finance")
    customer = rich(local)
    page.goto(f"/customers/{customer['id']}/")
    pdf = page.locator("#invoices tbody tr[data-invoice-id]").first.get_by_role("link", name="PDF")
    try:
        sandbox.inject_faults(failing_endpoints=["invoice_pdf"])
        pdf.click()
        # The invoice's page, saying why, with a way back: not a click that does nothing.
        expect(page.get_by_role("alert")).to_be_visible()
        expect(page.get_by_role("link", name="Back to the customer")).to_be_visible()
    finally:
        sandbox.reset()
    problems.provoked_at("/pdf")  # its 502


def test_the_panel_shows_every_region(dashboard, local):
    page = dashboard.page
    page.set_viewport_size(LAPTOP)
    dashboard.log_in("support")
    customer = rich(local, among=dashboard.row_ids())
    row = dashboard.results.locator(f'tr[data-customer-id="{customer["id"]}"]')
    row.get_by_role("link", name=customer["name"], exact=True).click()
    panel = page.locator("aside#customer-panel")
    expect(panel).to_be_visible()
    for region, heading in REGIONS.items():
        section = panel.locator(f"section#{region}")
        expect(section.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(panel.locator("#alerts .alert-card.in-alarm").first).to_be_visible()
    expect(panel.locator("#usage g.bar").first).to_be_attached()
    no_horizontal_scroll(page)
