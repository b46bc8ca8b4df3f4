"""The browser tests' set-up: the real dashboard under gunicorn, talking over a real socket to
a standalone sandbox, driven in Debian's chromium through Playwright.

One sandbox and one dashboard serve the whole run; every test gets a fresh browser context
(no cookies, no storage), logs in through the real login form, and fails at teardown if the
page logged a console error, threw, broke the Content-Security-Policy or got a 5xx.

Without /usr/bin/chromium the tests are skipped with one line saying why, unless
REQUIRE_E2E=1 (set by .ci/run), which makes that an error. Screenshots of the main states go
to test-artifacts/screenshots/; with UPDATE_README_SCREENSHOT=1 those the README shows are
also copied to docs/ (the laptop and phone layouts, from test_browser_table.py).
"""

import contextlib
import dataclasses
import functools
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from customers.sandbox import SandboxAPI, SandboxServer, generate_customers
from tests.factories import salesforce_id_of

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# Playwright cannot download browsers here; these flags work for Debian's chromium in CI
# containers (root, no GPU, no network besides localhost). `launch` adds --headless and
# gives every browser a fresh, temporary user-data directory.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCS = ROOT / "docs"
VIEWPORT = {"width": 1440, "height": 900}
# For `evaluate_all`: the elements holding a word wider than their room (their width less
# padding), so broken inside the word or cut with "…"; their text.
WORD_TOO_WIDE = """elements => elements.filter(element => {
    const style = getComputedStyle(element);
    const room = element.clientWidth - parseFloat(style.paddingLeft)
        - parseFloat(style.paddingRight);
    const probe = document.createElement('span');
    probe.style.whiteSpace = 'nowrap';
    element.appendChild(probe);  // in the element: its font
    const tooWide = element.textContent.trim().split(/\\s+/).some(word => {
        probe.textContent = word;
        return probe.getBoundingClientRect().width > room + 0.5;
    });
    probe.remove();
    return tooWide;
}).map(element => element.textContent)"""
PASSWORD = "metronome-demo"  # ensure_demo_user's password for demo, support and finance
SKIP_REASON = "chromium not installed: run scripts/ensure-chromium.sh (CI requires these tests)"

# Counts finished htmx swaps, so a test can wait for the one its click started; and records
# Content-Security-Policy violations, also reporting them to Python so that none is lost when
# the page navigates away.
INIT_SCRIPT = """
window.__htmxSwaps = 0;
window.__cspViolations = [];
for (const name of ["htmx:afterSettle", "htmx:historyRestore"]) {
  document.addEventListener(name, () => { window.__htmxSwaps += 1; });
}
document.addEventListener("securitypolicyviolation", (event) => {
  const text = `${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || location.href}:${event.lineNumber}`;
  window.__cspViolations.push(text);
  window.__reportCspViolation(text);
});
"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists() or os.environ.get("REQUIRE_E2E") == "1":
        return
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    # pytest lists a skip under each test file's name; one place for all makes it one line.
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and SKIP_REASON in report.longrepr[2]:
        report.longrepr = (str(HERE / "conftest.py"), None, SKIP_REASON)
    return report


@pytest.fixture(scope="session", autouse=True)
def _chromium() -> None:
    """In CI (REQUIRE_E2E=1) a missing browser fails every browser test instead."""
    if not CHROMIUM.exists():
        pytest.fail(f"REQUIRE_E2E=1 but {CHROMIUM} is missing: run scripts/ensure-chromium.sh")


# --- The sandbox and the dashboard -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sandbox:
    url: str

    def inject_faults(self, **faults: Any) -> None:
        """Change the standalone sandbox's faults while it runs, as a person would."""
        httpx.post(f"{self.url}/_sandbox/faults", json=faults).raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sandbox/reset").raise_for_status()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The standalone sandbox with its default data (5,000 customers, default seed), which
    `generate_customers()` reproduces for the expected values."""
    with SandboxServer(SandboxAPI(), host="127.0.0.1", port=0) as server:
        yield Sandbox(server.url)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard under gunicorn with the project's gunicorn.conf.py, on a fresh SQLite
    database holding the demo logins and the customer index, reading the standalone
    sandbox."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        # Set, even if empty, so a developer's .env cannot swap in a real token or database.
        "METRONOME_BEARER_TOKEN": "",
        "METRONOME_BASE_URL": sandbox.url,
        "METRONOME_MAX_RETRIES": "0",
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'db.sqlite3'}",
        "CACHE_URL": "",
        # One server for the whole session: a page cached by one test would answer another
        # (one that injects faults) without a call. The cache has its own tests.
        "API_PAGE_CACHE_SECONDS": "0",
        # DEBUG serves the static files through WhiteNoise's finders, with no collectstatic.
        "DEBUG": "true",
        "ALLOWED_HOSTS": "",
        "SALESFORCE_BASE_URL": "",
        "PYTHONUNBUFFERED": "1",
    }
    # sync_customers builds the customer index from the sandbox, as `make run` does, so
    # name search works from the first page.
    for command in (["migrate", "--noinput"], ["ensure_demo_user"], ["sync_customers"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )

    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "e2e-server.log"
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8"]
    # Its control socket has one path per user: it would collide with other gunicorns.
    command += ["--no-control-socket"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "dashboard.wsgi"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_healthy(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the dashboard did not answer /healthz within 30 s:\n{log_path.read_text()}")


# --- The browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium per test module. Not per session: while Playwright's sync API runs, its
    event loop counts as running, and Django's ORM in the other test modules would refuse to
    work ("SynchronousOnlyOperation")."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@dataclasses.dataclass
class PageProblems:
    """What a person would never want a page to do, gathered over a whole test."""

    console_errors: list[str] = dataclasses.field(default_factory=list)
    page_errors: list[str] = dataclasses.field(default_factory=list)
    csp_violations: list[str] = dataclasses.field(default_factory=list)
    server_errors: list[str] = dataclasses.field(default_factory=list)

    def _lists(self) -> list[list[str]]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    def clear(self) -> None:
        for problems in self._lists():
            problems.clear()

    def __bool__(self) -> bool:
        return any(self._lists())

    def provoked_at(self, path: str) -> None:
        """A server error the test provoked at `path` on purpose (and chromium's console
        line about it): there must be one, and all there is comes from `path`; then they
        are cleared, so anything else still fails the test."""
        assert self.server_errors, f"{path} answered no error"
        for errors in (self.server_errors, self.console_errors):
            assert all(path in error for error in errors), errors
            errors.clear()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def context(browser: Browser, app_url: str, problems: PageProblems) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=app_url, viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(10_000)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url)
    context.expose_binding(
        "__reportCspViolation", lambda source, text: problems.csp_violations.append(text)
    )
    context.add_init_script(INIT_SCRIPT)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, app_url: str, problems: PageProblems) -> Iterator[Page]:
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            problems.console_errors.append(f"{message.text} ({message.location.get('url')})")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            problems.server_errors.append(f"{response.status} {response.url}")
            if response.status >= 500 and response.url.startswith(app_url)
            else None
        ),
    )
    yield page
    # The binding reports violations as they happen; the page's own list is a second source
    # in case a report was still in flight.
    with contextlib.suppress(PlaywrightError):
        for violation in page.evaluate("window.__cspViolations || []"):
            if violation not in problems.csp_violations:
                problems.csp_violations.append(violation)
    assert not problems, f"the pages misbehaved: {problems}"


# --- The dashboard as a person uses it ------------------------------------------------------


class Dashboard:
    """The customers page through a person's eyes and hands: what they click, what they see."""

    def __init__(self, page: Page):
        self.page = page
        self.results = page.locator("#results")

    def log_in(self, username: str) -> None:
        self.page.goto("/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url("**/customers/")
        expect(self.page.get_by_role("heading", name="Customers")).to_be_visible()

    def swap(self, action: Callable[[], object]) -> None:
        """Do `action` (a click, Back) and wait until htmx has swapped in its answer."""
        swaps = self.page.evaluate("window.__htmxSwaps")
        action()
        self.page.wait_for_function("swaps => window.__htmxSwaps > swaps", arg=swaps)

    def next(self) -> None:
        self.swap(self.results.locator("a[rel=next]").click)

    def previous(self) -> None:
        self.swap(self.results.locator("a[rel=prev]").click)

    def first(self) -> None:
        self.swap(self.results.get_by_role("link", name=re.compile(r"First$")).click)

    def search(self) -> None:
        self.swap(self.page.get_by_role("button", name="Search").click)

    def show(self, state: str) -> None:
        """Flip the Active/Archived toggle (the radio is hidden; its label is what shows)."""
        self.swap(self.page.locator("label.toggle-option", has_text=state).click)

    def row_ids(self) -> list[str]:
        # The page's contract with outside scripts (tests/pages/test_page_contract.py).
        return self.results.locator("[data-customer-id]").evaluate_all(
            "rows => rows.map(row => row.dataset.customerId)"
        )

    def all_row_ids(self) -> list[str]:
        """The rows of this page and of every page after it, following Next."""
        ids = self.row_ids()
        while self.results.locator("a[rel=next]").count():
            self.next()
            ids += self.row_ids()
        return ids

    def page_label(self) -> str:
        paging = self.results.locator(".paging .muted")
        return paging.inner_text() if paging.count() else "Page 1"

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.page.url).query)

    def screenshot(self, name: str, *, readme: str = "") -> None:
        """Save a screenshot; with `readme` ("phone.png") also the README's picture of that
        name in docs/, when UPDATE_README_SCREENSHOT=1."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # caret="initial": hiding the caret leaves `style=""` on the form fields, which htmx's
        # settle step then copies with setAttribute, a violation of `style-src 'self'`.
        self.page.screenshot(path=path, caret="initial")
        if readme and os.environ.get("UPDATE_README_SCREENSHOT") == "1":
            shutil.copyfile(path, DOCS / readme)


@pytest.fixture(scope="session", autouse=True)
def _fresh_screenshots_folder() -> None:
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()


@pytest.fixture
def dashboard(page: Page) -> Dashboard:
    return Dashboard(page)


# --- Expected data, straight from the sandbox's generator -------------------------------------


@dataclasses.dataclass(frozen=True)
class Paste:
    """A list of Salesforce account IDs as a person would paste it, and what it should find."""

    ids: list[str]  # in pasted order
    active: list[str]
    archived: list[str]  # belong only to archived customers
    unknown: list[str]  # well formed, but nobody's
    rows: frozenset[str]  # the Metronome IDs of the active customers it matches

    @property
    def text(self) -> str:
        return "\n".join(self.ids)


@dataclasses.dataclass(frozen=True)
class SandboxData:
    """The sandbox's customers in its result order (created_at, then id)."""

    customers: list[dict[str, Any]]

    @functools.cached_property
    def active(self) -> list[str]:
        return [c["id"] for c in self.customers if c.get("archived_at") is None]

    @functools.cached_property
    def archived(self) -> list[str]:
        return [c["id"] for c in self.customers if c.get("archived_at") is not None]

    @functools.cached_property
    def by_id(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.customers}

    def paste(self, *, active: int, archived: int, unknown: int, seed: int) -> Paste:
        """Salesforce IDs of `active` active customers, `archived` IDs that only archived
        customers have and `unknown` IDs nobody has, shuffled as a real report would be."""
        rng = random.Random(seed)
        stored = [c for c in self.customers if salesforce_id_of(c)]
        active_ids = {salesforce_id_of(c) for c in stored if c.get("archived_at") is None}
        archived_ids = {salesforce_id_of(c) for c in stored if c.get("archived_at")}
        only_archived = sorted(archived_ids - active_ids)
        picked_active = rng.sample(sorted(active_ids), active)
        picked_archived = rng.sample(only_archived, archived)
        picked_unknown = [f"001E2E{rng.randrange(10**12):012d}" for _ in range(unknown)]
        assert not set(picked_unknown) & (active_ids | archived_ids)
        ids = [*picked_active, *picked_archived, *picked_unknown]
        rng.shuffle(ids)
        wanted = set(picked_active)
        rows = frozenset(
            c["id"]
            for c in self.customers
            if c.get("archived_at") is None and salesforce_id_of(c) in wanted
        )
        return Paste(ids, picked_active, picked_archived, picked_unknown, rows)


@pytest.fixture(scope="session")
def data() -> SandboxData:
    return SandboxData(generate_customers())


# axe-core, injected by a fixture that the accessibility tests and the customer view share.
AXE = HERE / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.x A and AA, and axe's best practices (landmarks, headings, regions).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@pytest.fixture
def axe(context):
    if not AXE.exists():
        if os.environ.get("REQUIRE_E2E") == "1":
            pytest.fail(f"{AXE} is missing: run scripts/ensure-axe.sh")
        pytest.skip("axe-core not installed: run scripts/ensure-axe.sh")
    context.add_init_script(path=str(AXE))

    def violations(page) -> list[str]:
        # A click that navigates returns once the new page is committed, which can be before
        # its stylesheet applies; axe would then judge unstyled links (CI saw the skip link
        # and the brand "overlap" as 18 px targets). Judge the page as people see it.
        page.wait_for_load_state("load")
        result = page.evaluate(
            "tags => axe.run(document, { runOnly: { type: 'tag', values: tags } })", AXE_TAGS
        )
        return [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + json.dumps([node["target"] for node in v["nodes"][:6]])
            for v in result["violations"]
        ]

    return violations
