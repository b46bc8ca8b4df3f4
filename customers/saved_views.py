"""Named saved views and the column chooser, over HTTP: open, save, save as new, save
changes, rename and share, delete, the landing view, and the chooser's own page. Plain
forms and redirects, so each works without JavaScript; the rules are in
customers/saved_view_rules.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers import columns, errors, urlstate
from customers import saved_view_rules as rules
from customers.forms import ArchivedField, CustomerFilterForm, PastedIdsField, YesNoField
from customers.index import search as index_search
from customers.models import SavedView

VIEW_CUSTOMERS = "customers.view_customers"


def _state_from(data: QueryDict) -> QueryDict:
    """Only a list page's search parameters (a stored search's key among them), never its
    paging: what a view may hold and the chooser passes on."""
    kept = QueryDict(mutable=True)
    for name in (*rules.STATE_PARAMS, "search"):
        if values := [value for value in data.getlist(name) if value]:
            kept.setlist(name, values)
    return kept


# --- On the customers page ---------------------------------------------------------------------

# The chosen table's sortable columns, and the keys of urlstate.sort_links.
SORTABLE = {"name": "name", "created": "created", "updated": "updated"}


def _with_open_view(state: QueryDict, params: Mapping[str, str]) -> QueryDict:
    """`state` and the open view's slug: the column chooser passes it on, so the page it
    returns to still has the view open (Modified, with Save changes), not a plain search."""
    slug = params.get("view", "")
    if not _is_slug(slug):
        return state
    kept = state.copy()
    kept["view"] = slug
    return kept


def keep_view_links(state: urlstate.ListState, params: Mapping[str, str]) -> urlstate.ListState:
    """`state` with what every link of the customers page keeps beside its search: the
    columns (in canonical form) and the open view's slug, from the request's `params`."""
    slug = params.get("view", "")
    return replace(
        state,
        columns=columns.parse(params.get("columns")).param,
        view=slug if _is_slug(slug) else "",
    )


def _is_slug(text: str) -> bool:
    return text.isascii() and text.isalnum() and len(text) <= 16


def page_context(
    request: HttpRequest, params: QueryDict, context: dict[str, Any], *, full_page: bool
) -> None:
    """Add to the customers page's context what saved views and chosen columns show: the
    rows in the chosen columns, the open view and whether the search differs from it, the
    search as the save forms post it, and (full page only) the list of views."""
    state = _state_from(params)
    context["view_state"] = state.urlencode()
    chooser = _with_open_view(state, params)
    context["chooser_url"] = reverse("customers:columns") + (
        f"?{chooser.urlencode()}" if chooser else ""
    )
    chosen_table(params, context)
    slug = params.get("view", "")
    if slug and _is_slug(slug):
        view = rules.find(request.user, slug)
        if view is None:
            context["view_notice"] = "That saved view does not exist, or it is not shared with you."
        else:
            current = rules.canonical_state(params, valid_form=context.get("valid_form"))
            context.update(
                current_view=view,
                view_problems=current.problems,
                view_modified=not current.problems and rules.is_modified(view, current),
                view_can_change=rules.can_change(request.user, view),
            )
    if full_page:
        context["saved_views"] = rules.view_list(request.user)


def chosen_table(params: QueryDict, context: dict[str, Any]) -> None:
    """With chosen columns, the parameter to keep and, when the context has found customers
    (`found`), their rows and headers in those columns instead of the standard table's."""
    choice = columns.parse(params.get("columns"))
    if not choice.chosen:
        return
    context["columns_param"] = choice.param
    found = context.get("found")
    if found is not None and found.customers:
        notes = [row.note for row in found.rows]
        context["rows"] = columns.rows(found.customers, choice, notes, found.matched_as)
        sort_links = context.get("sort_links") or {}
        context["chosen_headers"] = [
            (column.header, sort_links.get(SORTABLE.get(column.key, "")))
            for column in choice.columns
        ]
        if found.matched_as is not None:
            context["chosen_headers"].append((columns.MATCHED_AS_HEADER, None))


def _open_url(view: SavedView) -> str:
    return reverse("customers:open_view", args=[view.slug])


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "customers/views/missing.html", status=404)


@require_GET
@never_cache
def landing(request: HttpRequest) -> HttpResponse:
    """`/` and where a login lands: the person's landing view, else the customers page
    (which refuses, naming the group to ask for, someone who may not see customers)."""
    view = rules.landing_view(request.user)
    return HttpResponseRedirect(_open_url(view) if view else reverse("customers:list"))


@require_GET
@errors.requires(VIEW_CUSTOMERS)
@never_cache
def open_view(request: HttpRequest, slug: str) -> HttpResponse:
    """A view's short, stable URL: the customers page with the view's search and columns.
    Filters that no longer validate are shown there with the problem, like any URL's."""
    view = rules.find(request.user, slug)
    if view is None:
        return _not_found(request)
    return HttpResponseRedirect(urlstate.list_url(rules.list_params(view)))


@require_http_methods(["GET", "POST"])
@errors.requires(VIEW_CUSTOMERS)
@never_cache
def save_new(request: HttpRequest) -> HttpResponse:
    """Save the search the `state` names as a new view (also "save as new"). GET shows the
    form on its own page; the customers page posts the same form from beside the results."""
    source = request.POST if request.method == "POST" else request.GET
    state_text = (
        source.get("state", "") if request.method == "POST" else _state_from(source).urlencode()
    )
    context = {
        "state": state_text,
        "name": source.get("name", ""),
        "shared": bool(source.get("shared")),
    }
    if request.method == "POST":
        state = rules.canonical_state(QueryDict(state_text))
        try:
            view = rules.create(
                request.user,
                name=source.get("name"),
                shared=bool(source.get("shared")),
                state=state,
            )
        except rules.Refused as refusal:
            context["refusal"] = str(refusal)
        else:
            messages.success(request, f"Saved the view “{view.name}”.")
            return HttpResponseRedirect(_open_url(view), status=303)
    context["back_url"] = urlstate.list_url(QueryDict(state_text))
    # What is about to be saved, in the words the view's own page will use.
    shown = rules.canonical_state(QueryDict(state_text))
    context["filters_shown"] = filters_in_words(shown.params)
    context["columns_shown"] = columns.parse(",".join(shown.columns)).columns
    return render(request, "customers/views/save.html", context)


@require_POST
@errors.requires(VIEW_CUSTOMERS)
def save_changes(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Save changes to this view": the page's current search replaces the view's."""
    view = rules.find(request.user, slug)
    if view is None:
        return _not_found(request)
    state_text = request.POST.get("state", "")
    state = rules.canonical_state(QueryDict(state_text))
    try:
        rules.save_changes(request.user, view, state)
    except rules.Refused as refusal:
        messages.error(request, str(refusal))
        params = {**dict(QueryDict(state_text).lists()), "view": [view.slug]}
        return HttpResponseRedirect(urlstate.list_url(params), status=303)
    messages.success(request, f"Saved changes to the view “{view.name}”.")
    return HttpResponseRedirect(_open_url(view), status=303)


@require_http_methods(["GET", "POST"])
@errors.requires(VIEW_CUSTOMERS)
@never_cache
def edit(request: HttpRequest, slug: str) -> HttpResponse:
    """A view's own page: rename, share or unshare, make it the landing view, delete."""
    view = rules.find(request.user, slug)
    if view is None:
        return _not_found(request)
    context: dict[str, object] = {}
    if request.method == "POST":
        try:
            rules.rename_and_share(
                request.user,
                view,
                name=request.POST.get("name"),
                shared=bool(request.POST.get("shared")),
            )
        except rules.Refused as refusal:
            context["refusal"] = str(refusal)
            view.refresh_from_db()
        else:
            messages.success(request, f"Saved the view “{view.name}”.")
            return HttpResponseRedirect(
                reverse("customers:edit_view", args=[view.slug]), status=303
            )
    landing = rules.landing_view(request.user)
    context.update(
        view=view,
        open_url=_open_url(view),
        can_change=rules.can_change(request.user, view),
        is_owner=view.owner_id == request.user.pk,
        is_landing=landing is not None and landing.pk == view.pk,
        columns_shown=columns.parse(",".join(view.columns)).columns,
        filters_shown=filters_in_words(view.params),
    )
    return render(request, "customers/views/edit.html", context)


# A sort as the column headers show it: the column, then its direction in words.
_SORTS_IN_WORDS = {
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "created": "Created, oldest first",
    "-created": "Created, newest first",
    "updated": "Updated, oldest first",
    "-updated": "Updated, newest first",
}


def filters_in_words(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A view's stored parameters as the customers page's form words them, in its order:
    each field's label, and its value as the form offers it (a choice by its label, a list
    of IDs with its count). A parameter the form no longer knows keeps its own name."""
    form = CustomerFilterForm()
    order = {name: position for position, name in enumerate(form.fields)}
    described: list[tuple[str, str]] = []
    for name in sorted(params, key=lambda name: (order.get(name, len(order)), name)):
        value = params[name]
        values = [str(item) for item in value] if isinstance(value, list) else [str(value)]
        field = form.fields.get(name)
        if field is None:
            described.append((name, ", ".join(values)))
            continue
        label = str(field.label or name)
        try:
            text = _value_in_words(name, field, values)
        except ValidationError:  # stored before the form changed: as stored
            text = ", ".join(values)
        described.append((label, text))
    return described


def _value_in_words(name: str, field: forms.Field, values: list[str]) -> str:
    if name == "sort":
        return ", ".join(_SORTS_IN_WORDS.get(item, item) for item in values)
    if isinstance(field, PastedIdsField):
        # The box as stored holds what was pasted beside the IDs too: read as the box does.
        found = field.read("\n".join(values))
        count, ignored = len(found.ids), sum(item.count for item in found.ignored)
        text = f"{count} ID{'' if count == 1 else 's'}: {', '.join(found.as_pasted)}"
        return text + (
            f" ({ignored} other value{'' if ignored == 1 else 's'} ignored)" if ignored else ""
        )
    if isinstance(field, YesNoField):
        return "yes" if field.to_python(values[0]) else "no"
    if isinstance(field, forms.ChoiceField):
        if isinstance(field, ArchivedField):
            values = [field.to_python(item) for item in values]
        # The form's own fields: flat (value, label) lists.
        labels = {str(key): str(choice) for key, choice in field.choices}  # type: ignore[union-attr,misc]
        return ", ".join(labels.get(item, item) for item in values)
    return ", ".join(values)


@require_http_methods(["GET", "POST"])
@errors.requires(VIEW_CUSTOMERS)
def delete(request: HttpRequest, slug: str) -> HttpResponse:
    """GET asks to confirm (a deleted view cannot be had back, and a shared one is gone for
    the whole team); POST deletes."""
    view = rules.find(request.user, slug)
    if view is None:
        return _not_found(request)
    name = view.name
    try:
        if request.method == "GET":
            rules.must_change(request.user, view)
            return render(request, "customers/views/delete.html", {"view": view})
        rules.delete(request.user, view)
    except rules.Refused as refusal:
        messages.error(request, str(refusal))
        return HttpResponseRedirect(reverse("customers:edit_view", args=[slug]), status=303)
    messages.success(request, f"Deleted the view “{name}”.")
    return HttpResponseRedirect(reverse("customers:list"), status=303)


@require_POST
@errors.requires(VIEW_CUSTOMERS)
def set_landing(request: HttpRequest, slug: str) -> HttpResponse:
    """Make the view this person's landing page, or (`landing` empty) stop."""
    view = rules.find(request.user, slug)
    if view is None:
        return _not_found(request)
    chosen = bool(request.POST.get("landing"))
    rules.set_landing(request.user, view if chosen else None)
    messages.success(
        request,
        f"You now land on “{view.name}” after logging in."
        if chosen
        else "You now land on the customers page after logging in.",
    )
    return HttpResponseRedirect(reverse("customers:edit_view", args=[slug]), status=303)


# --- The column chooser -------------------------------------------------------------------------


def _moved(keys: list[str], move: str) -> tuple[list[str], str]:
    """`keys` after one chooser button ("up:key", "down:key", "remove:key", "add:key"),
    and the key it moved (which keeps the keyboard focus)."""
    action, _, key = move.partition(":")
    if action == "add" and key not in keys:
        return [*keys, key], key
    if key not in keys:
        return keys, ""
    at = keys.index(key)
    if action == "remove" and len(keys) > 1:
        return keys[:at] + keys[at + 1 :], ""
    step = {"up": -1, "down": 1}.get(action, 0)
    to = at + step
    if step and 0 <= to < len(keys):
        keys[at], keys[to] = keys[to], keys[at]
    return keys, key


def _chooser_custom_fields(chosen: str | None) -> tuple[str, ...]:
    """The custom-field keys the chooser accepts: the most used ones it offers, and any
    chosen one beyond them that some customer still has."""
    offered = index_search.custom_field_keys()
    beyond = {
        column.key.removeprefix(columns.CUSTOM_FIELD_PREFIX)
        for column in columns.parse(chosen).columns
        if column.key.startswith(columns.CUSTOM_FIELD_PREFIX)
    } - set(offered)
    return (*offered, *index_search.custom_field_keys_in_use(beyond))


@require_GET
@errors.requires(VIEW_CUSTOMERS)
@never_cache
def choose_columns(request: HttpRequest) -> HttpResponse:
    """Choose and order the table's (and the CSV's) columns: one GET form whose buttons each
    add, remove or move one column, so it works by keyboard and without JavaScript. "Show"
    goes back to the customers page with `columns` in its URL."""
    state = _with_open_view(_state_from(request.GET), request.GET)
    known = _chooser_custom_fields(state.get("columns"))
    choice = columns.parse(state.get("columns"), known)
    keys = [column.key for column in choice.columns] or list(columns.DEFAULT_KEYS)
    keys, focus = _moved(keys, request.GET.get("move", ""))
    keys = [column.key for column in columns.parse(",".join(keys), known).columns]
    standard = tuple(keys) == columns.DEFAULT_KEYS
    if "show" in request.GET:
        shown = state.copy()
        if standard:
            shown.pop("columns", None)
        else:
            shown["columns"] = ",".join(keys)
        return HttpResponseRedirect(urlstate.list_url(shown))
    chosen = columns.parse(",".join(keys), known).columns
    others = [column for column in columns.available(known) if column.key not in keys]
    hidden = [
        (name, value) for name, values in state.lists() if name != "columns" for value in values
    ]
    return render(
        request,
        "customers/views/columns.html",
        {
            "chosen": chosen,
            "others": others,
            "columns_value": ",".join(keys),
            "hidden": hidden,
            "focus": focus,
            "back_url": urlstate.list_url(state),
            "dropped": choice.dropped,
            "keys_left_out": index_search.custom_field_keys_left_out(),
            "max_keys": index_search.MAX_CUSTOM_FIELD_KEYS,
        },
    )


@require_GET
@errors.requires(VIEW_CUSTOMERS)
def card_labels(request: HttpRequest) -> HttpResponse:
    """The phone cards' labels of a chosen table (`columns.card_labels_css`): the same for
    the same `columns`, so the browser keeps it."""
    choice = columns.parse(request.GET.get("columns", ""))
    response = HttpResponse(columns.card_labels_css(choice), content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "private, max-age=86400"
    return response
