import logging
import math
import time

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from customers import display, export, metronome
from customers.forms import CustomerFilterForm, expand_saved_search, url_query
from customers.models import ExportAudit
from customers.paging import Paging

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
@permission_required("customers.view_customers", raise_exception=True)
@vary_on_headers("HX-Request")
@never_cache  # customer data must not outlive the session in a shared browser's cache
def customer_list(request: HttpRequest) -> HttpResponse:
    """The customers page and, for htmx, just its results region."""
    if request.method == "POST":
        # A search too long for a URL (hundreds of pasted IDs) arrives by POST: store it and
        # show it under a short URL naming its key.
        form = CustomerFilterForm(request.POST)
        if not form.is_valid():
            return _render(request, {"form": form})
        location = f"{reverse('customers:list')}?{url_query(form.filter_params())}"
        if not request.htmx:
            return HttpResponseRedirect(location, status=303)
        response = _render(request, _search(QueryDict(location.partition("?")[2])))
        response["HX-Push-Url"] = location
        return response
    return _render(request, _search(request.GET))


def _search(query: QueryDict) -> dict:
    params, unknown_search = expand_saved_search(query)
    form = CustomerFilterForm(params)
    query_string = query.urlencode()
    context = {
        "form": form,
        "retry_url": reverse("customers:list") + (f"?{query_string}" if query_string else ""),
    }
    if unknown_search:
        context["notice"] = "That saved search does not exist. Showing all customers instead."
        form = CustomerFilterForm({})
        context["form"] = form
    if not form.is_valid():
        return context

    search = form.query()
    data = form.cleaned_data
    # Links keep a stored search's short key rather than spelling out its long ID lists.
    saved_key = query.get("search") if not unknown_search else None
    base_params = {"search": [saved_key]} if saved_key else form.filter_params()
    cursor, trail = data["next_page"] or None, data["prev"]
    client = metronome.get_client()
    try:
        try:
            page, report = client.search(search, limit=data["limit"], cursor=cursor)
        except metronome.BadRequest:
            if cursor is None:
                raise
            # A damaged or expired cursor: the search still makes sense from its first page.
            context["notice"] = "That page link has expired. Showing the first page instead."
            cursor, trail = None, []
            page, report = client.search(search, limit=data["limit"])
    except metronome.MetronomeError as error:
        logger.warning("Customer list failed: %s", error)
        context["error"] = str(error)
        return context

    context.update(
        customers=page.customers,
        rows=display.customer_rows(page.customers),
        report=report,
        query=search,
        paging=Paging(
            base_params=base_params,
            cursor=cursor,
            trail=trail,
            limit=data["limit"],
            next_cursor=page.next_page,
            rows=len(page.customers),
        ),
        export_query=url_query(base_params),
    )
    return context


def _render(request: HttpRequest, context: dict) -> HttpResponse:
    # A history-restore request replaces the whole page, so it gets the whole page.
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "customers/list.html#results" if fragment else "customers/list.html"
    return render(request, template, context)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("customers:list")


# The export always writes every page, whatever page the person was looking at.
EXPORT_IGNORED_PARAMS = ("next_page", "prev", "limit")


@require_GET
@permission_required("customers.export_customers", raise_exception=True)
def customer_export(request: HttpRequest) -> HttpResponse:
    """Every customer matching the page's filters, as a streamed CSV download.

    The first page is fetched before answering, so a Metronome failure is an error page;
    a failure after the first byte aborts the stream (see customers/export.py)."""
    query_string = request.META.get("QUERY_STRING", "")
    back_url = reverse("customers:list") + (f"?{query_string}" if query_string else "")
    params, unknown_search = expand_saved_search(request.GET)
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
    form = CustomerFilterForm(params)
    if not form.is_valid():
        problems = [f"{field.label}: {message}" for field in form for message in field.errors]
        problems += form.non_field_errors()
        return _export_error(
            request, 400, "The filters in this link are not valid.", back_url, problems
        )

    query = form.query()
    started = time.monotonic()
    audit = ExportAudit.objects.create(
        user=request.user,
        username=request.user.get_username(),
        query_string=export.audited_query_string(query_string),
    )
    pages = metronome.get_client().iter_pages(query, page_size=export.PAGE_SIZE)
    try:
        first_page = next(pages, None)
    except metronome.MetronomeError as error:
        export.finish_audit(
            audit, ExportAudit.Outcome.FAILED, rows=0, started=started, error=str(error)
        )
        logger.warning("CSV export %s by %s failed: %s", audit.pk, audit.username, error)
        unavailable = isinstance(error, metronome.MetronomeUnavailable | metronome.RateLimited)
        response = _export_error(request, 503 if unavailable else 502, str(error), back_url)
        if isinstance(error, metronome.RateLimited) and error.retry_after:
            response["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        return response
    except Exception as error:
        export.finish_audit(
            audit,
            ExportAudit.Outcome.FAILED,
            rows=0,
            started=started,
            error=f"unexpected error ({type(error).__name__})",
        )
        raise

    response = StreamingHttpResponse(
        export.stream(
            first_page,
            pages,
            audit=audit,
            started=started,
            extra_columns=settings.CSV_CUSTOM_FIELD_COLUMNS,
        ),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{export.filename(query, audit.started_at)}"'
    )
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _export_error(
    request: HttpRequest,
    status: int,
    message: str,
    back_url: str,
    problems: list[str] | None = None,
) -> HttpResponse:
    context = {"message": message, "problems": problems or [], "back_url": back_url}
    return render(request, "customers/export_error.html", context, status=status)
