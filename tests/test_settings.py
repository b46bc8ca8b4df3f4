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
}


# Each case starts a Python process.
pytestmark = pytest.mark.slow


def run(args: list[str], **variables: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        **dict.fromkeys(DOCUMENTED, ""),
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


def test_login_throttling_counts_usernames_and_addresses_separately():
    values = settings_with(**PRODUCTION, AXES_FAILURE_LIMIT="3", AXES_PROXY_COUNT="1")
    assert values["AXES_LOCKOUT_PARAMETERS"] == ["username", "ip_address"]
    assert values["AXES_FAILURE_LIMIT"] == 3
    assert values["TRUSTED_PROXY_COUNT"] == 1


def test_a_fresh_checkout_runs_without_configuration():
    values = settings_with()
    assert values["DEBUG"] is True
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0


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
