"""Who may see and export what, and a dashboard that is safe on the open internet: logins,
groups, throttling, security headers, markup the Content-Security-Policy allows, friendly
error pages, a bearer token that never leaks, and hostile input that never causes a 5xx or
reflected markup. The settings as production computes them are in test_settings.py."""

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import quote, urlencode

import httpx
import pytest
from django.contrib.auth.models import Group, User
from django.db import DataError, connection
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers import listing, metronome, wiring
from customers.login_throttle import client_ip_address
from customers.models import ExportAudit
from customers.sandbox import SandboxAPI, SandboxServer, SandboxTransport

pytestmark = pytest.mark.django_db

LIST_URL = "/customers/"
EXPORT_URL = "/customers/export.csv"
LOGIN_URL = "/accounts/login/"
PASSWORD = "correct horse battery staple"
# Recognisable in any output; the marker alone also catches a truncated or partial leak.
TOKEN = "tok_LEAKCHECK_7f3a9c"
TOKEN_MARKER = "LEAKCHECK"


# --- Fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Each login attempt hashes a password; PBKDF2's default rounds would make this file slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(username: str, *groups: str, **fields) -> User:
    user = User.objects.create_user(username, password=PASSWORD, **fields)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sandbox(install_sandbox) -> SandboxAPI:
    return install_sandbox(300)


@pytest.fixture
def metronome_calls(install_client) -> list[httpx.Request]:
    """A Metronome client that records, and refuses, every call."""
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("this test must not call Metronome", request=request)

    install_client(httpx.MockTransport(refuse))
    return calls


@pytest.fixture
def support_user(db) -> User:
    return make_user("sam", "Support")


@pytest.fixture
def finance_user(db) -> User:
    return make_user("fiona", "Finance")


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


def body_of(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def text_of(response) -> str:
    return body_of(response).decode("utf-8", "replace")


def active_ids(api: SandboxAPI) -> list[str]:
    return [c["id"] for c in api.customers if not c.get("archived_at")]


# --- Access: logins and redirects -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "next_path"),
    [
        ("/", "/"),
        ("/customers/", "/customers/"),
        ("/customers/?limit=10&only_archived=true", "/customers/?limit=10&only_archived=true"),
        ("/customers/export.csv", "/customers/export.csv"),
    ],
)
def test_anonymous_requests_are_redirected_to_the_login_page(
    client, metronome_calls, path, next_path
):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={quote(next_path, safe='/')}"
    assert metronome_calls == []


@pytest.mark.parametrize(
    ("path", "login_page"),
    [
        # The admin's index sends people to the admin's own login form (throttled alike).
        ("/admin/", "/admin/login/"),
        ("/admin/customers/exportaudit/", LOGIN_URL),
        ("/admin/auth/user/", LOGIN_URL),
    ],
)
def test_anonymous_admin_requests_are_redirected_to_a_login_page(client, path, login_page):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{login_page}?next={path}"


def test_an_anonymous_search_post_is_redirected_and_never_reaches_metronome(
    client, metronome_calls
):
    response = client.post(LIST_URL, {"ingest_alias": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN_URL}?next=")
    assert metronome_calls == []


def test_an_anonymous_htmx_request_gets_hx_redirect_instead_of_a_login_page_in_the_table(
    client, metronome_calls
):
    response = client.get(f"{LIST_URL}?limit=10", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{LOGIN_URL}?next=/customers/%3Flimit%3D10"
    assert response.content == b""
    assert metronome_calls == []


@pytest.mark.parametrize("method", ["get", "head"])
def test_healthz_answers_without_login_metronome_or_database(
    method, client, metronome_calls, django_assert_num_queries
):
    with django_assert_num_queries(0):
        # Probes use the container's address, which is not in ALLOWED_HOSTS.
        response = getattr(client, method)("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert metronome_calls == []


def test_the_login_page_is_styled_like_the_dashboard(client):
    response = client.get(LOGIN_URL)
    body = response.content.decode()
    assert response.status_code == 200
    assert "/static/css/dashboard.css" in body and 'class="topbar"' in body
    assert 'name="csrfmiddlewaretoken"' in body


def test_logging_in_leads_to_the_customers_page(client, support_user, sandbox):
    response = client.post(LOGIN_URL, {"username": "sam", "password": PASSWORD})
    # Through `/`, which sends a person with a landing view there (tests/test_saved_views.py).
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/")["Location"] == LIST_URL
    assert client.get(LIST_URL).status_code == 200


def test_logging_in_never_redirects_to_another_site(client, support_user):
    response = client.post(
        f"{LOGIN_URL}?next=https://evil.example/", {"username": "sam", "password": PASSWORD}
    )
    assert response["Location"] == "/"


def test_a_wrong_password_says_so_clearly(client, support_user):
    response = client.post(LOGIN_URL, {"username": "sam", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_is_a_post_that_ends_the_session(support_user, sandbox):
    client = client_for(support_user)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get(LIST_URL).status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == LOGIN_URL
    assert client.get(LIST_URL).status_code == 302


def test_pages_show_a_logout_form_not_a_logout_link(support_user, sandbox):
    body = client_for(support_user).get(LIST_URL).content.decode()
    assert re.search(r'<form method="post" action="/accounts/logout/">', body)
    assert 'href="/accounts/logout/"' not in body


# --- Groups and permissions -------------------------------------------------------------------


def test_migrate_creates_the_groups_with_exactly_their_permissions():
    granted = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }
    assert granted == {
        "Support": {"customers.view_customers"},
        "Finance": {"customers.view_customers", "customers.export_customers"},
        "Index maintainers": {"customers.view_customers", "customers.sync_index"},
        # A role on top of the other two: it manages shared saved views, and sees nothing.
        "Managers": {"customers.manage_shared_views"},
    }


def test_support_sees_customers_without_a_download_button_and_may_not_download(
    support_user, sandbox
):
    client = client_for(support_user)
    page = client.get(LIST_URL)
    fragment = client.get(LIST_URL, HTTP_HX_REQUEST="true")
    assert page.status_code == 200 and fragment.status_code == 200
    for response in (page, fragment):
        assert "Download CSV" not in response.content.decode()
        assert EXPORT_URL not in response.content.decode()
    export = client.get(EXPORT_URL)
    assert export.status_code == 403
    assert "Not allowed" in export.content.decode()
    # Only Finance grants the download: the page names it, not "Support or Finance".
    assert "may not download Metronome customers as CSV" in export.content.decode()
    assert "add you to the <strong>Finance</strong> group" in export.content.decode()
    assert not ExportAudit.objects.exists()


def test_finance_sees_the_download_button_and_may_download(finance_user, sandbox):
    client = client_for(finance_user)
    body = client.get(f"{LIST_URL}?only_archived=true").content.decode()
    assert re.search(r'<a class="button" id="download-csv" href="/customers/export\.csv\?', body)
    download = client.get(f"{EXPORT_URL}?only_archived=true")
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    body_of(download)
    assert ExportAudit.objects.get().username == "fiona"


def test_a_user_in_no_group_may_see_nothing(sandbox):
    client = client_for(make_user("nobody"))
    for url in (LIST_URL, f"{LIST_URL}?limit=10", EXPORT_URL):
        assert client.get(url).status_code == 403
    assert client.get(LIST_URL, HTTP_HX_REQUEST="true").status_code == 403
    assert client.post(LIST_URL, {"ingest_alias": "x"}).status_code == 403
    assert sandbox.request_count == 0


def test_the_403_page_names_every_group_that_grants_what_was_refused(sandbox):
    body = client_for(make_user("nobody")).get(LIST_URL).content.decode()
    assert "may not view Metronome customers" in body
    assert (
        "<strong>Finance</strong>, <strong>Index maintainers</strong> or "
        "<strong>Support</strong> group"
    ) in body


def test_an_htmx_request_refused_with_403_reloads_the_page_to_show_why(sandbox):
    client = client_for(make_user("revoked"))
    refused = client.get(f"{LIST_URL}?limit=10", HTTP_HX_REQUEST="true")
    assert refused.status_code == 403 and refused["HX-Refresh"] == "true"
    # A full page load gets the friendly page as it is, without htmx's header.
    assert "HX-Refresh" not in client.get(LIST_URL)


def test_a_superuser_may_view_download_and_manage_users_in_the_admin(superuser, sandbox):
    client = client_for(superuser)
    body = client.get(LIST_URL).content.decode()
    assert "Download CSV" in body and 'href="/admin/"' in body
    assert read_to_the_end(client.get(EXPORT_URL)).status_code == 200
    for url in ("/admin/", "/admin/auth/user/", "/admin/auth/user/add/", "/admin/auth/group/"):
        assert client.get(url).status_code == 200, url
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "newbie",
            "password1": "a-Long-pass-phrase-9",
            "password2": "a-Long-pass-phrase-9",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="newbie").exists()


@pytest.mark.parametrize("groups", [("Support",), ("Finance",)])
def test_support_and_finance_staff_cannot_open_the_admin(groups):
    client = client_for(make_user("staffer", *groups))
    response = client.get("/admin/customers/exportaudit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- The export audit log in the admin ---------------------------------------------------------


@pytest.fixture
def audits(superuser, finance_user) -> list[ExportAudit]:
    rows = [
        ExportAudit.objects.create(user=finance_user, username="fiona", outcome="complete"),
        ExportAudit.objects.create(user=superuser, username="root", outcome="failed"),
        ExportAudit.objects.create(user=finance_user, username="fiona", outcome="complete"),
    ]
    # auto_now_add: move the first row to another year with update().
    ExportAudit.objects.filter(pk=rows[0].pk).update(started_at=datetime(2024, 1, 15, tzinfo=UTC))
    return rows


def test_the_audit_log_is_visible_in_the_admin_but_cannot_be_added_changed_or_deleted(
    superuser, audits
):
    client = client_for(superuser)
    changelist = client.get("/admin/customers/exportaudit/")
    body = changelist.content.decode()
    assert changelist.status_code == 200
    assert len(changelist.context["cl"].result_list) == 3
    assert "/admin/customers/exportaudit/add/" not in body
    assert 'name="action"' not in body  # no bulk "delete selected"

    audit = audits[1]
    change_url = f"/admin/customers/exportaudit/{audit.pk}/change/"
    change = client.get(change_url)
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert "/delete/" not in change.content.decode()

    assert client.get("/admin/customers/exportaudit/add/").status_code == 403
    assert client.post("/admin/customers/exportaudit/add/", {"username": "x"}).status_code == 403
    assert client.post(change_url, {"username": "forged", "outcome": "complete"}).status_code == 403
    delete_url = f"/admin/customers/exportaudit/{audit.pk}/delete/"
    assert client.get(delete_url).status_code == 403
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    bulk = client.post(
        "/admin/customers/exportaudit/",
        {"action": "delete_selected", "_selected_action": [a.pk for a in audits], "post": "yes"},
    )
    assert bulk.status_code < 500
    audit.refresh_from_db()
    assert audit.username == "root" and audit.outcome == "failed"
    assert ExportAudit.objects.count() == 3


def test_the_audit_log_can_be_filtered_by_user_and_by_date(superuser, audits):
    client = client_for(superuser)

    def shown(query: str) -> set[int]:
        response = client.get(f"/admin/customers/exportaudit/?{query}")
        assert response.status_code == 200
        return {row.pk for row in response.context["cl"].result_list}

    body = client.get("/admin/customers/exportaudit/").content.decode()
    assert "By username" in body and "By started at" in body
    assert shown("username=fiona") == {audits[0].pk, audits[2].pk}
    assert shown("username=root") == {audits[1].pk}
    assert shown("started_at__year=2024") == {audits[0].pk}
    january = (
        "started_at__gte=2024-01-01T00:00:00%2B00:00&started_at__lt=2024-02-01T00:00:00%2B00:00"
    )
    assert shown(january) == {audits[0].pk}
    assert shown("username=fiona&started_at__year=2024") == {audits[0].pk}


# --- Throttling failed logins -------------------------------------------------------------------


def attempt_login(client: Client, username: str, password: str, address: str):
    return client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


# Who is locked out by whose failures: tests/test_access.py.


def test_failures_below_the_limit_still_allow_a_correct_login(client, settings, support_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt_login(client, "sam", "wrong", "198.51.100.8")
    assert attempt_login(client, "sam", PASSWORD, "198.51.100.8").status_code == 302


def test_the_lockout_page_says_what_happened_and_how_long_to_wait(client, settings):
    settings.AXES_COOLOFF_TIME = 0.25  # hours
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = attempt_login(client, "sam", "wrong", "198.51.100.9")
    body = response.content.decode()
    assert response.status_code == 429
    assert "Too many failed logins" in body
    assert "Wait 15 minutes and try again" in body
    assert "PT15M" not in body
    assert "/static/css/dashboard.css" in body


def test_failures_at_the_admins_login_form_count_too(client, settings, superuser):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/admin/login/",
            {"username": "root", "password": "wrong"},
            REMOTE_ADDR="198.51.100.61",
        )
    locked = attempt_login(Client(), "root", PASSWORD, "198.51.100.61")
    assert locked.status_code == 429


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "a\x00b", "password": "x"},
        {"username": "root", "password": "\x00"},
        {"username": "x" * 100_000, "password": "y" * 100_000},
        {"username": '<script>alert("u")</script>', "password": "x"},
        {"username": ["root", "other"], "password": ["a", "b"]},
        {"username": "", "password": ""},
        {},
    ],
    ids=["nul username", "nul password", "huge", "html", "repeated", "empty", "missing"],
)
def test_hostile_login_attempts_never_5xx_nor_reflect_markup(
    client, superuser, postgres_rules, credentials
):
    response = client.post(LOGIN_URL, credentials)
    assert response.status_code in (200, 429)
    assert "<script>alert" not in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (0, "203.0.113.7", "10.0.0.1"),  # no proxy configured: the header is the client's word
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # a forged entry on the left is ignored
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "10.0.0.1"),  # fewer hops than proxies: trust nothing
        (1, "", "10.0.0.1"),
        (1, "not-an-address", "10.0.0.1"),
        (1, "2001:DB8::1", "2001:db8::1"),
    ],
)
def test_the_throttled_address_is_the_client_behind_the_configured_proxies(
    rf, settings, proxies, forwarded_for, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.post(LOGIN_URL, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert client_ip_address(request) == expected


def test_behind_a_proxy_one_clients_failures_do_not_lock_out_everyone(
    client, settings, support_user
):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            LOGIN_URL,
            {"username": "sam", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="198.51.100.66",
        )
    honest = Client().post(
        LOGIN_URL,
        {"username": "sam", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.10",
    )
    assert honest.status_code == 302
    attacker = Client().post(
        LOGIN_URL,
        {"username": "sam", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.66",
    )
    assert attacker.status_code == 429


# --- Headers ------------------------------------------------------------------------------------


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def pages(support_user, superuser, sandbox) -> dict[str, Callable[[], object]]:
    """Every kind of page, each as a function answering its response."""
    support = client_for(support_user)
    admin = client_for(superuser)
    return {
        "login": lambda: Client().get(LOGIN_URL),
        "customers": lambda: support.get(LIST_URL),
        "customers fragment": lambda: support.get(LIST_URL, HTTP_HX_REQUEST="true"),
        "403": lambda: client_for(make_user("nobody")).get(LIST_URL),
        "404": lambda: support.get("/no-such-page/"),
        "admin": lambda: admin.get("/admin/"),
        # Read to the end, as a server would, so the export's audit is finished here.
        "export": lambda: read_to_the_end(admin.get(EXPORT_URL)),
    }


def read_to_the_end(response):
    if response.streaming:
        response.getvalue()
    return response


@pytest.mark.parametrize(
    "page", ["login", "customers", "customers fragment", "403", "404", "admin", "export"]
)
def test_every_response_carries_the_security_headers_and_a_strict_first_party_csp(pages, page):
    response = pages[page]()
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    header = response["Content-Security-Policy"]
    for loophole in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "https:"):
        assert loophole not in header.split(), loophole
    assert not re.search(r"https?://|//", header), "a third-party origin"
    directives = csp_directives(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]


@pytest.fixture
def production_security(settings):
    """The security settings as DEBUG=false computes them (see test_settings.py), with the
    HTTPS redirect off: the test client speaks plain HTTP unless told otherwise."""
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_SSL_REDIRECT = False
    return settings


def test_hsts_is_sent_on_secure_requests(production_security):
    secure = Client().get(LOGIN_URL, secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    # Browsers ignore HSTS over plain HTTP; Django only sends it over HTTPS.
    assert "Strict-Transport-Security" not in Client().get(LOGIN_URL)


def test_session_and_csrf_cookies_are_secure_and_http_only_after_logging_in(
    production_security, support_user
):
    client = Client()
    login_page = client.get(LOGIN_URL, secure=True)
    assert login_page.cookies["csrftoken"]["secure"] and login_page.cookies["csrftoken"]["httponly"]
    response = client.post(LOGIN_URL, {"username": "sam", "password": PASSWORD}, secure=True)
    assert response.status_code == 302
    for name in ("sessionid", "csrftoken"):
        cookie = response.cookies[name]
        assert cookie["secure"] is True, name
        assert cookie["httponly"] is True, name
        assert cookie["samesite"] == "Lax", name


def test_the_proxy_ssl_header_makes_forwarded_https_requests_secure(production_security):
    production_security.SECURE_SSL_REDIRECT = True
    production_security.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    plain = client.get(LOGIN_URL)
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"
    forwarded = client.get(LOGIN_URL, HTTP_X_FORWARDED_PROTO="https")
    assert forwarded.status_code == 200
    assert forwarded["Strict-Transport-Security"].startswith("max-age=31536000")


def test_without_the_proxy_setting_a_forwarded_proto_header_is_not_believed(
    production_security,
):
    production_security.SECURE_SSL_REDIRECT = True
    production_security.SECURE_PROXY_SSL_HEADER = None
    response = Client().get(LOGIN_URL, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301


def test_healthz_is_not_redirected_to_https(production_security):
    production_security.SECURE_SSL_REDIRECT = True
    assert Client().get("/healthz").status_code == 200


# --- Markup the Content-Security-Policy allows ------------------------------------------------

JSON_SCRIPT_TYPES = {"application/json", "application/ld+json"}


class MarkupAudit(HTMLParser):
    """Finds what a strict CSP would block or what would load from another origin: inline
    scripts and styles, style attributes, event-handler attributes (also htmx's hx-on, which
    needs eval), javascript: URLs, and third-party scripts, styles, images and frames."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name.startswith(("hx-on", "data-hx-on")):
                self.problems.append(f"<{tag} {name}=...>")
            if name == "style":
                self.problems.append(f"<{tag} style=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name in ("hx-get", "hx-post", "action") and value and not value.startswith("/"):
                self.problems.append(f"<{tag} {name}={value!r}> leaves the site")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            if "src" in names:
                self._check_first_party(tag, values["src"])
            elif values.get("type") not in JSON_SCRIPT_TYPES:
                self.problems.append("inline <script>")
        if tag == "link" and values.get("rel") in ("stylesheet", "icon", "preload"):
            self._check_first_party(tag, values.get("href") or "")
        if tag in ("img", "iframe", "frame", "embed", "object"):
            self._check_first_party(tag, values.get("src") or values.get("data") or "")

    handle_startendtag = handle_starttag

    def _check_first_party(self, tag: str, url: str):
        if tag == "img" and url.startswith("data:"):
            return
        if not url.startswith("/") or url.startswith("//"):
            self.problems.append(f"<{tag}> loads {url!r}")


def markup_problems(response) -> list[str]:
    audit = MarkupAudit()
    audit.feed(text_of(response))
    audit.close()
    return audit.problems


def test_the_base_template_stops_htmx_from_needing_inline_styles_or_eval(support_user, sandbox):
    body = client_for(support_user).get(LIST_URL).content.decode()
    match = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', body)
    assert match, "no htmx-config meta"
    config = json.loads(match.group(1))
    assert config["includeIndicatorStyles"] is False  # htmx would inject a <style>
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert config["selfRequestsOnly"] is True


def test_the_dashboard_pages_have_no_markup_a_strict_csp_would_block(
    client, sandbox, support_user, finance_user, monkeypatch, settings, install_client
):
    support = client_for(support_user)
    finance = client_for(finance_user)
    ids = [*active_ids(sandbox)[:3], str(uuid.UUID(int=1))]
    responses = {
        "customers": support.get(LIST_URL),
        "customers with match report": finance.get(LIST_URL, {"customer_ids": ",".join(ids)}),
        "customers, next page": finance.get(f"{LIST_URL}?limit=10"),
        "fragment": support.get(LIST_URL, HTTP_HX_REQUEST="true"),
        "form errors": support.get(f"{LIST_URL}?limit=abc&customer_ids=nope"),
        "login": Client().get(LOGIN_URL),
        "login failed": Client().post(LOGIN_URL, {"username": "x", "password": "y"}),
        "403": client_for(make_user("nobody")).get(LIST_URL),
        "404": support.get("/no-such-page/"),
        "400": support.get(LIST_URL + "?" + "&".join(f"f{n}=1" for n in range(1100))),
        "export error": finance.get(f"{EXPORT_URL}?limit=abc&customer_ids=nope"),
        "csrf failure": Client(enforce_csrf_checks=True).post(LOGIN_URL, {"username": "x"}),
    }
    for _ in range(settings.AXES_FAILURE_LIMIT):
        responses["locked out"] = attempt_login(Client(), "sam", "wrong", "198.51.100.99")
    install_client(httpx.MockTransport(lambda r: httpx.Response(503)), max_retries=0)
    responses["metronome down"] = support.get(LIST_URL)
    monkeypatch.setattr(listing, "find", boom)
    erroring = client_for(support_user)
    erroring.raise_request_exception = False
    responses["500"] = erroring.get(LIST_URL)

    assert responses["locked out"].status_code == 429
    assert responses["csrf failure"].status_code == 403
    assert responses["500"].status_code == 500
    problems = {name: markup_problems(r) for name, r in responses.items()}
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_admin_needs_no_csp_relaxation(superuser, finance_user):
    ExportAudit.objects.create(user=finance_user, username="fiona")
    client = client_for(superuser)
    urls = [
        "/admin/",
        "/admin/auth/user/",
        "/admin/auth/user/add/",
        f"/admin/auth/user/{finance_user.pk}/change/",
        f"/admin/auth/user/{finance_user.pk}/password/",
        "/admin/auth/group/",
        f"/admin/auth/group/{Group.objects.get(name='Finance').pk}/change/",
        "/admin/customers/exportaudit/",
        f"/admin/customers/exportaudit/{ExportAudit.objects.get().pk}/change/",
        "/admin/password_change/",
        "/admin/login/",
    ]
    problems = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 302), url
        assert csp_directives(response)["script-src"] == ["'self'"]
        if found := markup_problems(response):
            problems[url] = found
    assert problems == {}


def test_the_dashboards_own_script_uses_no_eval_or_inline_handlers(settings):
    script = (settings.BASE_DIR / "static" / "js" / "dashboard.js").read_text()
    for forbidden in ("eval(", "new Function", "innerHTML", 'setAttribute("on', ".style.cssText"):
        assert forbidden not in script, forbidden


# --- Friendly error pages -----------------------------------------------------------------------


def boom(query):
    raise RuntimeError("internal detail: /srv/dashboard/secret.py line 42")


def assert_reveals_nothing(body: str) -> None:
    for detail in (
        "Traceback",
        "internal detail",
        "secret.py",
        "DJANGO_SETTINGS_MODULE",
        "dashboard.urls",
        "SECRET_KEY",
        "Using the URLconf",
        "Request Method",
        "Django Version",
        "You're seeing this error because you have",
    ):
        assert detail not in body, detail


def test_a_missing_page_is_a_friendly_404_that_reveals_nothing(support_user):
    response = client_for(support_user).get("/customers/nope/")
    body = response.content.decode()
    assert response.status_code == 404
    assert response.templates[0].name == "404.html"
    assert "Page not found" in body and 'href="/"' in body
    assert_reveals_nothing(body)


def test_a_forbidden_page_is_a_friendly_403_that_says_what_to_do():
    response = client_for(make_user("nobody")).get(LIST_URL)
    body = response.content.decode()
    assert response.status_code == 403
    assert response.templates[0].name == "403.html"
    assert "ask an administrator" in body
    assert_reveals_nothing(body)


def test_a_crash_is_a_friendly_500_without_the_exception_or_debug_page(
    support_user, monkeypatch, settings
):
    assert settings.DEBUG is False
    monkeypatch.setattr(listing, "find", boom)
    client = client_for(support_user)
    client.raise_request_exception = False
    response = client.get(LIST_URL)
    body = response.content.decode()
    assert response.status_code == 500
    assert [t.name for t in response.templates] == ["500.html"]
    assert "Something went wrong" in body
    assert_reveals_nothing(body)


def test_a_csrf_failure_is_a_friendly_403_that_says_what_to_do(support_user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN_URL, {"username": "sam", "password": PASSWORD})
    body = response.content.decode()
    assert response.status_code == 403
    assert response.templates[0].name == "403_csrf.html"
    assert "reload" in body.lower()
    assert "/static/css/dashboard.css" in body
    assert_reveals_nothing(body)


# --- The bearer token never leaks ---------------------------------------------------------------


def leak_check_customers(count: int) -> SandboxAPI:
    return SandboxAPI(count, token=TOKEN)


def echoing(status: int) -> httpx.MockTransport:
    """Metronome answering an error whose message repeats what it was sent, token included."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent = request.headers["Authorization"]
        return httpx.Response(
            status, json={"message": f"invalid token {TOKEN} (from {sent})", "token": TOKEN}
        )

    return httpx.MockTransport(answer)


def raising(exception_type: type[httpx.TransportError]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exception_type(f"failed with {request.headers['Authorization']}", request=request)

    return httpx.MockTransport(answer)


def not_json(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=f"<html>proxy error for {TOKEN}</html>")


def first_page_then_failure() -> httpx.MockTransport:
    """One good page, then an error that echoes the token: an export that fails mid-stream."""
    api = leak_check_customers(150)

    def answer(request: httpx.Request) -> httpx.Response:
        if "next_page" in request.url.params:
            return httpx.Response(500, json={"message": f"broken, token {TOKEN}"})
        return SandboxTransport(api).handle_request(request)

    return httpx.MockTransport(answer)


LEAK_SCENARIOS = {
    "success": lambda: SandboxTransport(leak_check_customers(150)),
    "401 echoing the token": lambda: echoing(401),
    "400 echoing the token": lambda: echoing(400),
    "422 echoing the token": lambda: echoing(422),
    "500 echoing the token": lambda: echoing(500),
    "timeout": lambda: raising(httpx.ReadTimeout),
    "connection refused": lambda: raising(httpx.ConnectError),
    "not json": lambda: httpx.MockTransport(not_json),
    "fails after the first page": first_page_then_failure,
}


@pytest.fixture
def real_token(settings):
    settings.METRONOME_BEARER_TOKEN = TOKEN
    settings.METRONOME_SANDBOX = False
    settings.METRONOME_BASE_URL = "http://metronome.test"


@pytest.fixture
def every_log_record(caplog) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in ("django", "httpx", "httpcore", "customers", "axes"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def context_text(response) -> str:
    contexts = response.context
    if contexts is None:
        return ""
    parts = []
    for context in contexts if isinstance(contexts, list) else [contexts]:
        for key, value in context.flatten().items():
            parts.append(f"{key}={value!r}")
            try:
                parts.append(str(value))
            except Exception as exc:  # a context value that can't render still can't leak
                parts.append(repr(exc))
    return "\n".join(parts)


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


class LeakSearch:
    """Collects every response, then searches bodies, headers, cookies and template contexts,
    plus the log records, the process's output and the audit log, for the token."""

    def __init__(self):
        self.responses: list[tuple[str, object, bytes]] = []

    def __call__(self, label: str, response):
        body = body_of(response) if not response.streaming else self._drain(response)
        self.responses.append((label, response, body))
        return response

    @staticmethod
    def _drain(response) -> bytes:
        chunks = []
        try:
            for chunk in response.streaming_content:
                chunks.append(chunk)
        except metronome.MetronomeError:
            pass  # the export aborts the download; what was sent is what we search
        return b"".join(chunks)

    def leaks(self, caplog, capfd) -> list[str]:
        found = []
        for label, response, body in self.responses:
            if TOKEN_MARKER.lower().encode() in body.lower():
                found.append(f"{label}: body")
            headers = "\n".join(f"{k}: {v}" for k, v in response.items())
            headers += str(response.cookies)
            if TOKEN_MARKER.lower() in headers.lower():
                found.append(f"{label}: headers")
            if TOKEN_MARKER.lower() in context_text(response).lower():
                found.append(f"{label}: template context")
        for record in caplog.records:
            if TOKEN_MARKER.lower() in record_text(record).lower():
                found.append(f"log record {record.name}: {record.getMessage()[:80]}")
        out, err = capfd.readouterr()
        if TOKEN_MARKER.lower() in (out + err).lower():
            found.append("process output")
        for audit in ExportAudit.objects.all():
            if TOKEN_MARKER.lower() in repr(vars(audit)).lower():
                found.append(f"export audit {audit.pk}")
        return found


@pytest.mark.parametrize("scenario", LEAK_SCENARIOS)
def test_the_bearer_token_never_appears_in_pages_exports_logs_or_the_audit_log(
    scenario, real_token, finance_user, every_log_record, capfd, install_client
):
    install_client(LEAK_SCENARIOS[scenario](), token=TOKEN, max_retries=1, retry_budget=0.1)
    capfd.readouterr()
    client = client_for(finance_user)
    search = LeakSearch()
    ids = [str(uuid.UUID(int=n)) for n in range(1, 4)]

    search("page", client.get(LIST_URL))
    search("fragment", client.get(f"{LIST_URL}?limit=10", HTTP_HX_REQUEST="true"))
    search("pasted ids", client.get(LIST_URL, {"customer_ids": ",".join(ids)}))
    search(
        "htmx post", client.post(LIST_URL, {"customer_ids": "\n".join(ids)}, HTTP_HX_REQUEST="true")
    )
    search("cursor", client.get(f"{LIST_URL}?next_page=abc"))
    search("export", client.get(EXPORT_URL))
    search("filtered export", client.get(EXPORT_URL, {"customer_ids": ",".join(ids)}))

    assert ExportAudit.objects.count() == 2
    assert every_log_record.records, "nothing was logged: the search proves nothing"
    assert search.leaks(every_log_record, capfd) == []


def test_the_bearer_token_never_appears_over_a_real_connection(
    real_token, monkeypatch, finance_user, every_log_record, capfd
):
    with SandboxServer(SandboxAPI(150, token=TOKEN), host="127.0.0.1", port=0) as server:
        client = metronome.MetronomeClient(base_url=server.url, bearer_token=TOKEN)
        monkeypatch.setattr(wiring, "_client", client)
        capfd.readouterr()
        search = LeakSearch()
        user = client_for(finance_user)
        page = search("page", user.get(LIST_URL))
        export = search("export", user.get(EXPORT_URL))
        client.close()
    assert page.status_code == 200 and export.status_code == 200
    assert any(r.name.startswith("httpcore") for r in every_log_record.records)
    assert search.leaks(every_log_record, capfd) == []


def test_the_bearer_token_never_appears_on_other_pages_or_errors(
    real_token,
    monkeypatch,
    superuser,
    finance_user,
    every_log_record,
    capfd,
    settings,
    install_client,
):
    install_client(SandboxTransport(leak_check_customers(150)), token=TOKEN)
    capfd.readouterr()
    search = LeakSearch()
    admin = client_for(superuser)
    search("export", admin.get(EXPORT_URL))
    search("login", Client().get(LOGIN_URL))
    search("failed login", Client().post(LOGIN_URL, {"username": "root", "password": "x"}))
    for _ in range(settings.AXES_FAILURE_LIMIT):
        search("locked out", attempt_login(Client(), "root", "wrong", "198.51.100.3"))
    search("healthz", Client().get("/healthz"))
    for url in (
        "/admin/",
        "/admin/customers/exportaudit/",
        f"/admin/customers/exportaudit/{ExportAudit.objects.get().pk}/change/",
        "/admin/auth/user/",
        "/admin/axes/accessattempt/",
    ):
        search(url, admin.get(url))
    search("403", client_for(make_user("nobody")).get(LIST_URL))
    search("404", admin.get("/nope/"))
    monkeypatch.setattr(listing, "find", boom)
    crashing = client_for(finance_user)
    crashing.raise_request_exception = False
    crash = search("500", crashing.get(LIST_URL))
    assert crash.status_code == 500
    assert search.leaks(every_log_record, capfd) == []


def test_an_api_error_message_echoing_the_token_is_never_shown(
    real_token, support_user, install_client
):
    install_client(echoing(400), token=TOKEN)
    body = client_for(support_user).get(LIST_URL).content.decode()
    assert "Metronome refused the request as not valid (HTTP 400)" in body
    assert TOKEN_MARKER not in body


# --- Hostile input ------------------------------------------------------------------------------

XSS = (
    '<script>alert("xss")</script>',
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>alert(2)</script>",
)
REFLECTIONS = ("<script>alert", "<img src=x", "<svg/onload", "</textarea><script")
MANY_UUIDS = ",".join(str(uuid.UUID(int=n)) for n in range(5000))
MANY_SALESFORCE_IDS = "\n".join(f"001A{n:014d}" for n in range(5000))
FIELDS = (
    "customer_ids",
    "salesforce_account_ids",
    "ingest_alias",
    "only_archived",
    "limit",
    "next_page",
    "prev",
    "search",
)


def each_field(value: str) -> list[str]:
    return [urlencode({field: value}) for field in FIELDS]


def reflected_fields(value: str) -> list[str]:
    """Every field at once (each one's form error is shown), and alone in the fields that
    reach the page only when the rest of the form is valid (links, the saved search)."""
    return [urlencode([(field, value) for field in FIELDS])] + [
        urlencode({field: value}) for field in ("ingest_alias", "next_page", "prev", "search")
    ]


HOSTILE_QUERIES = [
    f"customer_ids={quote(MANY_UUIDS)}",
    f"salesforce_account_ids={quote(MANY_SALESFORCE_IDS)}",
    "ingest_alias=" + "A" * 200_000,
    "next_page=" + "c" * 100_000,
    "search=" + "s" * 10_000,
    "prev=" + "&prev=".join(["p" * 1999] * 900) + "&next_page=x",
    "prev=" + "&prev=".join(["p"] * 1100),  # more fields than Django accepts: 400
    "limit=10&limit=20&limit=abc&only_archived=true&only_archived=maybe",
    "customer_ids=" + "&customer_ids=".join(str(uuid.UUID(int=n)) for n in range(50)),
    "limit=99999999999999999999999999",
    "limit=-1",
    "limit=0",
    "limit=101",
    "limit=1e3",
    "only_archived=maybe",
    "%",
    "a=%zz&limit=%ff%fe",
    "ingest_alias=%ED%A0%80",  # a lone surrogate, as UTF-8
    "ingest_alias=%C0%BC",  # overlong '<'
    *each_field("a\x00b"),
    urlencode([(field, "\x00") for field in FIELDS]),
    *[q for value in XSS for q in reflected_fields(value)],
    *[
        urlencode([(field, value) for field in FIELDS])
        for value in (
            "\u202eevil\u202c",  # right-to-left override
            "🚀" * 500,
            "e" + "\u0301" * 5000,  # combining marks
            "\ufeff\u200b\u2028\u2029",
            "' OR 1=1 --",
            "../../etc/passwd",
            "{{ settings.SECRET_KEY }}{% debug %}",
        )
    ],
]


@pytest.fixture
def postgres_rules(db) -> Iterator[None]:
    """Tests run on SQLite, production on PostgreSQL, which refuses NUL characters in text
    and JSON: any that reaches the database there is a 500. Refuse them here as it would."""

    def refuse_nul(execute, sql, params, many, context):
        rows = params if many else [params]
        for row in rows or []:
            values = row.values() if isinstance(row, dict) else row or []
            for value in values:
                if isinstance(value, str) and ("\x00" in value or "\\u0000" in value):
                    raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_nul):
        yield


@pytest.fixture
def finance(finance_user, postgres_rules, install_client) -> Client:
    # A dozen customers: a page of rows is rendered for every input, so keep it short.
    install_client(SandboxTransport(SandboxAPI(12)))
    client = client_for(finance_user)
    client.raise_request_exception = True
    return client


def assert_survives(response) -> str:
    assert response.status_code < 500
    content_type = response.get("Content-Type", "")
    if content_type.startswith("text/csv"):
        body_of(response)
        return ""
    body = text_of(response)
    for reflected in REFLECTIONS:
        assert reflected.lower() not in body.lower(), reflected
    return body


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:60])
def test_hostile_query_strings_never_5xx_nor_reflect_markup(finance, query):
    assert_survives(finance.get(f"{LIST_URL}?{query}"))
    assert_survives(finance.get(f"{LIST_URL}?{query}", HTTP_HX_REQUEST="true"))
    assert_survives(finance.get(f"{EXPORT_URL}?{query}"))


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:60])
def test_hostile_form_posts_never_5xx_nor_reflect_markup(finance, query):
    for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = finance.post(
            LIST_URL, query, content_type="application/x-www-form-urlencoded", **htmx
        )
        assert_survives(response)
        if response.status_code == 303:
            assert_survives(finance.get(response["Location"]))


def test_hostile_input_is_shown_escaped_not_dropped(finance):
    body = finance.get(f"{LIST_URL}?ingest_alias=<b>bold</b>").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in body


def test_hostile_values_from_the_api_are_shown_escaped(support_user, settings, install_client):
    settings.SALESFORCE_BASE_URL = "https://acme.lightning.force.com"
    customer = {
        "id": "1d9c9a44-8d0c-4a5e-8a5b-6f1e2c3d4e5f",
        "name": '<script>alert("name")</script>',
        "external_id": '"><img src=x onerror=alert(1)>',
        "ingest_aliases": ["'><svg/onload=alert(1)>", "javascript:alert(1)"],
        "customer_config": {"salesforce_account_id": '"><script>alert("sf")</script>'},
        "custom_fields": {
            "<script>alert('key')</script>": '<img src=x onerror=alert("value")>',
            "note": "</textarea><script>alert(2)</script>",
        },
        "created_at": "2024-03-01T12:00:00Z",
        "updated_at": "2024-03-01T12:00:00Z",
    }
    install_client(
        httpx.MockTransport(
            lambda r: httpx.Response(200, json={"data": [customer], "next_page": None})
        ),
    )
    response = client_for(support_user).get(LIST_URL)
    body = assert_survives(response)
    assert response.status_code == 200
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;" in body
    assert 'href="javascript:' not in body
    assert not markup_problems(response)


# A value is sometimes plain text, sometimes a known attack wrapped in text.
hostile_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(XSS),
    st.builds(
        lambda a, x, b: a + x + b, st.text(max_size=20), st.sampled_from(XSS), st.text(max_size=20)
    ),
    st.lists(st.uuids().map(str), max_size=150).map(",".join),
)
hostile_params = st.lists(
    st.tuples(st.sampled_from([*FIELDS, "unknown", ""]), hostile_text), max_size=8
)


@hypothesis_settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=hostile_params, how=st.sampled_from(["get", "htmx", "post", "export"]))
def test_any_parameters_never_5xx_nor_reflect_markup(finance, params, how):
    query = urlencode(params)
    if how == "get":
        response = finance.get(f"{LIST_URL}?{query}")
    elif how == "htmx":
        response = finance.get(f"{LIST_URL}?{query}", HTTP_HX_REQUEST="true")
    elif how == "post":
        response = finance.post(LIST_URL, query, content_type="application/x-www-form-urlencoded")
    else:
        response = finance.get(f"{EXPORT_URL}?{query}")
    assert_survives(response)


def test_a_page_link_with_a_nul_in_its_trail_is_refused_not_stored(finance):
    first = finance.get(f"{LIST_URL}?limit=2").content.decode()
    cursor = re.search(r'<a rel="next" href="[^"]*next_page=([^"&]+)', first).group(1)
    # Long enough that the next link's trail is stored as a saved search.
    trail = "&".join(["prev=" + "p" * 100] * 70 + ["prev=%00"])
    response = finance.get(f"{LIST_URL}?limit=2&next_page={cursor}&{trail}")
    assert_survives(response)
