"""Settings for the Metronome customer dashboard: the one place that reads the environment.

Every variable is listed, with a comment, in `.env.example`. A fresh checkout runs with
no configuration at all (DEBUG on, the built-in sandbox instead of Metronome, SQLite).
With DEBUG off, a missing or malformed production setting stops start-up with an
ImproperlyConfigured error that names the variable.
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is a convenience for development; real deployments set the environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_number(name: str, default: float, *, minimum: float, cast=float):
    raw = env.str(name, default="").strip() or str(default)
    try:
        value = cast(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}.")
    return value


def env_list(name: str) -> list[str]:
    return [item.strip() for item in env.str(name, default="").split(",") if item.strip()]


def env_required_in_production(name: str, dev_default: str) -> str:
    value = env.str(name, default="").strip()
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is false.")


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
    "customers.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
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

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "customers.context_processors.dashboard_settings",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="").strip() or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env_number("DATABASE_CONN_MAX_AGE", 60, minimum=0, cast=int)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": env.cache_url_config(env.str("CACHE_URL", default="").strip() or "locmemcache://")
}

AUTHENTICATION_BACKENDS = [
    # Axes first, so a locked-out username or address is refused before its password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "customers:list"
LOGOUT_REDIRECT_URL = "login"

# Failed logins: after AXES_FAILURE_LIMIT failures for one username, or from one address,
# further attempts are refused for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env_number("AXES_FAILURE_LIMIT", 5, minimum=1, cast=int)
AXES_COOLOFF_TIME = env_number("AXES_COOLOFF_MINUTES", 15, minimum=1, cast=int) / 60
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
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
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Metronome -------------------------------------------------------------------------
# The same variable names as Metronome's official SDKs. With no token the dashboard runs on
# its built-in sandbox: in-process, or the standalone sandbox server at METRONOME_BASE_URL.
METRONOME_BEARER_TOKEN = env.str("METRONOME_BEARER_TOKEN", default="").strip()
METRONOME_BASE_URL = env.str("METRONOME_BASE_URL", default="").strip().rstrip("/")
METRONOME_SANDBOX = not METRONOME_BEARER_TOKEN
if not METRONOME_SANDBOX and not METRONOME_BASE_URL:
    METRONOME_BASE_URL = "https://api.metronome.com"
METRONOME_TIMEOUT = env_number("METRONOME_TIMEOUT", 10.0, minimum=0.1)
METRONOME_CONNECT_TIMEOUT = env_number("METRONOME_CONNECT_TIMEOUT", 5.0, minimum=0.1)
METRONOME_MAX_RETRIES = env_number("METRONOME_MAX_RETRIES", 2, minimum=0, cast=int)
# However many retries are allowed, one request never spends longer than this waiting to retry.
METRONOME_RETRY_BUDGET = env_number("METRONOME_RETRY_BUDGET", 20.0, minimum=0)
# Where a person opens a customer in Metronome's own web app.
METRONOME_APP_URL = env.str("METRONOME_APP_URL", default="https://app.metronome.com").rstrip("/")
# e.g. https://acme.lightning.force.com: Salesforce account IDs become links when set.
SALESFORCE_BASE_URL = env.str("SALESFORCE_BASE_URL", default="").strip().rstrip("/")
# Custom fields that get a column of their own in the CSV export, besides the JSON column.
CSV_CUSTOM_FIELD_COLUMNS = env_list("CSV_CUSTOM_FIELD_COLUMNS")
# The sandbox's seed size, when it runs in-process.
SANDBOX_CUSTOMERS = env_number("SANDBOX_CUSTOMERS", 5000, minimum=1, cast=int)

# Long pasted-ID searches and CSV exports one person may run at once (see
# customers/concurrency.py); a slot frees itself after EXPENSIVE_WORK_SLOT_SECONDS anyway.
EXPENSIVE_WORK_PER_USER = env_number("EXPENSIVE_WORK_PER_USER", 2, minimum=1, cast=int)
EXPENSIVE_WORK_SLOT_SECONDS = env_number("EXPENSIVE_WORK_SLOT_SECONDS", 900, minimum=1, cast=int)

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

LOG_LEVEL = env.str("LOG_LEVEL", default="").strip().upper() or "INFO"
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # customers.metronome logs each API call itself (method, path, status, duration,
        # attempt); httpx's own lines would repeat them with the full query string.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Searching (customers/search.py, customers/models.py) --------------------------------
# How long a pasted-ID search's lookups are reused for its later pages, in seconds.
SEARCH_CACHE_SECONDS = env_number("SEARCH_CACHE_SECONDS", 120, minimum=0, cast=int)
# Long searches (too long for a URL) one person may store in 24 hours.
SAVED_SEARCHES_PER_DAY = env_number("SAVED_SEARCHES_PER_DAY", 200, minimum=0, cast=int)
