"""The customers page and its CSV downloads. Each view reads one way: the request's stored
search expanded (customers/listing.py) -> the form validates it into the page state
(customers/urlstate.py's ListState) -> one call below (listing.find, export.start) -> the
links, from the state -> the template."""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails
from markupsafe import Markup

from customers import (
    after_response,
    columns,
    concurrency,
    errors,
    export,
    listing,
    metronome,
    saved_views,
    urlstate,
    wiring,
)
from customers.forms import MAX_PASTED_IDS, CustomerFilterForm
from customers.index import refresh as index_refresh
from customers.index import search as index_search
from customers.models import SavedSearch, SearchQuotaExceeded

logger = logging.getLogger(__name__)


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware (its documented typing pattern)."""

    htmx: HtmxDetails


Context = dict[str, Any]


@require_http_methods(["GET", "POST"])
@errors.requires("customers.view_customers")
@vary_on_headers("HX-Request")
@never_cache  # customer data must not outlive the session in a shared browser's cache
def customer_list(request: HtmxHttpRequest) -> HttpResponseBase:
    """The customers page and, for htmx, just its results region."""
    if request.method == "POST":
        return _store_search(request)
    return _show(request, request.GET)


def _show(request: HtmxHttpRequest, given: QueryDict) -> HttpResponseBase:
    params, unknown_search = listing.expand_saved_search(given)
    form = CustomerFilterForm({} if unknown_search else params, index_ready=_index_ready())
    context: Context = {"form": form, "retry_url": urlstate.list_url_as_given(given)}
    if unknown_search:
        context["notice"] = "That saved search does not exist. Showing all customers instead."
    if not form.is_valid():
        response = _render(request, context)
        if request.htmx and any(not value for value in given.values()):
            # The form sends its empty fields too; the URL kept is the search as typed.
            response["HX-Push-Url"] = context["retry_url"]
        return response
    if not unknown_search:
        # The search as given, validated: what an open saved view is compared with.
        context["valid_form"] = form
    saved_key = None if unknown_search else given.get("search") or None
    state = form.state(saved_key=saved_key, toggle_in_url="only_archived" in given)
    state = saved_views.keep_view_links(state, given)  # the chosen columns, the open view
    context["page_params"] = given
    if saved_key is None and not urlstate.fits_in_url(state.search_params()):
        # Storing it would let any link write to the database: only the form's POST may.
        return _render(request, {**context, "too_long": urlstate.hidden_fields(state)})
    # A submitted form sends every field, empty ones too: the URL kept leaves them out.
    submitted = any(not value for value in given.values())
    if submitted and not request.htmx:
        return HttpResponseRedirect(state.url(), status=303)
    find = functools.partial(
        listing.find,
        wiring.get_client(),
        state,
        user_id=request.user.pk,
        salesforce_ids=form.salesforce_ids,
    )
    if not _is_fragment(request):
        # What the page's first part says before the answer: the filters fold away when a
        # search is active, the sort is kept (both the state's, as the answer's will be).
        context.update(filtered=state.is_filtered, index_query=state.index_query)
        return _streamed_page(request, context, find)
    after_sent: list[after_response.Work] = []  # as the streamed page's (below)
    try:
        with after_response.collecting(after_sent):
            answer = _answer(find)
        response = _render(request, {**context, **answer})
    except BaseException:
        after_response.run(after_sent)  # no response will close: a slot is given back now
        raise
    after_response.when_sent(response, after_sent)
    if submitted:
        response["HX-Push-Url"] = answer.get("state", state).url()
    return response


def _answer(find: functools.partial[listing.Found]) -> Context:
    """The results region's context for the page `find` answers, or its error."""
    try:
        found = find()
    except listing.FAILURES as error:
        logger.warning("Customer list failed: %s", error)
        return {"error": str(error)}
    return _results(found)


# Where the results region goes in a streamed page: a string no template or value writes.
_RESULTS_SLOT = "<!--\x00results\x00-->"


class StreamedPage(StreamingHttpResponse):
    """The customers page sent in two parts: everything but the results at once, the
    results when Metronome has answered (`_streamed_page`). `content` reads it whole, for
    whoever wants the finished page in one piece (Django's test client's users)."""

    _whole: bytes | None = None

    @property
    def content(self) -> bytes:  # type: ignore[override]
        if self._whole is None:
            self._whole = b"".join(cast(Iterator[bytes], self.streaming_content))
            self.streaming_content = [self._whole]
        return self._whole


def _streamed_page(
    request: HtmxHttpRequest, context: Context, find: functools.partial[listing.Found]
) -> StreamedPage:
    """The whole page, its results region last to arrive: the layout, the filters and a
    loading line show while Metronome answers, which a blank page hid (4 s of nothing at 4 s
    latency). The rows are still in the page's HTML for scripts, as ever. The first part is
    drawn before the view returns, so the messages it shows are marked read and its CSRF
    token set by the middleware on the way out."""
    slot = Markup(_RESULTS_SLOT)  # noqa: S704 (a constant of this module, no outside text)
    # `_render` adds the saved view's names to it (saved_views.page_context): the results
    # region reuses them rather than reading the view again.
    page_context = {**context, "results_slot": slot}
    html = _render(request, page_context).content
    head, tail = html.decode().split(_RESULTS_SLOT)
    # Runs when the server sends the second part: the request's log context and its tally
    # of API calls (dashboard/request_log.py) are those of now.
    calls_context = contextvars.copy_context()
    # What the results defer (a long search's slot, its cache for the next pages) runs once
    # the page is sent (customers/after_response.py).
    after_sent: list[after_response.Work] = []

    def results() -> str:
        try:
            with after_response.collecting(after_sent):
                answer = _answer(find)
            results_context = {**page_context, **answer, "results_slot": None}
            saved_views.chosen_table(context.get("page_params", QueryDict()), results_context)
            return render_to_string(
                "customers/_results.html",
                {**_NO_PAGE_NAMES, **results_context},
                request,
                using="jinja2",
            )
        except Exception:
            # The page's start is sent: a 500 page cannot follow. Say so where the rows go.
            logger.exception("Customer list failed while the page was being sent")
            return _UNEXPECTED_FAILURE

    def parts() -> Iterator[bytes]:
        yield head.encode()
        yield calls_context.run(results).encode()
        yield tail.encode()

    response = StreamedPage(parts(), content_type="text/html; charset=utf-8")
    after_response.when_sent(response, after_sent)
    # A proxy that buffers (nginx does by default) would hold the first part back.
    response["X-Accel-Buffering"] = "no"
    return response


_UNEXPECTED_FAILURE = (
    '<section id="results" class="results" aria-label="Results">'
    '<div class="problem" role="alert"><p><strong>Could not load customers.</strong> '
    "Something went wrong on the dashboard's side; it has been logged. Reload the page to "
    "try again.</p></div></section>"
)


def _results(found: listing.Found) -> Context:
    """The results region's context: the rows and what the page says about them, and its
    links, all read from the state answered."""
    state = found.state
    context: Context = {
        "state": state,
        "rows": found.rows,
        "customers": found.customers,
        "report": found.report,
        "total": found.total,
        "matched_as": found.matched_as,
        "query": state.query,
        "index_query": state.index_query,
        "filtered": state.is_filtered,
        # What the count calls "filtered": more than the toggle and the sort (an index
        # search of All, or a sort alone, shows every customer of its state).
        "narrowed": state.query.has_id_filters or bool(state.narrowing_params()),
        "shown_customers": state.shown_customers,
        "switch_state_url": state.switch_state_url(),
        "download_url": state.download_url(),
        "report_download_url": state.download_url("customers:export_report"),
        "stale_error": found.stale_error,
        "exact_extras": found.exact_extras,
        "found": found,
    }
    if found.notice:
        context["notice"] = found.notice
    if found.report is not None:
        # The report counts every pasted ID's match; the rows are narrowed by whatever else
        # the search holds, and only customers both boxes matched when both were used.
        narrowing = state.narrowing_params()
        context["narrowed_by"] = saved_views.filters_in_words(narrowing)
        query = state.query
        context["both_boxes"] = bool(query.customer_ids and query.salesforce_account_ids)
        if narrowing:
            context["every_match_url"] = state.every_match_url()
            if context["every_match_url"] is None:
                context["every_match_fields"] = state.every_match_fields()
        if found.index_result is None:  # an index search is in the index's order or sort
            context["order_links"] = state.order_links()
    if found.index_result is not None:
        # The exact matches the view would not show, first on page one, are not counted:
        # they are not among the view's rows on its other pages, nor in its CSV, and the
        # notice above the table says which they are. Unless they are all there is: then
        # they are the rows counted (never "rows 0 to 0" above a row).
        paging = state.index_page_links(found.index_result)
        context["extras_counted"] = bool(found.exact_extras) and not found.index_result.customer_ids
        if context["extras_counted"]:
            extras = found.exact_extras
            paging = replace(
                paging, total=extras, total_shown=f"{extras:,}", first_row=1, last_row=extras
            )
        context["paging"] = paging
        context["sort_links"] = state.sort_links()
        if found.index_result.corrected:
            context["corrections"] = found.index_result.corrections
            # Nothing matched among the other filters, not in the whole account.
            context["corrected_within_filters"] = state.query.has_id_filters or any(
                name != "q" for name in state.narrowing_params()
            )
    else:
        context["paging"] = state.page_links(
            next_cursor=found.next_cursor, rows=found.customer_count
        )
        index = index_refresh.state()
        if not state.is_filtered and index.synced_at is not None:
            # The plain list is Metronome's, in its order; its headers still sort, by
            # asking the index (a sort is an index search of everything in the state).
            context["sort_links"] = state.sort_links()
            # Metronome does not count a listing; the index counted at its last sync.
            about = (
                index.archived_customers if state.query.only_archived else index.active_customers
            )
            last_row = context["paging"].last_row
            if about is not None and (last_row is None or last_row <= about):
                context["index_total"] = about
    context["retry_url"] = state.url()
    return context


def _store_search(request: HtmxHttpRequest) -> HttpResponseBase:
    """A search too long for a URL (hundreds of pasted IDs) arrives by POST: its filters are
    stored and it is shown under a short URL naming their key. Only a POST, which Django
    checks for CSRF, ever stores one."""
    form = CustomerFilterForm(request.POST, index_ready=_index_ready())
    if not form.is_valid():
        return _render(request, {"form": form})
    state = saved_views.keep_view_links(form.state().first_page(), request.POST)
    if not urlstate.fits_in_url(state.search_params()):
        # The toggle (Active, Archived or All) travels in the URL beside the key.
        stored = state.search_params()
        for beside_the_key in ("only_archived", "limit"):
            stored.pop(beside_the_key, None)
        try:
            saved_key = SavedSearch.store(stored, request.user).key
        except SearchQuotaExceeded as refusal:
            return _render(request, {"form": form, "refusal": str(refusal)})
        state = saved_views.keep_view_links(
            form.state(saved_key=saved_key).first_page(), request.POST
        )
    location = state.url()
    if not request.htmx:
        return HttpResponseRedirect(location, status=303)
    response = _show(request, QueryDict(urlsplit(location).query))
    response["HX-Push-Url"] = location
    return response


def _index_ready() -> bool:
    return index_refresh.state().synced_at is not None


def _index_status() -> Context:
    index = index_refresh.state()
    age = ""
    if index.synced_at is not None:
        fresh = timezone.now() - index.synced_at < timedelta(minutes=1)
        age = "just now" if fresh else f"{timesince(index.synced_at)} ago"
    return {"last_sync": index.synced_at, "index_age": age, "sync_running": index.running}


@require_POST
@errors.requires("customers.sync_index")
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
    return render(request, "customers/_index_status.html", context, using="jinja2")


# Every name the customers page's Jinja2 templates read beyond the form and the settings
# (templates/jinja2/customers/). Jinja2 takes a missing name for an error, as it should
# (a misspelt name is a bug, not an empty cell): those a request does not set are None.
PAGE_NAMES = (
    # the index's status (the whole page only)
    "sync_message", "last_sync", "index_age", "sync_running",
    # what went wrong instead of results
    "notice", "refusal", "too_long", "error", "stale_error",
    # the results and their links (_results)
    "state", "query", "index_query", "filtered", "narrowed", "shown_customers", "customers",
    "rows", "total", "index_total", "report", "matched_as", "exact_extras", "extras_counted",
    "corrections", "paging", "sort_links", "corrected_within_filters", "narrowed_by",
    "both_boxes", "every_match_url", "every_match_fields", "order_links",
    "switch_state_url", "download_url", "report_download_url",
    # saved views and chosen columns (saved_views.page_context)
    "saved_views", "current_view", "view_notice", "view_problems", "view_modified",
    "view_can_change", "view_state", "chooser_url", "columns_param", "chosen_headers",
    # a streamed page's place for its results region (_streamed_page)
    "results_slot",
)  # fmt: skip
_NO_PAGE_NAMES = dict.fromkeys(PAGE_NAMES)


def _is_fragment(request: HtmxHttpRequest) -> bool:
    # A history-restore request replaces the whole page, so it gets the whole page.
    return bool(request.htmx and not request.htmx.history_restore_request)


def _render(request: HtmxHttpRequest, context: Context) -> HttpResponse:
    fragment = _is_fragment(request)
    context["fragment"] = fragment
    context["max_query_string"] = urlstate.MAX_QUERY_STRING
    context["salesforce_ids_per_link"] = urlstate.SALESFORCE_IDS_PER_LINK
    context["max_pasted_ids"] = f"{MAX_PASTED_IDS:,}"
    if not fragment:
        context.update(_index_status())
    page_params = context.get("page_params", QueryDict())
    saved_views.page_context(request, page_params, context, full_page=not fragment)
    context = {**_NO_PAGE_NAMES, **context}
    if fragment:
        return render(request, "customers/_results.html", context, using="jinja2")
    # The layout is base.html's (a Django template); its body is the Jinja2 template.
    return render(request, "customers/list.html", context, using="django")


@require_GET
@errors.requires("customers.export_customers")
def customer_export(request: HtmxHttpRequest) -> HttpResponseBase:
    """Every customer matching the page's filters, as a streamed CSV download.

    The first page is fetched before answering, so a Metronome failure is an error page;
    a failure after the first byte aborts the stream (see customers/export.py). With
    `columns` (a saved view's, or chosen on the page), the file has those columns."""
    choice = columns.parse(request.GET.get("columns"))
    start = functools.partial(export.start, positions=columns.csv_positions(choice))
    return _download(request, start, choice)


@require_GET
@errors.requires("customers.export_customers")
def match_report_export(request: HtmxHttpRequest) -> HttpResponseBase:
    """What became of each pasted ID (pasted ID, matched as, customer, archived, not found,
    ignored), as a CSV beside the customers' one: same permission, same audit."""
    return _download(request, export.start_match_report)


# A download is every page, whatever page the person was looking at.
EXPORT_IGNORED_PARAMS = ("next_page", "prev", "page", "page_sig", "limit")


def _download(
    request: HtmxHttpRequest, start: export.Start, choice: columns.ColumnChoice = columns.NO_CHOICE
) -> HttpResponseBase:
    back_url = urlstate.list_url_as_given(request.GET)
    if _from_another_site(request):
        return _export_error(
            request,
            403,
            "The link to it was followed from another website, and a download is made in "
            "your name (it is recorded, and counts towards your downloads a minute).",
            back_url,
            confirm_url=request.get_full_path(),
        )
    params, unknown_search = listing.expand_saved_search(request.GET)
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
        export.check_rate(request.user)
        slot = concurrency.acquire(request.user.pk)
    except (export.TooFrequent, concurrency.Busy) as busy:
        response = _export_error(request, 429, str(busy), back_url)
        response["Retry-After"] = str(busy.retry_after)
        return response
    try:
        download = start(
            wiring.get_client(),
            form.state(),
            user=request.user,
            salesforce_ids=form.salesforce_ids,
            ignored=form.ignored_values,
            extra_columns=(
                choice.custom_field_keys if choice.chosen else _csv_custom_field_columns()
            ),
            sandbox=settings.METRONOME_SANDBOX,
        )
    except BaseException as error:
        concurrency.release(request.user.pk, slot)
        if not isinstance(error, metronome.MetronomeError):
            raise
        unavailable = isinstance(error, metronome.MetronomeUnavailable | metronome.RateLimited)
        response = _export_error(request, 503 if unavailable else 502, str(error), back_url)
        if isinstance(error, metronome.RateLimited) and error.retry_after:
            response["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        return response
    return replace(download, body=_releasing(download.body, request.user.pk, slot)).response()


def _csv_custom_field_columns() -> list[str]:
    """The configured custom-field columns first, then every other key the index knows."""
    configured = list(settings.CSV_CUSTOM_FIELD_COLUMNS)
    return configured + [key for key in index_search.custom_field_keys() if key not in configured]


# How often a running export renews its slot (customers/concurrency.py), well within
# EXPENSIVE_WORK_SLOT_SECONDS: an export may run for up to PAGING_MAX_SECONDS.
SLOT_KEPT_EVERY = 60.0


def _releasing(body: Iterator[bytes], user_id: object, slot: int) -> Iterator[bytes]:
    """The export's body, run in this request's context (the server reads it after the view
    returned, when the request's log context is gone), holding the person's slot while it
    runs and giving it back however the stream ends."""
    context = contextvars.copy_context()  # now, while the view runs: not when first read

    def chunks() -> Iterator[bytes]:
        kept_at = time.monotonic()
        try:
            while True:
                try:
                    chunk = context.run(next, body)
                except StopIteration:
                    return
                if time.monotonic() - kept_at >= SLOT_KEPT_EVERY:
                    concurrency.keep(user_id, slot)
                    kept_at = time.monotonic()
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                context.run(close)
            concurrency.release(user_id, slot)

    return chunks()


def _from_another_site(request: HttpRequest) -> bool:
    """Whether the browser says another site sent this request (Sec-Fetch-Site). A download
    is a GET that writes (its audit row, the person's allowance a minute), and a session
    cookie rides along on a link followed from anywhere. Scripts and older browsers send no
    such header and are let through; so are a bookmark or a typed address ("none")."""
    return request.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none")


def _export_error(
    request: HttpRequest,
    status: int,
    message: str,
    back_url: str,
    problems: list[str] | None = None,
    *,
    confirm_url: str = "",
) -> HttpResponse:
    context = {
        "message": message,
        "problems": problems or [],
        "back_url": back_url,
        "confirm_url": confirm_url,
    }
    return render(request, "customers/export_error.html", context, status=status)
