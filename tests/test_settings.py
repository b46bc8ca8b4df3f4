"""Production settings as a fresh process computes them from the environment: settings are
read at import, so each case runs Python in a subprocess with its own environment."""

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
# Every variable the settings read, blank, so a developer's .env or shell can't change the
# outcome: `read_env` never overrides a variable that is set, even to "".
DOCUMENTED = re.findall(r"^([A-Z][A-Z0-9_]*)=", (BASE_DIR / ".env.example").read_text(), re.M)
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "customers.example.com",
    "METRONOME_BEARER_TOKEN": "settings-test-token-not-real",
}


# Each case starts a Python process.
pytestmark = pytest.mark.slow


def run(
    args: list[str], unset: tuple[str, ...] = (), **variables: str
) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        **{name: "" for name in DOCUMENTED if name not in unset},
        **variables,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


PRINT_SETTINGS = """
import json
from django.conf import settings
names = [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT", "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY", "X_FRAME_OPTIONS", "ALLOWED_HOSTS", "CONTENT_SECURITY_POLICY",
    "TRUSTED_PROXY_COUNT", "AXES_FAILURE_LIMIT", "AXES_LOCKOUT_PARAMETERS",
    "AXES_ADDRESS_FAILURE_LIMIT", "SESSION_COOKIE_AGE", "SESSION_SAVE_EVERY_REQUEST",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE", "SESSION_ENGINE", "CACHES", "METRONOME_SANDBOX",
    "METRONOME_BASE_URL", "PASSWORD_RESET_ENABLED", "DATABASES", "LOG_FORMAT", "MIDDLEWARE",
]
values = {name: getattr(settings, name) for name in names}
values["SECURE_PROXY_SSL_HEADER"] = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
print(json.dumps(values, default=str))
"""


def settings_with(**variables: str) -> dict:
    result = run(["-c", PRINT_SETTINGS], **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_passes_with_production_settings_and_no_warnings():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        **PRODUCTION,
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNING" not in output


def test_debug_false_makes_cookies_secure_and_turns_on_hsts_and_the_https_redirect():
    values = settings_with(**PRODUCTION)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["ALLOWED_HOSTS"] == ["customers.example.com"]
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["LOG_FORMAT"] == "json"


def test_the_content_security_policy_allows_no_inline_code_and_no_other_origin():
    directives = settings_with(**PRODUCTION)["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    sources = [source for values in directives.values() for source in values]
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
    assert not [s for s in sources if "://" in s or s.startswith(("http", "*", "//"))]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]


def test_the_proxy_ssl_header_is_configurable_for_running_behind_a_proxy():
    values = settings_with(**PRODUCTION, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_login_throttling_locks_the_pair_of_username_and_address_and_busy_addresses():
    values = settings_with(
        **PRODUCTION, AXES_FAILURE_LIMIT="3", AXES_ADDRESS_FAILURE_LIMIT="40", AXES_PROXY_COUNT="1"
    )
    assert values["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"]]
    assert values["AXES_FAILURE_LIMIT"] == 3
    assert values["AXES_ADDRESS_FAILURE_LIMIT"] == 40
    assert values["TRUSTED_PROXY_COUNT"] == 1


def test_sessions_end_after_twelve_idle_hours_by_default_and_use_renews_them():
    values = settings_with(**PRODUCTION)
    assert values["SESSION_COOKIE_AGE"] == 12 * 3600
    # Renewed every few minutes of use by a middleware, not written on every request.
    assert values["SESSION_SAVE_EVERY_REQUEST"] is False
    assert "customers.middleware.SessionRenewalMiddleware" in values["MIDDLEWARE"]
    assert values["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is False
    # In the database, shared by every instance and every worker.
    assert values["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"


def test_sessions_are_read_through_the_cache_only_when_every_worker_shares_it():
    for cache_url, engine in [
        ("redis://127.0.0.1:6379/0", "cached_db"),
        ("dbcache://dashboard_cache", "cached_db"),
        ("", "db"),
        ("locmemcache://", "db"),
        ("filecache:///tmp/dashboard-cache", "db"),
    ]:
        values = settings_with(**PRODUCTION, CACHE_URL=cache_url)
        assert values["SESSION_ENGINE"] == f"django.contrib.sessions.backends.{engine}", cache_url


def test_the_session_age_and_browser_close_expiry_are_configurable():
    values = settings_with(
        **PRODUCTION, SESSION_IDLE_HOURS="0.5", SESSION_EXPIRE_AT_BROWSER_CLOSE="yes"
    )
    assert values["SESSION_COOKIE_AGE"] == 1800
    assert values["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True


def test_a_redis_cache_url_selects_djangos_own_redis_backend():
    values = settings_with(**PRODUCTION, CACHE_URL="redis://127.0.0.1:6379/1")
    assert values["CACHES"]["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    }


def test_without_a_database_url_the_sqlite_file_lives_in_the_data_dir(tmp_path):
    values = settings_with(**PRODUCTION, DATA_DIR=str(tmp_path))
    assert values["DATABASES"]["default"]["NAME"] == str(tmp_path / "db.sqlite3")


def test_a_sqlite_file_is_shared_by_the_workers_in_write_ahead_logging(tmp_path):
    # Opened as a worker would open it: readers go on while a request writes, a commit
    # does not wait on the disk, and reads go through a shared memory map.
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    print(*(cursor.execute(f'PRAGMA {name}').fetchone()[0]"
        " for name in ('journal_mode', 'synchronous', 'mmap_size')))\n"
    )
    done = run(["-c", code], **PRODUCTION, DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["wal", "1", str(256 * 2**20)]  # 1: NORMAL


def test_a_postgresql_database_gets_no_sqlite_options():
    values = settings_with(**PRODUCTION, DATABASE_URL="postgres://u:p@db.example.com/dashboard")
    assert "init_command" not in values["DATABASES"]["default"].get("OPTIONS", {})


def test_production_may_serve_the_sandbox_only_when_asked_to():
    values = settings_with(**{**PRODUCTION, "METRONOME_BEARER_TOKEN": ""}, METRONOME_SANDBOX="true")
    assert values["METRONOME_SANDBOX"] is True


def test_password_reset_exists_only_when_email_is_configured():
    assert settings_with(**PRODUCTION)["PASSWORD_RESET_ENABLED"] is False
    with_url = settings_with(**PRODUCTION, EMAIL_URL="smtp+tls://u:p@smtp.example.com:587")
    assert with_url["PASSWORD_RESET_ENABLED"] is True
    assert settings_with(**PRODUCTION, EMAIL_HOST="smtp.example.com")["PASSWORD_RESET_ENABLED"]


def test_a_fresh_checkout_runs_without_configuration():
    values = settings_with()
    assert values["DEBUG"] is True
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["LOG_FORMAT"] == "plain"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set when DEBUG is false."),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must be set when DEBUG is false."),
        ({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS must be set when DEBUG is false."),
        ({"DEBUG": "flase"}, "DEBUG must be true or false, not 'flase'."),
        ({"METRONOME_TIMEOUT": "10s"}, "METRONOME_TIMEOUT must be a number, not '10s'."),
        ({"METRONOME_TIMEOUT": "0"}, "METRONOME_TIMEOUT must be at least 0.1, not '0'."),
        ({"SECURE_SSL_REDIRECT": "sometimes"}, "SECURE_SSL_REDIRECT must be true or false"),
        ({"AXES_FAILURE_LIMIT": "0"}, "AXES_FAILURE_LIMIT must be at least 1"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or plain, not 'xml'."),
        (
            {"METRONOME_BEARER_TOKEN": ""},
            "METRONOME_BEARER_TOKEN must be set when DEBUG is false (or METRONOME_SANDBOX=true",
        ),
        (
            {"METRONOME_SANDBOX": "true"},
            "METRONOME_SANDBOX=true and METRONOME_BEARER_TOKEN are both set",
        ),
        ({"METRONOME_SANDBOX": "maybe"}, "METRONOME_SANDBOX must be true or false"),
        (
            {"METRONOME_BASE_URL": "not a url"},
            "METRONOME_BASE_URL must be an http:// or https:// URL with a host, not 'not a url'.",
        ),
        (
            {"METRONOME_BASE_URL": "api.metronome.com"},
            "METRONOME_BASE_URL must be an http:// or https:// URL with a host",
        ),
        ({"SALESFORCE_BASE_URL": "https://"}, "SALESFORCE_BASE_URL must be an http:// or https://"),
        ({"DATABASE_URL": "notaurl"}, "DATABASE_URL must be a URL such as scheme://"),
        ({"DATABASE_URL": "postgress://db/x"}, "DATABASE_URL must be a URL such as scheme://"),
        ({"CACHE_URL": "127.0.0.1:6379"}, "CACHE_URL must be a URL such as scheme://"),
        ({"SESSION_IDLE_HOURS": "a day"}, "SESSION_IDLE_HOURS must be a number"),
        ({"DATABASE_CONN_MAX_AGE": "-1"}, "DATABASE_CONN_MAX_AGE must be at least 0"),
        (
            {"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"},
            "SECURE_PROXY_SSL_HEADER must be a header and a value",
        ),
    ],
)
def test_a_missing_or_malformed_production_setting_stops_start_up_naming_it(variables, message):
    result = run(["manage.py", "check"], **{**PRODUCTION, **variables})
    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in result.stderr


def test_a_malformed_database_url_never_shows_its_password():
    result = run(["manage.py", "check"], **PRODUCTION, DATABASE_URL="postgress://u:hunter2@db/x")
    assert "DATABASE_URL must be a URL" in result.stderr
    assert "hunter2" not in result.stderr


GUNICORN_SETTINGS = """
import json, runpy, sys
config = runpy.run_path(sys.argv[1])
print(json.dumps({name: config[name] for name in ("bind", "threads", "graceful_timeout")}))
"""


def gunicorn_settings(tmp_path: Path, dotenv: str = "", **variables: str) -> dict:
    from_dotenv = tuple(line.partition("=")[0] for line in dotenv.splitlines())
    # A copy beside its own .env: the file reads the .env next to it.
    (tmp_path / "gunicorn.conf.py").write_text((BASE_DIR / "gunicorn.conf.py").read_text())
    (tmp_path / ".env").write_text(dotenv)
    result = run(
        ["-c", GUNICORN_SETTINGS, str(tmp_path / "gunicorn.conf.py")], from_dotenv, **variables
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_gunicorn_listens_on_loopback_by_default(tmp_path):
    assert gunicorn_settings(tmp_path)["bind"] == "127.0.0.1:8000"
    assert gunicorn_settings(tmp_path, PORT="9001")["bind"] == "127.0.0.1:9001"
    assert gunicorn_settings(tmp_path, GUNICORN_BIND="0.0.0.0:8080")["bind"] == "0.0.0.0:8080"


def test_gunicorn_reads_the_same_env_file(tmp_path):
    values = gunicorn_settings(tmp_path, "PORT=9123\nGUNICORN_THREADS=3\n")
    assert values["bind"] == "127.0.0.1:9123"
    assert values["threads"] == 3


def test_a_malformed_gunicorn_setting_stops_it_naming_the_variable(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text((BASE_DIR / "gunicorn.conf.py").read_text())
    result = run(
        ["-c", GUNICORN_SETTINGS, str(tmp_path / "gunicorn.conf.py")], GUNICORN_THREADS="many"
    )
    assert result.returncode != 0
    assert "GUNICORN_THREADS must be a whole number, not 'many'." in result.stderr
