"""Security headers, HSTS and secure cookies behind the proxy, and markup the strict
Content-Security-Policy allows on every page. The settings as production computes them are
in tests/test_settings.py."""

import json
import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from django.contrib.auth.models import Group
from django.test import Client

from customers import listing
from customers.models import ExportAudit
from tests.factories import (
    EXPORT_URL,
    LIST_URL,
    LOGIN_URL,
    PASSWORD,
    active_ids,
    attempt_login,
    boom,
    client_for,
    make_user,
    markup_problems,
    read_to_the_end,
)

pytestmark = pytest.mark.django_db


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
    # Before the page starts streaming (views._streamed_page), a crash is the 500 page.
    monkeypatch.setattr(listing, "expand_saved_search", boom)
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
