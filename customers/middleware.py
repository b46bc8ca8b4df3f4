from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url


class HealthCheckMiddleware:
    """`/healthz` for load balancers and the container's HEALTHCHECK: 200 while the process
    answers. First in the chain, so it needs no login, no allowed Host header (probes use the
    container's address) and makes no call to Metronome or the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            response = HttpResponse("ok\n", content_type="text/plain")
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)


class HtmxWholePageMiddleware:
    """Answers that must replace the whole page, not be swapped into the table.

    An htmx request whose session expired would swap the login page into the results: tell
    htmx to load the login page as a page instead (`HX-Redirect`). One refused with 403 (a
    permission removed mid-session) would not be swapped at all, so nothing would seem to
    happen: tell htmx to reload, which shows the friendly 403 page."""

    def __init__(self, get_response):
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
