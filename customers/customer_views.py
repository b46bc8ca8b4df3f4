"""The customer view: a page (`/customers/<id>/`) or, for htmx, the side panel over the list;
each of its regions on its own URL (its retry, answered by the same partial); one invoice's
line items; and the invoice PDF, streamed through the dashboard for those who may export.

Page and panel alike ask Metronome for the customer and every region side by side
(`customer_page.load_page`), so with 100 ms per call either is ready in about one call's
time; a region that failed stays in its place with its error and a retry.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from customers import customer_page, customer_regions, display, errors, metronome, wiring
from customers.customer_page import REGION_TITLES, REGIONS, Region
from customers.views import HtmxHttpRequest

logger = logging.getLogger(__name__)

Context = dict[str, Any]
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@require_GET
@errors.requires("customers.view_customers")
@vary_on_headers("HX-Request")
@never_cache  # customer data must not outlive the session in a shared browser's cache
def customer_detail(request: HtmxHttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """Everything about one customer: a page, or for htmx the side panel over the list."""
    context = _customer_context(request, customer_id)
    client = wiring.get_client()
    shared = dict(context)

    def render_region(region: Region) -> str:
        region_context = {**shared, **_region_context(region, shared["now"])}
        return render_to_string(
            region_template(region.name), region_context, request, using="jinja2"
        )

    page = customer_page.load_page(
        client,
        context["customer_id"],
        now=context["now"],
        refresh=request.GET.get("refresh") == "1",
        render=render_region,
    )
    try:
        return _customer_response(request, context, customer_id, page)
    finally:
        page.wait()


def _customer_response(
    request: HtmxHttpRequest, context: Context, customer_id: uuid.UUID, page: customer_page.Page
) -> HttpResponse:
    # The partials each region's own URL answers with (so a retried region is the same
    # HTML), each read where the template shows it: the page around them is drawn while
    # the slower regions are awaited. Shown also when the customer's own call failed: one
    # failing endpoint stays in its own region.
    context["region_html"] = page.regions
    if page.customer is not None:
        context["customer"] = page.customer
        context["metronome_url"] = display.metronome_customer_url(
            settings.METRONOME_APP_URL, page.customer.id
        )
        context["salesforce_url"] = display.salesforce_account_url(
            settings.SALESFORCE_BASE_URL, page.customer.salesforce_account_id or ""
        )
    elif page.customer_error is not None:
        _customer_failed(context, customer_id, page.customer_error)

    panel = request.htmx and not request.htmx.history_restore_request
    status = 404 if "not_found" in context and not panel else 200
    if panel:
        # htmx swaps only 2xx answers; the panel says "not found" itself.
        response = render(request, "customers/detail.html#panel", context)
        # The address names the list it was opened from, so a reload or a shared link keeps
        # "← Customers" leading back to that search, not to the whole list.
        address = context["detail_url"] if context["carries_search"] else request.get_full_path()
        if _is_customer_view(request.htmx.current_url):
            # One customer after another from the list: keep one history entry for the
            # panel, so Back (and Close) always returns to the list.
            response["HX-Replace-Url"] = address
        else:
            response["HX-Push-Url"] = address
        return response
    return render(request, "customers/detail.html", context, status=status)


def _customer_failed(
    context: Context, customer_id: uuid.UUID, error: metronome.MetronomeError
) -> None:
    if isinstance(error, metronome.CustomerNotFound):
        context["not_found"] = str(error)
        return
    logger.warning("Customer %s failed: %s", customer_id, error)
    context["error"] = str(error)


@require_GET
@errors.requires("customers.view_customers")
@vary_on_headers("HX-Request")
@never_cache
def customer_region(request: HtmxHttpRequest, customer_id: uuid.UUID, region: str) -> HttpResponse:
    """One region of the customer view alone: what its Retry loads, with htmx."""
    if region not in REGIONS:
        raise Http404("No such region")
    context = _customer_context(request, customer_id)
    if not request.htmx:
        # The region alone is no page: a person who lands here gets the customer view.
        return redirect(context["detail_url"])
    loaded = customer_page.load_region(
        wiring.get_client(),
        context["customer_id"],
        region,
        now=context["now"],
        refresh=request.GET.get("refresh") == "1",
    )
    context.update(_region_context(loaded, context["now"]))
    return render(request, region_template(region), context, using="jinja2")


def region_template(name: str) -> str:
    """A region's template: Jinja2, like the customers page's body (dashboard/jinja_env.py)."""
    return f"customers/regions/{name}.html"


# The names each region's template reads besides `<name>_error`.
_REGION_NAMES = {
    "contracts": ("contracts", "contract_rows"),
    "balances": ("balances", "balance_rows"),
    "alerts": ("alerts", "alert_rows"),
    "usage": ("usage", "usage_charts"),
    "invoices": ("invoices", "more_invoices", "unreadable_invoices"),
}


def _region_context(region: Region, now: Any) -> Context:
    """What a region's template reads: `<name>_error` (None when it loaded) and its rows.
    A failed region's rows are None: Jinja2 takes a name not given for an error."""
    name = region.name
    if region.failed:
        return {f"{name}_error": region.error, **dict.fromkeys(_REGION_NAMES[name])}
    data = region.data
    context: Context = {f"{name}_error": None}
    if name == "contracts":
        context.update(contracts=data, contract_rows=customer_regions.contract_rows(data, now))
    elif name == "balances":
        context.update(balances=data, balance_rows=customer_regions.balance_rows(data, now))
    elif name == "alerts":
        context.update(alerts=data, alert_rows=customer_regions.alert_rows(data))
    elif name == "usage":
        context.update(usage=data, usage_charts=customer_regions.usage_charts(data))
    else:
        context.update(
            invoices=data.invoices,
            more_invoices=bool(data.next_page),
            unreadable_invoices=data.unreadable,
        )
    return context


@require_GET
@errors.requires("customers.view_customers")
@vary_on_headers("HX-Request")
@never_cache
def invoice_detail(
    request: HtmxHttpRequest, customer_id: uuid.UUID, invoice_id: uuid.UUID
) -> HttpResponse:
    """One invoice's line items: a row under the invoice for htmx, else a page of its own."""
    context = _customer_context(request, customer_id)
    context["invoice_id"] = str(invoice_id)
    client = wiring.get_client()
    as_row = request.htmx and not request.htmx.history_restore_request
    # A page of its own (a link pasted into a ticket) names whose invoice it is: the
    # customer is read beside the invoice, usually from the cache the customer view filled.
    customer = (
        None
        if as_row
        else customer_page.region_pool.submit(
            functools.partial(customer_page.load_customer, client, context["customer_id"])
        )
    )
    status = 200
    try:
        context["invoice"] = client.get_invoice(context["customer_id"], str(invoice_id))
    except (metronome.CustomerNotFound, metronome.InvoiceNotFound) as error:
        context["invoice_error"] = str(error)
        status = 404
    except metronome.MetronomeError as error:
        logger.warning("Invoice %s of customer %s failed: %s", invoice_id, customer_id, error)
        context["invoice_error"] = str(error)
    if customer is None:
        return render(request, "customers/invoice_lines.html#invoice-lines", context)
    try:
        context["customer"] = customer.result()
    except Exception as error:  # the cache's or Metronome's: the invoice is what was asked for
        logger.warning("Invoice %s: its customer was not read for the page: %s", invoice_id, error)
    return render(request, "customers/invoice.html", context, status=status)


@require_GET
@errors.requires("customers.export_customers")
@never_cache
def invoice_pdf(
    request: HttpRequest, customer_id: uuid.UUID, invoice_id: uuid.UUID
) -> HttpResponseBase:
    """The invoice's PDF, streamed from Metronome: the token stays on the server, the file
    is checked to be a PDF before the first byte is sent and capped in size."""
    context = _customer_context(request, customer_id)
    try:
        pdf = wiring.get_client().open_invoice_pdf(context["customer_id"], str(invoice_id))
    except metronome.MetronomeError as error:
        logger.warning("PDF of invoice %s failed: %s", invoice_id, error)
        missing = isinstance(error, metronome.CustomerNotFound | metronome.InvoiceNotFound)
        context["invoice_id"] = str(invoice_id)
        context["invoice_error"] = str(error)
        return render(request, "customers/invoice.html", context, status=404 if missing else 502)
    response = StreamingHttpResponse(pdf.chunks(), content_type="application/pdf")
    filename = _UNSAFE_FILENAME.sub("-", f"invoice-{invoice_id}.pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    # No Content-Length passed on: the bytes are Metronome's, and a length it declared
    # wrongly would break the download mid-way; the stream ends when theirs does.
    return response


def _list_url_from(back: str | None) -> str:
    """The customers-list URL the customer view was opened from, if `back` is one: only a
    same-site path to the list (with its query string) is used, so the Close link can never
    lead anywhere else."""
    list_path = reverse("customers:list")
    if back:
        parts = _split(back)
        if parts and not parts.scheme and not parts.netloc and parts.path == list_path:
            return urlunsplit(("", "", parts.path, parts.query, ""))
    return list_path


def _split(url: str) -> SplitResult | None:
    """`url`'s parts, or None for what is not a URL at all ("http://[" raises)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _same_site_path(url: str | None, request: HttpRequest) -> str | None:
    """`url` as a path and query when it points at this site (htmx and browsers send whole
    URLs), else None."""
    parts = _split(url) if url else None
    if parts is None or (parts.netloc and parts.netloc != request.get_host()):
        return None
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _is_customer_view(url: str | None) -> bool:
    try:
        parts = _split(url or "")
        return parts is not None and resolve(parts.path).view_name == "customers:detail"
    except Resolver404:
        return False


# The most a customer's links carry of the list they came from: with the rest of a region's
# URL, well within gunicorn's request line (limit_request_line, 8,190).
MAX_BACK_QUERY = 4000


def _customer_context(request: HttpRequest, customer_id: uuid.UUID) -> Context:
    # Where the person came from: an explicit `back`, else the list htmx was showing, else
    # the page that linked here (same-origin referrers are sent, see SECURE_REFERRER_POLICY):
    # the table's links carry no `back` of their own, which keeps 100 rows of HTML small.
    came_from = _same_site_path(
        request.GET.get("back")
        or request.headers.get("HX-Current-URL")
        or request.headers.get("Referer"),
        request,
    )
    if _is_customer_view(came_from):
        # From another customer opened from the list: the list that one came from.
        parts = _split(came_from or "")
        came_from = parse_qs(parts.query).get("back", [None])[0] if parts else None
    back_url = _list_url_from(came_from)
    plain_back_query = f"?{urlencode({'back': reverse('customers:list')})}"
    back_query = f"?{urlencode({'back': back_url})}"
    if len(back_query) > MAX_BACK_QUERY:
        # A long search's URL, encoded again inside this one's: the customer's own links
        # (its address, regions, Retry) would pass what a request line may hold, and a
        # reload answer 400. They lead back to the whole list; the way back shown on the
        # page still leads to the search.
        back_query = plain_back_query
    detail_url = reverse("customers:detail", args=[customer_id]) + back_query
    region_urls = {
        name: reverse(f"customers:{name}", args=[customer_id]) + back_query for name in REGIONS
    }
    return {
        "customer_id": str(customer_id),
        "back_url": back_url,
        "back_query": back_query,
        # Whether the customer's links name a search to go back to (not the whole list).
        "carries_search": back_query != plain_back_query,
        "detail_url": detail_url,
        "refresh_url": f"{detail_url}&refresh=1",
        "region_urls": region_urls,
        "region_titles": REGION_TITLES,
        # Kept for outside scripts and the tests that read it: the invoices region's URL.
        "invoices_url": region_urls["invoices"],
        # Each invoice's line items and PDF live under it (see customers/urls.py).
        "invoices_path": reverse("customers:invoices", args=[customer_id]),
        "now": timezone.now(),
    }
