"""Friendly 404, 403, 500 and CSRF-failure pages that reveal nothing."""

import pytest
from django.test import Client

from customers import listing
from tests.factories import LIST_URL, LOGIN_URL, PASSWORD, boom, client_for, make_user

pytestmark = pytest.mark.django_db


# --- Friendly error pages -----------------------------------------------------------------------


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
    # Before the page starts streaming (views._streamed_page): the 500 page.
    monkeypatch.setattr(listing, "expand_saved_search", boom)
    client = client_for(support_user)
    client.raise_request_exception = False
    response = client.get(LIST_URL)
    body = response.content.decode()
    assert response.status_code == 500
    assert [t.name for t in response.templates] == ["500.html"]
    assert "Something went wrong" in body
    assert_reveals_nothing(body)


def test_a_crash_after_the_page_started_is_said_where_the_rows_go_without_the_exception(
    support_user, monkeypatch, sandbox_api
):
    monkeypatch.setattr(listing, "find", boom)
    client = client_for(support_user)
    client.raise_request_exception = False
    response = client.get(LIST_URL)
    body = response.content.decode()
    assert response.status_code == 200  # the page's first part had left
    assert "Something went wrong on the dashboard's side" in body
    assert body.rstrip().endswith("</html>")
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
