"""The customers page and its CSV download: a form validates the URL, customers/search.py
asks Metronome, customers/urlstate.py builds the links, the template shows the result."""

from __future__ import annotations

import contextvars
import logging
import math
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from customers import (
    concurrency,
    display,
    export,
    metronome,
    search,
    urlstate,
    wiring,
)
from customers.forms import MAX_PASTED_IDS, CustomerFilterForm
from customers.index import live as index_live
from customers.index import refresh as index_refresh
from customers.index import search as index_search
from customers.index.search import Archived
from customers.models import SavedSearch, SearchQuotaExceeded

logger = logging.getLogger(__name__)


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware (its documented typing pattern)."""

    htmx: HtmxDetails


Context = dict[str, Any]


@require_http_methods(["GET", "POST"])
@permission_required("customers.view_customers", raise_exception=True)
@vary_on_headers("HX-Request")
@never_cache  # customer data must not outlive the session in a shared browser's cache
def customer_list(request: HtmxHttpRequest) -> HttpResponse:
    """The customers page and, for htmx, just its results region."""
    if request.method == "POST":
        return _store_search(request)
    return _render(request, _search(request.GET, request.user.pk))


def _store_search(request: HtmxHttpRequest) -> HttpResponse:
    """A search too long for a URL (hundreds of pasted IDs) arrives by POST: its filters are
    stored and it is shown under a short URL naming their key. Only a POST, which Django
    checks for CSRF, ever stores one."""
    form = CustomerFilterForm(request.POST, index_ready=_index_ready())
    if not form.is_valid():
        return _render(request, _context(form, QueryDict()))
    query, pasted_text = form.query(), form.pasted_text
    index_query = form.index_query() if form.uses_index else None
    index_filters = urlstate.index_params(index_query) if index_query is not None else {}
    limit = form.cleaned_data["limit"]
    saved_key = None
    if not urlstate.fits_in_url({**urlstate.filter_params(query, pasted_text), **index_filters}):
        # The toggle (Active, Archived or All) travels in the URL beside the key.
        stored = {**urlstate.stored_filters(query, pasted_text), **index_filters}
        stored.pop("only_archived", None)
        try:
            saved_key = SavedSearch.store(stored, request.user).key
        except SearchQuotaExceeded as refusal:
            return _render(request, {**_context(form, QueryDict()), "refusal": str(refusal)})
    params = urlstate.search_params(
        query,
        saved_key=saved_key,
        limit=limit,
        pasted_text=pasted_text,
        index_query=index_query,
    )
    location = urlstate.list_url(params)
    if not request.htmx:
        return HttpResponseRedirect(location, status=303)
    response = _render(request, _search(QueryDict(urlstate.query_string(params)), request.user.pk))
    response["HX-Push-Url"] = location
    return response


def _context(form: CustomerFilterForm, params: QueryDict) -> Context:
    query = params.urlencode()
    return {"form": form, "retry_url": urlstate.list_url({}) + (f"?{query}" if query else "")}


def _index_ready() -> bool:
    return index_refresh.state().synced_at is not None


def _search(params: QueryDict, user_id: object) -> Context:
    expanded, unknown_search = urlstate.expand_saved_search(params)
    form = CustomerFilterForm({} if unknown_search else expanded, index_ready=_index_ready())
    context = _context(form, params)
    if unknown_search:
        context["notice"] = "That saved search does not exist. Showing all customers instead."
    if not form.is_valid():
        return context

    query = form.query()
    data = form.cleaned_data
    saved_key = None if unknown_search else params.get("search") or None
    if form.uses_index:
        return _index_search(form, context, saved_key)
    if saved_key is None and not urlstate.fits_in_url(
        urlstate.filter_params(query, form.pasted_text)
    ):
        # Storing it would let any link write to the database: only the form's POST may.
        context["too_long"] = {
            name: value for name, value in expanded.items() if name in urlstate.FILTER_PARAMS
        }
        return context

    cursor, trail, page = data["next_page"] or None, data["prev"], data["page"]
    client = wiring.get_client()
    # Pasted IDs are many calls of the company's one token: a person runs few such at once.
    slot = concurrency.expensive_work(user_id) if query.has_id_filters else nullcontext()
    try:
        with slot:
            try:
                found = search.search(
                    client,
                    query,
                    limit=data["limit"],
                    cursor=cursor,
                    salesforce_ids=form.salesforce_ids,
                    refresh=data["refresh"],
                )
            except metronome.BadRequest:
                if cursor is None:
                    raise
                # A damaged or expired cursor: the search still makes sense from page one.
                context["notice"] = "That page link has expired. Showing the first page instead."
                cursor, trail, page = None, [], None
                found = search.search(
                    client,
                    query,
                    limit=data["limit"],
                    salesforce_ids=form.salesforce_ids,
                    refresh=data["refresh"],
                )
    except (metronome.MetronomeError, concurrency.Busy) as error:
        logger.warning("Customer list failed: %s", error)
        context["error"] = str(error)
        return context

    search_link = urlstate.search_params(
        query,
        saved_key=saved_key,
        limit=data["limit"],
        pasted_text=form.pasted_text,
        toggle_in_url=saved_key is not None and "only_archived" in params,
    )
    context.update(
        customers=found.customers,
        rows=display.customer_rows(found.customers),
        report=found.report,
        total=found.total,
        switch_state_url=urlstate.switch_state_url(
            search_link, to_archived=not query.only_archived
        ),
        query=query,
        filtered=query.is_filtered,
        shown_customers="archived customers" if query.only_archived else "active customers",
        paging=urlstate.page_links(
            search_link,
            cursor=cursor,
            trail=trail,
            page=page,
            limit=data["limit"],
            next_cursor=found.next_cursor,
            rows=len(found.customers),
        ),
    )
    return context


SHOWN_CUSTOMERS = {
    Archived.ACTIVE: "active customers",
    Archived.ARCHIVED: "archived customers",
    Archived.ALL: "customers",
}


def _index_search(form: CustomerFilterForm, context: Context, saved_key: str | None) -> Context:
    """The page from the customer index: the index finds this page's customers and gives
    the total, Metronome is re-read for their current values (customers/index/live.py)."""
    query = form.query()
    index_query = form.index_query()
    data = form.cleaned_data
    params = urlstate.search_params(
        query,
        saved_key=saved_key,
        limit=data["limit"],
        pasted_text=form.pasted_text,
        index_query=index_query,
    )
    if saved_key is None and not urlstate.fits_in_url(params):
        context["too_long"] = {
            name: value for name, value in params.items() if name in urlstate.FILTER_PARAMS
        }
        return context
    try:
        found = index_live.page(
            wiring.get_client(), index_query, page=data["page"] or 1, per_page=data["limit"]
        )
    except metronome.MetronomeError as error:
        logger.warning("Customer list (index search) failed: %s", error)
        context["error"] = str(error)
        return context
    customers = [live.customer for live in found.customers]
    context.update(
        customers=customers,
        rows=display.live_rows(found.customers),
        query=query,
        index_query=index_query,
        filtered=True,
        shown_customers=SHOWN_CUSTOMERS[index_query.filters.archived],
        corrections=found.result.corrections if found.result.corrected else None,
        paging=urlstate.index_page_links(params, found.result),
        sort_links=urlstate.sort_links(params, index_query.sort),
    )
    return context


def _index_status() -> Context:
    index = index_refresh.state()
    age = ""
    if index.synced_at is not None:
        fresh = timezone.now() - index.synced_at < timedelta(minutes=1)
        age = "just now" if fresh else f"{timesince(index.synced_at)} ago"
    return {"last_sync": index.synced_at, "index_age": age, "sync_running": index.running}


@require_POST
@permission_required("customers.sync_index", raise_exception=True)
def sync_index(request: HtmxHttpRequest) -> HttpResponse:
    """The "Update index now" button: starts a sync in the background and answers at once
    with the index's status line (for htmx), or sends the browser back to the page."""
    if index_refresh.is_running():
        message = (
            "An index update is already running; searches use the new index as soon as it finishes."
        )
    else:
        index_refresh.start_in_background()
        message = "Index update started. Searches use the new index as soon as it finishes."
    if not request.htmx:
        messages.info(request, message)
        return HttpResponseRedirect(reverse("customers:list"), status=303)
    context = {**_index_status(), "sync_message": message}
    return render(request, "customers/list.html#index-status", context)


def _render(request: HtmxHttpRequest, context: Context) -> HttpResponse:
    # A history-restore request replaces the whole page, so it gets the whole page.
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "customers/list.html#results" if fragment else "customers/list.html"
    context["max_query_string"] = urlstate.MAX_QUERY_STRING
    context["salesforce_ids_per_link"] = urlstate.SALESFORCE_IDS_PER_LINK
    context["max_pasted_ids"] = f"{MAX_PASTED_IDS:,}"
    if not fragment:
        context.update(_index_status())
    return render(request, template, context)


# The export always writes every page, whatever page the person was looking at.
EXPORT_IGNORED_PARAMS = ("next_page", "prev", "page", "limit")


@require_GET
@permission_required("customers.export_customers", raise_exception=True)
def customer_export(request: HtmxHttpRequest) -> HttpResponseBase:
    """Every customer matching the page's filters, as a streamed CSV download.

    The first page is fetched before answering, so a Metronome failure is an error page;
    a failure after the first byte aborts the stream (see customers/export.py)."""
    query_string = request.META.get("QUERY_STRING", "")
    back_url = urlstate.list_url({}) + (f"?{query_string}" if query_string else "")
    params, unknown_search = urlstate.expand_saved_search(request.GET)
    if unknown_search:
        return _export_error(
            request,
            400,
            "That saved search does not exist, so there is nothing to download. "
            "Search again on the customers page, then download.",
            back_url,
        )
    params = params.copy()
    for name in EXPORT_IGNORED_PARAMS:
        params.pop(name, None)
    form = CustomerFilterForm(params, index_ready=_index_ready())
    if not form.is_valid():
        problems = [f"{field.label}: {message}" for field in form for message in field.errors]
        problems += [str(message) for message in form.non_field_errors()]
        return _export_error(
            request, 400, "The filters in this link are not valid.", back_url, problems
        )

    try:
        concurrency.acquire(request.user.pk)
    except concurrency.Busy as busy:
        response = _export_error(request, 429, str(busy), back_url)
        response["Retry-After"] = "30"
        return response
    try:
        download = export.start(
            wiring.get_client(),
            form.query(),
            user=request.user,
            query_string=query_string,
            salesforce_ids=form.salesforce_ids,
            extra_columns=_csv_custom_field_columns(),
            sandbox=settings.METRONOME_SANDBOX,
            index_query=form.index_query() if form.uses_index else None,
        )
    except BaseException as error:
        concurrency.release(request.user.pk)
        if not isinstance(error, metronome.MetronomeError):
            raise
        unavailable = isinstance(error, metronome.MetronomeUnavailable | metronome.RateLimited)
        response = _export_error(request, 503 if unavailable else 502, str(error), back_url)
        if isinstance(error, metronome.RateLimited) and error.retry_after:
            response["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        return response
    return replace(download, body=_releasing(download.body, request.user.pk)).response()


def _csv_custom_field_columns() -> list[str]:
    """The configured custom-field columns first, then every other key the index knows."""
    configured = list(settings.CSV_CUSTOM_FIELD_COLUMNS)
    return configured + [key for key in index_search.custom_field_keys() if key not in configured]


def _releasing(body: Iterator[bytes], user_id: object) -> Iterator[bytes]:
    """The export's body, run in this request's context (the server reads it after the view
    returned, when the request's log context is gone) and giving the person's slot back
    however the stream ends."""
    context = contextvars.copy_context()  # now, while the view runs: not when first read

    def chunks() -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = context.run(next, body)
                except StopIteration:
                    return
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                context.run(close)
            concurrency.release(user_id)

    return chunks()


def _export_error(
    request: HttpRequest,
    status: int,
    message: str,
    back_url: str,
    problems: list[str] | None = None,
) -> HttpResponse:
    context = {"message": message, "problems": problems or [], "back_url": back_url}
    return render(request, "customers/export_error.html", context, status=status)


# --- One customer ------------------------------------------------------------------------------

# A year of monthly invoices, and their scheduled ones.
RECENT_INVOICES = 12


def _list_url_from(back: str | None) -> str:
    """The customers-list URL the customer view was opened from, if `back` is one: only a
    same-site path to the list (with its query string) is used, so the Close link can never
    lead anywhere else."""
    list_path = reverse("customers:list")
    if back:
        parts = urlsplit(back)
        if not parts.scheme and not parts.netloc and parts.path == list_path:
            return urlunsplit(("", "", parts.path, parts.query, ""))
    return list_path


def _same_site_path(url: str | None, request: HttpRequest) -> str | None:
    """`url` as a path and query when it points at this site (htmx and browsers send whole
    URLs), else None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.get_host():
        return None
    return urlunsplit(("", "", parts.path, parts.query, ""))


@require_GET
@permission_required("customers.view_customers", raise_exception=True)
@vary_on_headers("HX-Request")
@never_cache
def customer_detail(request: HtmxHttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """Everything about one customer: a page, or for htmx the side panel over the list."""
    context = _customer_context(request, customer_id)
    client = wiring.get_client()
    status = 200
    try:
        context["customer"] = client.get_customer(context["customer_id"])
    except metronome.CustomerNotFound as error:
        context["not_found"] = str(error)
        status = 404
    except metronome.MetronomeError as error:
        logger.warning("Customer %s failed: %s", customer_id, error)
        context["error"] = str(error)

    panel = request.htmx and not request.htmx.history_restore_request
    if panel:
        # htmx swaps only 2xx answers; the panel says "not found" itself.
        response = render(request, "customers/detail.html#panel", context)
        if _is_customer_view(request.htmx.current_url):
            # One customer after another from the list: keep one history entry for the
            # panel, so Back (and Close) always returns to the list.
            response["HX-Replace-Url"] = request.get_full_path()
        return response
    if "customer" in context:
        # Without JavaScript the invoices come with the page, in their own region.
        context.update(_recent_invoices(client, context["customer_id"]))
    return render(request, "customers/detail.html", context, status=status)


@require_GET
@permission_required("customers.view_customers", raise_exception=True)
@vary_on_headers("HX-Request")
@never_cache
def customer_invoices(request: HtmxHttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """The customer view's invoices region, loaded (and retried) on its own by htmx."""
    context = _customer_context(request, customer_id)
    if not request.htmx:
        # The region alone is no page: a person who lands here gets the customer view.
        return redirect(context["detail_url"])
    context.update(_recent_invoices(wiring.get_client(), context["customer_id"]))
    return render(request, "customers/detail.html#invoices", context)


def _is_customer_view(url: str | None) -> bool:
    try:
        return resolve(urlsplit(url or "").path).view_name == "customers:detail"
    except Resolver404:
        return False


def _customer_context(request: HttpRequest, customer_id: uuid.UUID) -> dict[str, Any]:
    # Where the person came from: an explicit `back`, else the list htmx was showing, else
    # the page that linked here (same-origin referrers are sent, see SECURE_REFERRER_POLICY):
    # the table's links carry no `back` of their own, which keeps 100 rows of HTML small.
    came_from = (
        request.GET.get("back")
        or request.headers.get("HX-Current-URL")
        or request.headers.get("Referer")
    )
    back_url = _list_url_from(_same_site_path(came_from, request))
    back_query = f"?{urlencode({'back': back_url})}"
    return {
        "customer_id": str(customer_id),
        "back_url": back_url,
        "detail_url": reverse("customers:detail", args=[customer_id]) + back_query,
        "invoices_url": reverse("customers:invoices", args=[customer_id]) + back_query,
    }


def _recent_invoices(client: metronome.MetronomeClient, customer_id: str) -> dict[str, Any]:
    try:
        page = client.list_invoices(customer_id, limit=RECENT_INVOICES, sort="date_desc")
    except metronome.MetronomeError as error:
        logger.warning("Invoices of customer %s failed: %s", customer_id, error)
        return {"invoices_loaded": True, "invoices_error": str(error)}
    return {
        "invoices_loaded": True,
        "invoices": page.invoices,
        "more_invoices": bool(page.next_page),
    }
