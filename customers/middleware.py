import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url

from customers import metronome, wiring

logger = logging.getLogger(__name__)
READINESS_CACHE_KEY = "readyz:metronome"


class HealthCheckMiddleware:
    """`/healthz` for load balancers and the container's HEALTHCHECK: 200 while the process
    answers, with no call to Metronome or the database. `/readyz`: 200 when the database
    and Metronome answer, else 503 with the reasons in JSON. Early in the chain, so they need
    no login and no allowed Host header (probes use the container's address)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            response = HttpResponse("ok\n", content_type="text/plain")
            response["Cache-Control"] = "no-store"
            return response
        if request.path == "/readyz" and request.method in ("GET", "HEAD"):
            problems = readiness_problems()
            response = JsonResponse(
                {"ready": not problems, "problems": problems}, status=503 if problems else 200
            )
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)


def readiness_problems() -> dict[str, str]:
    """What keeps this instance from serving pages, by dependency; empty when ready.

    The database is this instance's own connection: checked on every probe (one `SELECT 1`).
    Metronome is the same for every instance: its answer is kept READINESS_CACHE_SECONDS in
    the shared cache, so probes of every instance make one `limit=1` call per period. The
    reasons are short and fixed (the probe needs no login); the details go to the log."""
    problems: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("readiness: the database did not answer")
        problems["database"] = "The database (DATABASE_URL) did not answer."
    try:
        metronome_problem = cache.get(READINESS_CACHE_KEY)
    except Exception:  # The cache is a dependency too: Redis down is "not ready".
        logger.exception("readiness: the cache did not answer")
        problems["cache"] = "The cache (CACHE_URL) did not answer."
        return problems
    if metronome_problem is None:
        try:
            wiring.get_client().list_customers(metronome.CustomerQuery(), limit=1)
            metronome_problem = ""
        except metronome.MetronomeError as error:
            logger.warning("readiness: Metronome: %s", error)
            metronome_problem = f"Metronome did not answer as expected ({type(error).__name__})."
        cache.set(READINESS_CACHE_KEY, metronome_problem, settings.READINESS_CACHE_SECONDS)
    if metronome_problem:
        problems["metronome"] = metronome_problem
    return problems


class HtmxWholePageMiddleware:
    """Answers that must replace the whole page, not be swapped into the table.

    An htmx request whose session expired would swap the login page into the results: tell
    htmx to load the login page as a page instead (`HX-Redirect`). One refused with 403 (a
    permission removed mid-session) would not be swapped at all, so nothing would seem to
    happen: tell htmx to reload, which shows the friendly 403 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not getattr(request, "htmx", False):
            return response
        if response.status_code == 403:
            response["HX-Refresh"] = "true"
        elif response.status_code == 302:
            login_path = urlsplit(resolve_url(settings.LOGIN_URL)).path
            if urlsplit(response["Location"]).path == login_path:
                redirect = HttpResponse(status=200)
                redirect["HX-Redirect"] = response["Location"]
                return redirect
        return response


# A session lasts SESSION_COOKIE_AGE from its last renewal; renewing it costs a write, so it
# is renewed when this much of it has passed, not on every request.
SESSION_RENEWAL_SECONDS = 300


class SessionRenewalMiddleware:
    """Sliding session expiry (SESSION_IDLE_HOURS of inactivity) with one session write per
    few minutes of use instead of one per request. Sits after SessionMiddleware, so the
    session it marks is saved, and its cookie sent again, on the way out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = request.session
        if session.get(SESSION_KEY) is not None:
            now = int(time.time())
            if now - int(session.get(RENEWED_AT, 0)) >= SESSION_RENEWAL_SECONDS:
                session[RENEWED_AT] = now
        return response


RENEWED_AT = "renewed_at"
