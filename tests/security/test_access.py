"""Who may try to log in, how often, and for how long a login lasts (issue: Access)."""

import re
import time

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import include, path

from customers import login_throttle
from dashboard.urls import password_reset_urls
from dashboard.urls import urlpatterns as dashboard_urlpatterns

LOGIN_URL = "/accounts/login/"
PASSWORD_CHANGE_URL = "/accounts/password_change/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def sam(db, fast_password_hashing) -> User:
    user = User.objects.create_user("sam", "sam@example.com", PASSWORD)
    user.groups.add(Group.objects.get(name="Support"))
    return user


def log_in(username: str, password: str, address: str, client: Client | None = None):
    return (client or Client()).post(
        LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address
    )


# --- Lock-out rules ------------------------------------------------------------------------


def test_others_failures_from_many_addresses_never_lock_a_user_out(settings, sam):
    for n in range(settings.AXES_FAILURE_LIMIT * 2):
        assert log_in("sam", "wrong", f"198.51.100.{n}").status_code == 200
    assert log_in("sam", PASSWORD, "203.0.113.5").status_code == 302


def test_failures_for_other_usernames_from_a_shared_address_never_lock_a_user_out(settings, sam):
    # An office behind one NAT address: colleagues mistyping their own passwords.
    for n in range(settings.AXES_FAILURE_LIMIT * 3):
        log_in(f"colleague{n % 5}", "wrong", "192.0.2.10")
    assert log_in("sam", PASSWORD, "192.0.2.10").status_code == 302


def test_a_users_own_failures_lock_that_user_out_from_that_address(settings, sam):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in("sam", "wrong", "198.51.100.20")
    client = Client()
    locked = log_in("sam", PASSWORD, "198.51.100.20", client)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The same person from elsewhere is not locked out by whoever is at that address.
    assert log_in("sam", PASSWORD, "203.0.113.6").status_code == 302


def test_one_address_failing_for_very_many_usernames_is_locked_out(settings, sam):
    settings.AXES_ADDRESS_FAILURE_LIMIT = 12
    for n in range(12):
        log_in(f"guess{n}", "wrong", "198.51.100.30")
    assert log_in("sam", PASSWORD, "198.51.100.30").status_code == 429
    assert log_in("sam", PASSWORD, "198.51.100.31").status_code == 302


def test_the_address_limit_is_high_enough_for_an_office_by_default(settings):
    assert settings.AXES_ADDRESS_FAILURE_LIMIT >= 10 * settings.AXES_FAILURE_LIMIT


# --- Password change -----------------------------------------------------------------------


def change_password(client: Client, old: str, address: str):
    new = "a new and long passphrase 42"
    return client.post(
        PASSWORD_CHANGE_URL,
        {"old_password": old, "new_password1": new, "new_password2": new},
        REMOTE_ADDR=address,
    )


def test_a_wrong_old_password_says_so_and_changes_nothing(client, sam):
    client.force_login(sam)
    response = change_password(client, "wrong", "198.51.100.40")
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    sam.refresh_from_db()
    assert sam.check_password(PASSWORD)


def test_wrong_old_passwords_lock_the_password_change_like_the_login(client, settings, sam):
    client.force_login(sam)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        change_password(client, "wrong", "198.51.100.41")
    # Even the right old password is refused now, and the login from there too.
    locked = change_password(client, PASSWORD, "198.51.100.41")
    assert locked.status_code == 429
    sam.refresh_from_db()
    assert sam.check_password(PASSWORD)
    assert log_in("sam", PASSWORD, "198.51.100.41").status_code == 429


def test_the_right_old_password_changes_it(client, sam):
    client.force_login(sam)
    response = change_password(client, PASSWORD, "198.51.100.42")
    assert response.status_code == 302
    sam.refresh_from_db()
    assert sam.check_password("a new and long passphrase 42")


# --- Password reset ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/done/",
        "/accounts/reset/MQ/set-password/",
    ],
)
def test_without_email_the_password_reset_pages_do_not_exist(client, sam, url):
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "sam@example.com"}).status_code == 404
    client.force_login(sam)
    assert client.get(url).status_code == 404


# With email configured (urls.py adds password_reset_urls then): the same site plus them.
urlpatterns = [
    *[p for p in dashboard_urlpatterns if str(p.pattern) != "accounts/"],
    path("accounts/", include([*password_reset_urls, *dashboard_urlpatterns[2].url_patterns])),
]


@pytest.fixture
def email_configured(settings, monkeypatch):
    settings.ROOT_URLCONF = __name__
    settings.PASSWORD_RESET_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    class SendNow:
        """The reset email is sent on a thread after the answer; here, before it."""

        def __init__(self, target, args, daemon):
            self.target, self.args = target, args

        def start(self):
            self.target(*self.args)

    monkeypatch.setattr(login_throttle.threading, "Thread", SendNow)
    # The thread would close its own database connections; here they are the test's.
    monkeypatch.setattr(login_throttle.connections, "close_all", lambda: None)


def ask_for_reset(email: str, address: str):
    return Client().post("/accounts/password_reset/", {"email": email}, REMOTE_ADDR=address)


def test_with_email_known_and_unknown_addresses_get_the_same_answer(email_configured, sam):
    known = ask_for_reset("sam@example.com", "198.51.100.50")
    unknown = ask_for_reset("nobody@example.com", "198.51.100.51")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/accounts/password_reset/done/"
    assert [message.to for message in mail.outbox] == [["sam@example.com"]]


def test_with_email_reset_requests_are_throttled_per_address(email_configured, settings, sam):
    settings.PASSWORD_RESET_LIMIT_PER_HOUR = 2
    assert ask_for_reset("sam@example.com", "198.51.100.52").status_code == 302
    assert ask_for_reset("nobody@example.com", "198.51.100.52").status_code == 302
    refused = ask_for_reset("sam@example.com", "198.51.100.52")
    assert refused.status_code == 429
    assert "Too many password-reset requests" in refused.content.decode()
    assert len(mail.outbox) == 1
    assert ask_for_reset("sam@example.com", "198.51.100.53").status_code == 302


def test_with_email_resets_to_one_email_address_are_throttled_from_any_address(
    email_configured, settings, sam
):
    settings.PASSWORD_RESET_LIMIT_PER_HOUR = 2
    assert ask_for_reset("sam@example.com", "198.51.100.54").status_code == 302
    assert ask_for_reset(" SAM@example.com", "198.51.100.55").status_code == 302
    assert ask_for_reset("sam@example.com", "198.51.100.56").status_code == 429
    assert len(mail.outbox) == 2
    # A refused request is not counted: the third address may still ask for someone else.
    assert ask_for_reset("nobody@example.com", "198.51.100.56").status_code == 302


def test_with_email_the_reset_limit_is_the_same_in_every_worker(email_configured, settings, sam):
    # Counted in the database: a worker with an empty cache of its own refuses all the same.
    settings.PASSWORD_RESET_LIMIT_PER_HOUR = 1
    assert ask_for_reset("sam@example.com", "198.51.100.57").status_code == 302
    cache.clear()
    assert ask_for_reset("nobody@example.com", "198.51.100.57").status_code == 429


# --- Sessions ------------------------------------------------------------------------------


def test_a_session_lasts_twelve_idle_hours_and_use_renews_it(client, sam, monkeypatch):
    assert log_in("sam", PASSWORD, "198.51.100.60", client).status_code == 302
    assert client.session.get_expiry_age() == 12 * 3600
    assert client.cookies["sessionid"]["max-age"] == 12 * 3600
    # Within five minutes of the last renewal (here: the login) requests write nothing...
    assert "sessionid" not in client.get("/accounts/password_change/").cookies
    # ...after them, a request renews it: the cookie again, with 12 fresh hours.
    later = time.time() + 301
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.get("/accounts/password_change/")
    assert response.cookies["sessionid"]["max-age"] == 12 * 3600


def test_a_session_can_end_with_the_browser(client, settings, sam):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    log_in("sam", PASSWORD, "198.51.100.61", client)
    assert client.cookies["sessionid"]["max-age"] == ""
    assert client.session.get_expire_at_browser_close()


# --- Permissions, read with the user ------------------------------------------------------


@pytest.fixture
def finance_client(client, sam, sandbox_api, settings):
    from django.contrib.auth.models import Group

    # As without CACHE_URL, whatever another test left: sessions read from the database.
    settings.CACHE_IS_SHARED = False
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    sam.groups.add(Group.objects.get(name="Finance"))
    client.force_login(sam)
    client.get("/customers/")  # renews the session: the next page writes nothing
    return client


def tables_queried(response_getter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = response_getter()
    assert response.status_code == 200
    assert "download-csv" in response.content.decode()  # the export permission was checked
    return [main_table(q["sql"]) for q in queries.captured_queries]


def main_table(sql: str) -> str:
    """The table after the query's own FROM, not a subquery's (outside every parenthesis)."""
    depth = 0
    for position, character in enumerate(sql):
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth == 0 and (found := re.match(r'\sFROM\s+"?(\w+)', sql[position:])):
            return found[1]
    raise AssertionError(f"no FROM in {sql}")


def test_a_page_costs_the_session_the_user_and_the_saved_views_each_one_query(finance_client):
    # Without a shared cache every worker reads them from the database: a logout, or a view
    # unshared or deleted, on another worker holds at once.
    assert tables_queried(lambda: finance_client.get("/customers/")) == [
        "django_session",
        "auth_user",
        "customers_savedview",
    ]


def test_with_a_shared_cache_a_page_costs_the_user_query_only(client, sam, sandbox_api, settings):
    from django.contrib.auth.models import Group

    # As with CACHE_URL=redis://...: this one test process's memory stands in for it.
    settings.CACHE_IS_SHARED = True
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    sam.groups.add(Group.objects.get(name="Finance"))
    client.force_login(sam)
    client.get("/customers/")
    assert tables_queried(lambda: client.get("/customers/")) == ["auth_user"]


def test_a_permission_taken_away_is_refused_on_the_next_request(finance_client, sam):
    from django.contrib.auth.models import Group

    allowed = finance_client.get("/customers/export.csv")
    assert allowed.status_code == 200
    b"".join(allowed.streaming_content)
    sam.groups.remove(Group.objects.get(name="Finance"))
    assert finance_client.get("/customers/export.csv").status_code == 403
    # Still in Support: may still view.
    assert finance_client.get("/customers/").status_code == 200


def test_a_permission_taken_from_a_group_elsewhere_is_refused_on_the_next_request(
    finance_client,
):
    from django.contrib.auth.models import Group, Permission

    # Another worker took it away, with no signal this process could hear.
    export = Permission.objects.get(codename="export_customers")
    Group.permissions.through.objects.filter(
        group=Group.objects.get(name="Finance"), permission=export
    ).delete()
    assert finance_client.get("/customers/export.csv").status_code == 403


def test_a_permission_given_to_the_user_directly_counts(client, db, sandbox_api):
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("dana", password=PASSWORD)
    user.user_permissions.add(
        Permission.objects.get(codename="view_customers"),
        Permission.objects.get(codename="export_customers"),
    )
    client.force_login(user)
    assert client.get("/customers/").status_code == 200
    export = client.get("/customers/export.csv")
    assert export.status_code == 200
    b"".join(export.streaming_content)


def test_an_inactive_users_session_is_signed_out(client, sam):
    client.force_login(sam)
    User.objects.filter(pk=sam.pk).update(is_active=False)
    response = client.get("/customers/")
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_a_superuser_holds_every_permission_without_a_group(client, db, sandbox_api):
    admin = User.objects.create_superuser("root", password=PASSWORD)
    client.force_login(admin)
    export = client.get("/customers/export.csv")
    assert export.status_code == 200
    b"".join(export.streaming_content)
