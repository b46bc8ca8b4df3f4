import logging

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from customers import metronome
from customers.forms import CustomerFilterForm, expand_saved_search, url_query
from customers.paging import Paging

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
@permission_required("customers.view_customers", raise_exception=True)
@vary_on_headers("HX-Request")
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
            page = client.list_customers(search, limit=data["limit"], cursor=cursor)
        except metronome.BadRequest:
            if cursor is None:
                raise
            # A damaged or expired cursor: the search still makes sense from its first page.
            context["notice"] = "That page link has expired. Showing the first page instead."
            cursor, trail = None, []
            page = client.list_customers(search, limit=data["limit"])
        report = client.match_ids(search) if search.has_id_filters else None
    except metronome.MetronomeError as error:
        logger.warning("Customer list failed: %s", error)
        context["error"] = str(error)
        return context

    context.update(
        customers=page.customers,
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
