"""The baseline the customers page is measured against: what a bare Django view costs for
the same 100 customers. One httpx call to the API, `response.json()`, a plain template."""

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from customers.sandbox import SANDBOX_TOKEN

_http = httpx.Client(
    base_url=settings.METRONOME_BASE_URL,
    headers={"Authorization": f"Bearer {SANDBOX_TOKEN}", "Accept": "application/json"},
    timeout=10,
)


def bare_customers(request: HttpRequest) -> HttpResponse:
    response = _http.get("/v1/customers", params={"only_archived": "false", "limit": "100"})
    response.raise_for_status()
    return render(request, "bench/bare.html", {"customers": response.json()["data"]})
