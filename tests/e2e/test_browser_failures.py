"""What a person sees when Metronome fails, and a check that the watch for console errors
and Content-Security-Policy violations, which every browser test relies on, really sees them."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture
def failing_sandbox(sandbox):
    """The shared sandbox, its faults cleared again however the test ends."""
    yield sandbox
    sandbox.reset()


def test_a_failing_api_shows_its_error_in_the_table_region_and_retry_recovers(
    dashboard, data, failing_sandbox
):
    dashboard.log_in("support")
    page = dashboard.page
    failing_sandbox.inject_faults(fail_every=1, fail_status=503)

    dashboard.next()
    problem = dashboard.results.get_by_role("alert")
    expect(problem).to_contain_text("Could not load customers.")
    expect(problem).to_contain_text("Metronome is not answering normally (HTTP 503)")
    expect(page.locator("#announcement")).to_contain_text("Could not load customers.")
    # Only the table region changed: the filters and the header are still there.
    expect(page.locator("#filters")).to_be_visible()
    expect(page.locator("#results")).to_have_count(1)
    assert dashboard.row_ids() == []
    dashboard.screenshot("04-error")

    # A reload while it still fails is a whole page, with the error in the same place.
    page.reload()
    expect(page.get_by_role("banner")).to_be_visible()
    expect(dashboard.results.get_by_role("alert")).to_contain_text("HTTP 503")

    # Retry while it still fails: focus lands on the new Retry, not on the page's body.
    dashboard.swap(dashboard.results.get_by_role("link", name="Retry").click)
    expect(dashboard.results.get_by_role("link", name="Retry")).to_be_focused()

    failing_sandbox.reset()
    dashboard.swap(dashboard.results.get_by_role("link", name="Retry").click)
    expect(dashboard.results.get_by_role("alert")).to_have_count(0)
    # Its answer replaced the link that had focus: focus moves to the new rows' count.
    expect(page.locator("#row-count")).to_be_focused()
    assert dashboard.page_label() == "Page 2"
    assert dashboard.row_ids() == data.active[50:100]


def test_the_page_watch_reports_console_errors_and_csp_violations(dashboard, problems):
    dashboard.log_in("support")
    page = dashboard.page
    assert not problems

    def soon(condition) -> bool:
        """Events reach Python a little after the page fires them."""
        for _ in range(50):
            if condition():
                return True
            page.wait_for_timeout(100)
        return False

    # An inline script, as an injection would add: the policy must block it, and say so.
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__inlineRan = true";
          document.body.append(script);
        }"""
    )
    assert soon(lambda: problems.csp_violations and problems.console_errors), problems
    assert page.evaluate("window.__inlineRan") is None
    assert any("script-src" in violation for violation in problems.csp_violations)
    assert any("Content Security Policy" in error for error in problems.console_errors)

    page.evaluate("setTimeout(() => { throw new Error('boom'); })")
    assert soon(lambda: problems.page_errors), problems
    assert problems.page_errors == ["boom"]

    # All seen as they should be: nothing left for the watch to fail this test on.
    page.evaluate("window.__cspViolations = []")
    problems.clear()
