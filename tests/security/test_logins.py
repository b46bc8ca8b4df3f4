"""Authentication and sessions: logins, redirects to the login page, logout, and the
throttling of failed logins (who is locked out by whose failures: test_access.py)."""

import re
from urllib.parse import quote

import pytest
from django.test import Client

from customers.login_throttle import client_ip_address
from tests.factories import LIST_URL, LOGIN_URL, PASSWORD, attempt_login, client_for

pytestmark = pytest.mark.django_db


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


# --- Throttling failed logins -------------------------------------------------------------------


# Who is locked out by whose failures: test_access.py.


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
