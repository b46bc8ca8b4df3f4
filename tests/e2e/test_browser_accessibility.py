"""axe-core, run inside the page, finds no accessibility violations on the customers list
(laptop and phone), the login page and the error states.

axe comes from the npm registry (scripts/ensure-axe.sh). It is added as an init script,
which Playwright injects outside the page's Content-Security-Policy, so the page itself keeps
its policy (and the conftest still fails a test on any violation of it)."""

from playwright.sync_api import expect


def test_the_login_page_has_no_accessibility_violations(dashboard, axe):
    dashboard.page.goto("/accounts/login/")
    assert axe(dashboard.page) == []
    dashboard.page.get_by_label("Username").fill("support")
    dashboard.page.get_by_label("Password").fill("wrong password")
    dashboard.page.get_by_role("button", name="Log in").click()
    expect(dashboard.page.get_by_role("alert")).to_be_visible()
    assert axe(dashboard.page) == []


def test_the_customers_list_has_no_accessibility_violations(dashboard, axe):
    dashboard.log_in("support")
    assert axe(dashboard.page) == []
    dashboard.show("Archived")
    assert axe(dashboard.page) == []
    dashboard.page.set_viewport_size({"width": 390, "height": 844})
    assert axe(dashboard.page) == []


def test_the_error_states_have_no_accessibility_violations(dashboard, sandbox, axe, problems):
    dashboard.log_in("support")
    page = dashboard.page
    # A filter the form refuses.
    page.get_by_label("Customer IDs").fill("not-a-uuid")
    dashboard.search()
    expect(dashboard.results.get_by_role("alert")).to_contain_text("Check the filters")
    assert axe(page) == []
    # Metronome failing.
    sandbox.inject_faults(fail_every=1, fail_status=500)
    try:
        page.goto("/customers/")
        expect(dashboard.results.get_by_role("alert")).to_contain_text("Could not load")
        assert axe(page) == []
    finally:
        sandbox.reset()
    # Not allowed (Support may not download) and not found.
    page.goto("/customers/export.csv")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert axe(page) == []
    page.goto("/no-such-page/")
    assert axe(page) == []
    # Chromium logs the two refused loads themselves; nothing else may have gone wrong.
    assert len(problems.console_errors) == 2 and all(
        "Failed to load resource" in error for error in problems.console_errors
    ), problems.console_errors
    problems.console_errors.clear()
