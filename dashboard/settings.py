"""Settings for the Metronome customer dashboard: the one place that reads the environment.

Every variable is listed, with a comment, in `.env.example`. A fresh checkout runs with
no configuration at all (DEBUG on, the built-in sandbox instead of Metronome, SQLite).
Values go through django-environ's own casting, checked first: a malformed one (a URL, a
number, a yes/no), or with DEBUG off a missing production setting, stops start-up with an
ImproperlyConfigured error that names the variable.
"""

from pathlib import Path
from typing import TypeVar

import environ
import jinja2
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from dashboard import __version__

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is a convenience for development; real deployments set the environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

N = TypeVar("N", int, float)

# Every boolean spelling django-environ understands; anything else is a mistake to report,
# where `env.bool` alone would quietly read it as false.
_BOOLEAN_WORDS = {*environ.Env.BOOLEAN_TRUE_STRINGS, "false", "off", "no", "n", "0"}


def _raw(name: str) -> str:
    return str(env.str(name, default="")).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if not raw:
        return default
    if raw.lower() not in _BOOLEAN_WORDS:
        raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")
    return bool(env.bool(name))


def env_number(name: str, default: N, *, minimum: float, cast: type[N]) -> N:
    raw = _raw(name)
    if not raw:
        return default
    try:
        cast(raw)  # django-environ's float drops stray characters ("10s" would read 10).
        value: N = env.int(name) if cast is int else env.float(name)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}.")
    return value


def env_list(name: str) -> list[str]:
    return [item.strip() for item in env.list(name, default=[]) if item.strip()]


def env_required_in_production(name: str, dev_default: str) -> str:
    value = _raw(name)
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is false.")


def env_http_url(name: str, default: str = "") -> str:
    """An http(s) URL with a host, or blank: a typo here would otherwise look like an outage."""
    raw = _raw(name).rstrip("/")
    if not raw:
        return default
    url = env.url(name)
    if url.scheme not in ("http", "https") or not url.hostname or any(c.isspace() for c in raw):
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// URL with a host, not {raw!r}."
        )
    return raw


def env_service_url(name: str, schemes: dict[str, str], default: str) -> str:
    """A DATABASE_URL or CACHE_URL whose scheme django-environ knows (it would otherwise
    guess, or fail on first use)."""
    raw = _raw(name)
    if not raw:
        return default
    scheme = raw.partition("://")[0] if "://" in raw else ""
    if scheme not in schemes:
        known = ", ".join(sorted(s for s in schemes if "+" not in s and "-" not in s))
        raise ImproperlyConfigured(
            f"{name} must be a URL such as scheme://user:password@host:port/name, "
            f"with one of the schemes {known}; got {raw.split('@')[-1]!r}."
        )
    return raw


DEBUG = env_bool("DEBUG", default=True)

SECRET_KEY = env_required_in_production(
    "SECRET_KEY", dev_default="django-insecure-local-development-only"
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or (
    ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is false.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "customers",
]

MIDDLEWARE = [
    "dashboard.request_log.RequestLogMiddleware",
    "customers.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "customers.middleware.SessionRenewalMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "customers.middleware.HtmxWholePageMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes must come last: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATE_CONTEXT_PROCESSORS = [
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "django.contrib.messages.context_processors.messages",
    "customers.context_processors.dashboard_settings",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": TEMPLATE_CONTEXT_PROCESSORS,
        },
    },
    {
        # The customers page's body and its regions (templates/jinja2/customers/): 100 rows
        # and a form of printed strings, which Jinja2 renders in a fraction of the Django
        # engine's time (bench/README.md). Asked for by name (`using="jinja2"`, the
        # `list_page` tag); every other page is a Django template.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "dashboard.jinja_env.environment",
            "context_processors": TEMPLATE_CONTEXT_PROCESSORS,
            # A name the view does not give is an error, not an empty cell: the views
            # give every name the page reads (customers/views.py, PAGE_NAMES).
            "undefined": jinja2.StrictUndefined,
            "keep_trailing_newline": True,  # the same bytes as the Django engine wrote
        },
    },
]

# Without DATABASE_URL: a SQLite file in DATA_DIR (the container's volume), else the checkout.
DATA_DIR = Path(_raw("DATA_DIR") or BASE_DIR)
DATABASES = {
    "default": env.db_url_config(
        env_service_url(
            "DATABASE_URL", environ.Env.DB_SCHEMES, f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
        )
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers and the index sync share the file. Write-ahead logging lets
    # readers go on while one writes, and in it `synchronous=NORMAL` commits without waiting
    # on the disk (a power cut, not a crash, may lose the last commits): a page's session,
    # work-slot and audit writes took a disk flush each, 1-6 ms apiece. A write transaction
    # takes its lock when it starts (IMMEDIATE) and waits up to 20 s for it, instead of
    # failing with "database is locked" when two workers upgrade a read at once.
    # Reads go through a memory map of up to 256 MB (a 100,000-customer index is 130 MB): a
    # name search reads a row for each of its ~1,300 candidates, and through SQLite's own
    # 2 MB page cache each was a read() of its page, a third of the statement's time
    # (bench/README.md). The map is the kernel's page cache, shared by every connection and
    # worker; an I/O error under it ends the process, so the file belongs on a local disk
    # (docs/deployment.md), as WAL needs anyway.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        init_command=(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=268435456;"
        ),
        transaction_mode="IMMEDIATE",
        timeout=20,
    )
DATABASES["default"]["CONN_MAX_AGE"] = env_number("DATABASE_CONN_MAX_AGE", 60, minimum=0, cast=int)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# How long `manage.py migrate` (a container's first step) waits for the database to answer.
DATABASE_WAIT_SECONDS = env_number("DATABASE_WAIT_SECONDS", 60.0, minimum=0, cast=float)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# redis://host:6379/1 selects Django's own RedisCache: shared by every instance, so cached
# API pages and the readiness result hold across them. Default: memory of
# each process, which no two gunicorn workers share.
CACHES = {
    "default": env.cache_url_config(
        env_service_url("CACHE_URL", environ.Env.CACHE_SCHEMES, "locmemcache://")
    )
}
# Whether every worker of every instance sees the same cache. Only then may state that must
# hold everywhere (a session ended by a logout, a permission taken away) be kept in it; a
# file cache is shared by one machine's workers only, so it does not count.
CACHE_IS_SHARED = CACHES["default"]["BACKEND"] in {
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
    "django.core.cache.backends.db.DatabaseCache",
}
# Seconds /readyz reuses its answer, so frequent probes do not each call Metronome.
READINESS_CACHE_SECONDS = env_number("READINESS_CACHE_SECONDS", 5, minimum=0, cast=int)

# Sessions live in the database (shared by every instance), read through the cache only when
# the cache is shared too: over per-process memory, a worker would go on trusting a session
# that a logout on another worker deleted.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if CACHE_IS_SHARED
    else "django.contrib.sessions.backends.db"
)
# A tool that shows billing data: a session ends after SESSION_IDLE_HOURS without a request
# (each request renews it), and optionally when the browser closes.
SESSION_COOKIE_AGE = round(env_number("SESSION_IDLE_HOURS", 12.0, minimum=0.1, cast=float) * 3600)
# Renewed by customers.middleware.SessionRenewalMiddleware: at most every few minutes, not
# a database write on every request (SESSION_SAVE_EVERY_REQUEST would be one per page).
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)

AUTHENTICATION_BACKENDS = [
    # Axes first, so a locked-out username or address is refused before its password is checked.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, the user and their permissions read in one query
    # (customers/permissions.py).
    "customers.permissions.UserAndPermissionsBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# `home` sends each person to their landing view, if they chose one.
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Password reset sends email: its pages exist only when email is configured, by EMAIL_URL
# (e.g. smtp+tls://user:password@smtp.example.com:587) or EMAIL_HOST and its companions.
if _raw("EMAIL_URL"):
    globals().update(env.email_url("EMAIL_URL"))  # EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS, ...
elif _raw("EMAIL_HOST"):
    EMAIL_HOST = _raw("EMAIL_HOST")
    EMAIL_PORT = env_number("EMAIL_PORT", 587, minimum=1, cast=int)
    EMAIL_HOST_USER = _raw("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = _raw("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
PASSWORD_RESET_ENABLED = bool(_raw("EMAIL_URL") or _raw("EMAIL_HOST"))
DEFAULT_FROM_EMAIL = _raw("DEFAULT_FROM_EMAIL") or "webmaster@localhost"
# Reset requests an hour from one address, and reset emails an hour to one email address
# (known and unknown email addresses alike; counted in the database).
PASSWORD_RESET_LIMIT_PER_HOUR = env_number("PASSWORD_RESET_LIMIT_PER_HOUR", 5, minimum=1, cast=int)

# Failed logins: after AXES_FAILURE_LIMIT failures for one username *from one address*,
# that pair is refused for AXES_COOLOFF_MINUTES, so nobody can lock a colleague out from
# elsewhere. One address is refused altogether after AXES_ADDRESS_FAILURE_LIMIT failures
# for any usernames: high, because a whole office can share one address behind NAT.
AXES_FAILURE_LIMIT = env_number("AXES_FAILURE_LIMIT", 5, minimum=1, cast=int)
AXES_ADDRESS_FAILURE_LIMIT = env_number("AXES_ADDRESS_FAILURE_LIMIT", 100, minimum=1, cast=int)
AXES_COOLOFF_TIME = env_number("AXES_COOLOFF_MINUTES", 15, minimum=1, cast=int) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Counts failures in the database, so every instance sees the same count.
AXES_HANDLER = "customers.login_throttle.UsernameAndAddressHandler"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# `manage.py prune` (run daily: cron, or compose.yaml's housekeeping sidecar) deletes saved
# searches, login-attempt records, export audits and index sync runs older than these.
SAVED_SEARCH_RETENTION_DAYS = env_number("SAVED_SEARCH_RETENTION_DAYS", 30, minimum=1, cast=int)
LOGIN_RECORD_RETENTION_DAYS = env_number("LOGIN_RECORD_RETENTION_DAYS", 90, minimum=1, cast=int)
EXPORT_AUDIT_RETENTION_DAYS = env_number("EXPORT_AUDIT_RETENTION_DAYS", 400, minimum=1, cast=int)
SYNC_RUN_RETENTION_DAYS = env_number("SYNC_RUN_RETENTION_DAYS", 30, minimum=1, cast=int)
# Behind proxies, REMOTE_ADDR is the nearest proxy: failures are counted against the client
# address those proxies put in X-Forwarded-For instead (see customers/login_throttle.py).
TRUSTED_PROXY_COUNT = env_number("AXES_PROXY_COUNT", 0, minimum=0, cast=int)
AXES_CLIENT_IP_CALLABLE = "customers.login_throttle.client_ip_address"
AXES_USERNAME_CALLABLE = "customers.login_throttle.client_username"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "dashboard.staticfiles.ForgivingManifestStorage"
        )
    },
}
# A static file added since the last collectstatic is still served, from its source folder,
# instead of every page failing (see dashboard/staticfiles.py).
WHITENOISE_USE_FINDERS = True

# --- Metronome -------------------------------------------------------------------------
# The same variable names as Metronome's official SDKs. With no token the dashboard runs on
# its built-in sandbox: in-process, or the standalone sandbox server at METRONOME_BASE_URL.
METRONOME_BEARER_TOKEN = _raw("METRONOME_BEARER_TOKEN")
METRONOME_BASE_URL = env_http_url("METRONOME_BASE_URL")
METRONOME_SANDBOX = not METRONOME_BEARER_TOKEN
# Production without a token would quietly show made-up customers: only when asked for.
_sandbox_wanted = env_bool("METRONOME_SANDBOX", default=False)
if METRONOME_BEARER_TOKEN and _sandbox_wanted:
    raise ImproperlyConfigured(
        "METRONOME_SANDBOX=true and METRONOME_BEARER_TOKEN are both set: unset one of them."
    )
if METRONOME_SANDBOX and not DEBUG and not _sandbox_wanted:
    raise ImproperlyConfigured(
        "METRONOME_BEARER_TOKEN must be set when DEBUG is false "
        "(or METRONOME_SANDBOX=true to serve the sandbox's made-up customers on purpose)."
    )
if not METRONOME_SANDBOX and not METRONOME_BASE_URL:
    METRONOME_BASE_URL = "https://api.metronome.com"
METRONOME_TIMEOUT = env_number("METRONOME_TIMEOUT", 10.0, minimum=0.1, cast=float)
METRONOME_CONNECT_TIMEOUT = env_number("METRONOME_CONNECT_TIMEOUT", 5.0, minimum=0.1, cast=float)
METRONOME_MAX_RETRIES = env_number("METRONOME_MAX_RETRIES", 2, minimum=0, cast=int)
# However many retries are allowed, one request never spends longer than this waiting to retry.
METRONOME_RETRY_BUDGET = env_number("METRONOME_RETRY_BUDGET", 20.0, minimum=0, cast=float)
# The longest one attempt may take from sending to the last byte, however slowly it arrives.
METRONOME_DEADLINE = env_number("METRONOME_DEADLINE", 30.0, minimum=0.1, cast=float)
# Every loop over Metronome's pages (export, sync, pasted-ID lookups, invoices) stops, and
# says so, past the most rows any account plausibly has (with an index: its last count times
# PAGING_HEADROOM, plus 1,000), past PAGING_MAX_ROWS whatever the index says, or after
# PAGING_MAX_SECONDS: an API answering new cursors for ever cannot keep it going.
PAGING_MAX_ROWS = env_number("PAGING_MAX_ROWS", 1_000_000, minimum=1, cast=int)
PAGING_HEADROOM = env_number("PAGING_HEADROOM", 1.5, minimum=1, cast=float)
PAGING_MAX_SECONDS = env_number("PAGING_MAX_SECONDS", 3600.0, minimum=1, cast=float)
# Every request to Metronome names the dashboard and its version (not configurable).
METRONOME_USER_AGENT = f"metronome-customer-dashboard/{__version__}"
# Where a person opens a customer in Metronome's own web app.
METRONOME_APP_URL = env_http_url("METRONOME_APP_URL", default="https://app.metronome.com")
# e.g. https://acme.lightning.force.com: Salesforce account IDs become links when set.
SALESFORCE_BASE_URL = env_http_url("SALESFORCE_BASE_URL")
# Custom fields that get a column of their own in the CSV export, besides the JSON column.
CSV_CUSTOM_FIELD_COLUMNS = env_list("CSV_CUSTOM_FIELD_COLUMNS")
# The sandbox's seed size, when it runs in-process.
SANDBOX_CUSTOMERS = env_number("SANDBOX_CUSTOMERS", 5000, minimum=1, cast=int)

# Long pasted-ID searches and CSV exports one person may run at once (see
# customers/concurrency.py); a slot frees itself after EXPENSIVE_WORK_SLOT_SECONDS unless
# its work is still running (a CSV export renews it every minute).
EXPENSIVE_WORK_PER_USER = env_number("EXPENSIVE_WORK_PER_USER", 2, minimum=1, cast=int)
EXPENSIVE_WORK_SLOT_SECONDS = env_number("EXPENSIVE_WORK_SLOT_SECONDS", 900, minimum=1, cast=int)
# CSV exports one person may start in a minute, one after another (counted in the database).
EXPORTS_PER_MINUTE = env_number("EXPORTS_PER_MINUTE", 6, minimum=1, cast=int)

# --- Security headers --------------------------------------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = (
    0 if DEBUG else env_number("SECURE_HSTS_SECONDS", 31536000, minimum=0, cast=int)
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# `preload` only makes the domain eligible for browsers' preload lists (hstspreload.org,
# which takes registrable domains only); `check --deploy` asks for it.
SECURE_HSTS_PRELOAD = not DEBUG and env_bool("SECURE_HSTS_PRELOAD", default=True)
# Behind a TLS-terminating proxy: e.g. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be a header and a value, "
            "e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_header)

LOG_LEVEL = _raw("LOG_LEVEL").upper() or "INFO"
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
# One JSON object per line on stdout, for a log collector; plain text for people, by
# default when DEBUG is on (`make run`).
LOG_FORMAT = _raw("LOG_FORMAT").lower() or ("plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "dashboard.request_log.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The request log line comes from dashboard.request_log.RequestLogMiddleware instead.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # customers.metronome logs each API call itself at DEBUG (method, path, status,
        # duration, attempt); httpx's own lines would repeat them with the full query string.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Searching (customers/search.py, customers/models.py) --------------------------------
# How long a pasted-ID search's lookups are reused for its later pages, in seconds.
SEARCH_CACHE_SECONDS = env_number("SEARCH_CACHE_SECONDS", 120, minimum=0, cast=int)
# While the customer index's last sync is at most this old, a pasted-ID search asks Metronome
# only for the IDs' states and Salesforce ID forms the index knows (checked against the
# answers; customers/lookups.py); 0: always every form in both states.
PASTED_IDS_INDEX_MAX_AGE_SECONDS = env_number(
    "PASTED_IDS_INDEX_MAX_AGE_SECONDS", 1800, minimum=0, cast=int
)
# The requests one process serves at once: gunicorn's threads a worker (gunicorn.conf.py
# reads the same variable). The customer view's pool of threads is sized by it.
SERVER_THREADS = env_number("GUNICORN_THREADS", 16, minimum=1, cast=int)
# How long a page of customers from Metronome answers the same page again (Previous, Back,
# a colleague opening the same link), in seconds; 0 turns it off. The page's Refresh skips it.
API_PAGE_CACHE_SECONDS = env_number("API_PAGE_CACHE_SECONDS", 30, minimum=0, cast=int)
# Long searches (too long for a URL) one person may store in 24 hours.
SAVED_SEARCHES_PER_DAY = env_number("SAVED_SEARCHES_PER_DAY", 200, minimum=0, cast=int)
# Named saved views (customers/saved_views.py): how many one person may own, and how many
# the team (everyone on this dashboard) may share, which is the list everyone sees.
SAVED_VIEWS_PER_PERSON = env_number("SAVED_VIEWS_PER_PERSON", 50, minimum=0, cast=int)
SAVED_VIEWS_SHARED = env_number("SAVED_VIEWS_SHARED", 200, minimum=0, cast=int)
