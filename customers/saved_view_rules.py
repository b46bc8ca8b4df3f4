"""Who may see and change a saved view, the caps, the audit, and what a view holds: the
rules of customers.models.SavedView, apart from HTTP (customers/saved_views.py).

- Everyone with `view_customers` may save views; a view is private to its owner unless
  shared with everyone on the dashboard (the team).
- A private view is seen and changed by its owner only; anyone else gets "not found".
- A shared view is seen by everyone; changed (renamed, updated, unshared) and deleted by its
  owner, or by a manager: anyone with `customers.manage_shared_views` (the Managers group).
- Only its owner shares a view (a manager never sees another person's private views).
- A view holds filters and columns, never a permission: the CSV download checks the
  person who clicks it (`export_customers`), whoever saved the view.
- Caps: SAVED_VIEWS_PER_PERSON views per owner, SAVED_VIEWS_SHARED shared ones in all.
- Every creation, change and deletion of a shared view (and sharing or unsharing one) is
  a SavedViewAudit row, shown read-only in the admin.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import post_delete, post_save, pre_delete
from django.http import QueryDict

from customers import columns, listing, urlstate
from customers.forms import CustomerFilterForm
from customers.models import LandingView, SavedSearch, SavedView, SavedViewAudit

Person = AbstractBaseUser | AnonymousUser
MANAGE_SHARED = "customers.manage_shared_views"
MAX_NAME = 80
# Tabs, newlines and other control characters make a name that lies about itself in a list.
# Characters a name may not hold, by Unicode category: controls, format characters
# (zero-width spaces and joiners, direction marks and overrides, soft hyphens, tags: a name
# of nothing but these shows as a blank link, and one beside a visible twin looks the
# same), line and paragraph separators, private use, surrogates and unassigned ones.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
# A view's URL parameters beside its filters: page size and columns. Paging never.
STATE_PARAMS = (*urlstate.FILTER_PARAMS, "limit", "columns")


class Refused(Exception):
    """What a person asked cannot be done; the message says why and what to do instead."""


# --- Seeing and changing ------------------------------------------------------------------


def visible_to(user: Person) -> QuerySet[SavedView]:
    if not isinstance(user, User):
        return SavedView.objects.none()
    return SavedView.objects.filter(Q(owner=user) | Q(shared=True))


def find(user: Person, slug: str) -> SavedView | None:
    """The view `slug` names if `user` may see it (`visible_to`); None for one that does not
    exist and for someone else's private one alike, so a URL does not tell which. Plain SQL:
    the customers page looks its open view up on every page, and the ORM took 1.6 ms to
    build and run this query, 0.3 ms written out (bench/README.md, thirteenth pass)."""
    if not (slug.isascii() and slug.isalnum() and len(slug) <= 16):
        return None
    if not isinstance(user, User):
        return None
    table = SavedView._meta.db_table
    found = SavedView.objects.raw(
        f"SELECT * FROM {table} WHERE slug = %s AND (owner_id = %s OR shared)",  # noqa: S608
        [slug, user.pk],
    )
    return next(iter(found), None)


def can_change(user: Person, view: SavedView) -> bool:
    if not isinstance(user, User) or not user.is_active:
        return False
    if view.owner_id == user.pk:
        return True
    return view.shared and user.has_perm(MANAGE_SHARED)


@dataclass(frozen=True, slots=True)
class ViewLink:
    slug: str
    name: str
    shared: bool
    owner: str  # the owner's username, "" once the account is gone
    landing: bool


@dataclass(frozen=True, slots=True)
class ViewList:
    """The views beside the search: the person's own first, then the others' shared ones."""

    mine: tuple[ViewLink, ...] = ()
    shared: tuple[ViewLink, ...] = ()


# The list is kept in the shared cache, so the customers page costs no query for it: any
# change to a view or a landing view bumps this version (on every instance at once). Over
# a cache each process keeps for itself (no CACHE_URL), a bump reaches one worker only and
# the others would list an unshared or deleted view for minutes: it is read every time.
LIST_VERSION_KEY = "saved-views:version"
LIST_CACHE_SECONDS = 300


def view_list(user: Person) -> ViewList:
    if not isinstance(user, User):
        return ViewList()
    if not settings.CACHE_IS_SHARED:
        return _read_view_list(user)
    key = f"saved-views:{_list_version()}:{user.pk}"
    cached: ViewList | None = cache.get(key)
    if cached is not None:
        return cached
    listed = _read_view_list(user)
    cache.set(key, listed, LIST_CACHE_SECONDS)
    return listed


def _read_view_list(user: User) -> ViewList:
    """One query: the views the person sees (theirs and the shared ones, in the model's
    order), their owners, and which one they land on. Plain SQL: without a shared cache it
    runs on every page, and the ORM's building of it cost the page a fifth of its
    throughput under 20 clients (bench/README.md, eleventh pass)."""
    view, person, landing = (
        SavedView._meta.db_table,
        User._meta.db_table,
        LandingView._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT v.slug, v.name, v.shared, v.owner_id, u.username, "  # noqa: S608
            f"EXISTS (SELECT 1 FROM {landing} l WHERE l.user_id = %s AND l.view_id = v.id) "
            f"FROM {view} v LEFT JOIN {person} u ON u.id = v.owner_id "
            "WHERE v.owner_id = %s OR v.shared ORDER BY v.name, v.id",
            [user.pk, user.pk],
        )
        rows = cursor.fetchall()
    links = [
        (
            owner_id == user.pk,
            ViewLink(
                slug=slug,
                name=name,
                shared=bool(shared),
                owner=username or "",
                landing=bool(lands),
            ),
        )
        for slug, name, shared, owner_id, username, lands in rows
    ]
    return ViewList(
        mine=tuple(link for mine, link in links if mine),
        shared=tuple(link for mine, link in links if not mine),
    )


def _list_version() -> int:
    version = cache.get(LIST_VERSION_KEY)
    if version is None:
        cache.add(LIST_VERSION_KEY, 0, timeout=None)
        version = cache.get(LIST_VERSION_KEY, 0)
    return int(version)


def bump_list_version(**_: object) -> None:
    try:
        cache.incr(LIST_VERSION_KEY)
    except ValueError:  # no version yet: nothing cached under one either
        cache.add(LIST_VERSION_KEY, 1, timeout=None)


# --- What a view holds ----------------------------------------------------------------------


ParamValue = str | list[str]


@dataclass(frozen=True, slots=True)
class State:
    """A page's search in canonical form: what a view stores, and what "modified" compares."""

    params: dict[str, ParamValue] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def canonical_state(data: QueryDict, *, valid_form: CustomerFilterForm | None = None) -> State:
    """The search `data` (a list page's parameters) asks for, validated by the page's own
    form and spelt as the page's links spell it (`ListState.search_params`: `limit=50` and
    no `limit` are one state). A stored long search (`search=<key>`) is expanded: a view
    keeps the filters themselves, which outlive the stored search. Invalid filters come back
    as `problems`. Any well-formed custom-field column is kept, as the page shows it (the
    chooser offers only the keys the index knows; a key no customer has any more shows
    empty cells).

    `valid_form`: the customers page's own form for `data` (its stored search expanded),
    already valid. Its state is the same, so the page does not validate the search twice
    (about a millisecond of every page a view is open on)."""
    form = valid_form
    if form is None:
        expanded, unknown = listing.expand_saved_search(data)
        if unknown:
            return State(problems=("The stored search this link names no longer exists.",))
        form = CustomerFilterForm(expanded)
        if not form.is_valid():
            problems = [f"{f.label}: {message}" for f in form for message in f.errors]
            problems += [str(message) for message in form.non_field_errors()]
            return State(problems=tuple(problems))
    params = form.state().search_params()
    choice = columns.parse(data.get("columns"))
    return State(params=params, columns=tuple(column.key for column in choice.columns))


def _values(value: object) -> ParamValue:
    """A stored parameter as the URL carries it: a string, or a list of strings."""
    if isinstance(value, list):
        return [str(item) for item in value]
    return str(value)


def list_params(view: SavedView) -> dict[str, ParamValue]:
    """The list page's URL parameters that open `view`: its own, its columns, and
    `view=<slug>` (which names it on the page and lets it say "modified"). Filters too
    long for a URL (a pasted list of hundreds of IDs) travel as a stored search's key,
    stored here if need be: the view bounds them, so no link can store arbitrary ones."""
    params: dict[str, ParamValue] = {
        name: _values(value) for name, value in view.params.items() if name in STATE_PARAMS
    }
    params["columns"] = ",".join(str(key) for key in view.columns)
    params["view"] = view.slug
    if urlstate.fits_in_url(params):
        return params
    # As the list page's POST stores a long search: the toggle and page size stay beside it.
    filters = {
        name: [value] if isinstance(value, str) else value
        for name, value in params.items()
        if name in urlstate.FILTER_PARAMS and name != "only_archived"
    }
    stored, _ = SavedSearch.objects.get_or_create(
        key=SavedSearch.key_for(filters), defaults={"params": filters, "created_by": view.owner}
    )
    kept: dict[str, ParamValue] = {
        name: params[name] for name in ("only_archived", "limit", "columns") if name in params
    }
    return {"search": stored.key, **kept, "view": view.slug}


def is_modified(view: SavedView, current: State) -> bool:
    return (current.params, current.columns) != (dict(view.params), tuple(view.columns))


# --- Changing ---------------------------------------------------------------------------------


def normalised_name(raw: object) -> str:
    """NFKC, as Django does for usernames: a fullwidth or ligature twin ("ＥＭＥＡ", "ﬁnance")
    is the name it looks like, so it cannot be a second view beside it. Runs of spaces are
    one space."""
    return " ".join(unicodedata.normalize("NFKC", str(raw or "")).split())


def clean_name(raw: object) -> str:
    name = normalised_name(raw)
    if not name:
        raise Refused("Give the view a name.")
    if len(name) > MAX_NAME:
        raise Refused(f"A view's name has at most {MAX_NAME} characters; this one has {len(name)}.")
    if any(unicodedata.category(character) in _INVISIBLE_CATEGORIES for character in name):
        raise Refused("A view's name cannot hold control, invisible or text-direction characters.")
    return name


def _check_state(state: State) -> None:
    if state.problems:
        raise Refused(
            "These filters are not valid, so they cannot be saved: " + " ".join(state.problems)
        )


def _check_caps(owner: User, *, new_view: bool, becoming_shared: bool) -> None:
    per_person, shared_cap = settings.SAVED_VIEWS_PER_PERSON, settings.SAVED_VIEWS_SHARED
    if new_view and SavedView.objects.filter(owner=owner).count() >= per_person:
        raise Refused(
            f"You have {per_person} saved views, the most one person may keep. Delete one you "
            "no longer use, or save changes to an existing one instead."
        )
    if becoming_shared and SavedView.objects.filter(shared=True).count() >= shared_cap:
        raise Refused(
            f"The team already shares {shared_cap} views, the most allowed. Keep this one "
            "private, or ask a manager to delete shared views nobody uses."
        )


def name_key(name: str) -> str:
    """What two of one person's view names must differ in: more than case, in any script
    ("Straße" is "STRASSE", "Émea" is "ÉMEA"), and more than a look-alike form (NFKC)."""
    # NFKC again after folding: folding can leave a letter and its combining marks apart
    # where the composed letter's other case folds to one character ("ΰ", "Ϋ́").
    return unicodedata.normalize("NFKC", normalised_name(name).casefold())


def _name_taken(owner: User, name: str, exclude: int | None = None) -> bool:
    # Compared in Python: the database's case-insensitive match folds only ASCII on SQLite
    # ("Émea" and "émea" were two views) and never folds "ß" to "ss". One person's names are
    # few (SAVED_VIEWS_PER_PERSON).
    names = SavedView.objects.filter(owner=owner)
    if exclude is not None:
        names = names.exclude(pk=exclude)
    key = name_key(name)
    return any(name_key(other) == key for other in names.values_list("name", flat=True))


def _lock(user: User) -> None:
    # One person's saves one at a time, so two tabs cannot both pass the cap check.
    User.objects.select_for_update().filter(pk=user.pk).exists()


# The key of a PostgreSQL advisory lock: the same number in every worker.
TEAM_SHARES_LOCK = 7_340_221


def _lock_team_shares() -> None:
    """Shares one at a time, team-wide, until the transaction ends: two people sharing at
    once could otherwise both count the team's views under the cap and both share (each
    person's own lock does not cover the other). Taken after the person's lock, never
    before one, so no two saves wait on each other. SQLite needs nothing: its write
    transactions are IMMEDIATE (settings), so they already run one at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TEAM_SHARES_LOCK])


def create(user: Person, *, name: object, shared: bool, state: State) -> SavedView:
    if not isinstance(user, User):
        raise Refused("Log in to save views.")
    clean = clean_name(name)
    _check_state(state)
    try:
        with transaction.atomic():
            _lock(user)
            if shared:
                _lock_team_shares()
            _check_caps(user, new_view=True, becoming_shared=shared)
            if _name_taken(user, clean):
                raise Refused(f"You already have a view named “{clean}”. Choose another name.")
            view = SavedView.objects.create(
                slug=_free_slug(),
                name=clean,
                owner=user,
                shared=shared,
                params=state.params,
                columns=list(state.columns),
            )
            if shared:
                _audit(user, view, SavedViewAudit.Action.CREATED, "created shared")
    except IntegrityError as clash:  # the same name saved from another tab just now
        raise Refused(f"You already have a view named “{clean}”. Choose another name.") from clash
    return view


def _free_slug() -> str:
    for _ in range(10):
        slug = SavedView.new_slug()
        if not SavedView.objects.filter(slug=slug).exists():
            return slug
    raise Refused("Could not find a free short link for the view. Try again.")


def save_changes(user: Person, view: SavedView, state: State) -> None:
    """ "Save changes to this view": its filters and columns become `state`."""
    actor = must_change(user, view)
    _check_state(state)
    what = []
    if state.params != view.params:
        what.append("filters changed")
    if list(state.columns) != list(view.columns):
        what.append("columns changed")
    view.params, view.columns = state.params, list(state.columns)
    with transaction.atomic():
        view.save(update_fields=["params", "columns", "updated_at"])
        if view.shared and what:
            _audit(actor, view, SavedViewAudit.Action.CHANGED, "; ".join(what))


def rename_and_share(user: Person, view: SavedView, *, name: object, shared: bool) -> None:
    actor = must_change(user, view)
    clean = clean_name(name)
    if clean == normalised_name(view.name):
        clean = view.name  # given back as stored (stored before names were normalised)
    if shared and not view.shared and view.owner_id != actor.pk:
        raise Refused("Only the view's owner may share it.")
    what = []
    if clean != view.name:
        what.append(f"renamed from “{view.name}”")
    if shared != view.shared:
        what.append("shared" if shared else "unshared")
    if not what:
        return
    try:
        with transaction.atomic():
            if view.owner is not None:
                _lock(view.owner)
                # Only a new name is compared: a view whose stored name has a look-alike
                # twin (kept by migration 0016) may still be shared or unshared.
                if clean != view.name and _name_taken(view.owner, clean, exclude=view.pk):
                    raise Refused(f"There is already a view named “{clean}”. Choose another name.")
            if shared and not view.shared:
                _lock_team_shares()
                _check_caps(actor, new_view=False, becoming_shared=True)
            was_shared = view.shared
            view.name, view.shared = clean, shared
            view.save(update_fields=["name", "shared", "updated_at"])
            if was_shared or shared:
                _audit(actor, view, SavedViewAudit.Action.CHANGED, "; ".join(what))
    except IntegrityError as clash:
        raise Refused(f"There is already a view named “{clean}”. Choose another name.") from clash


def delete(user: Person, view: SavedView) -> None:
    actor = must_change(user, view)
    with transaction.atomic():
        if view.shared:
            _audit(actor, view, SavedViewAudit.Action.DELETED, "deleted")
        view.delete()


def set_landing(user: Person, view: SavedView | None) -> None:
    """Make `view` the page `user` lands on after logging in; None: the plain list again."""
    if not isinstance(user, User):
        return
    if view is None:
        LandingView.objects.filter(user=user).delete()
    else:
        LandingView.objects.update_or_create(user=user, defaults={"view": view})


def landing_view(user: Person) -> SavedView | None:
    """The person's landing view, if they still may see it (a colleague may have unshared
    or deleted it since)."""
    if not isinstance(user, User):
        return None
    landing = LandingView.objects.filter(user=user).select_related("view").first()
    if landing is None:
        return None
    view = landing.view
    return view if view.shared or view.owner_id == user.pk else None


def must_change(user: Person, view: SavedView) -> User:
    if not can_change(user, view) or not isinstance(user, User):
        raise Refused(
            "Only the view's owner may change or delete it"
            + (", or a manager, since it is shared." if view.shared else ".")
        )
    return user


def _audit(user: User, view: SavedView, action: str, what: str) -> None:
    SavedViewAudit.objects.create(
        actor=user,
        actor_username=user.get_username(),
        action=action,
        view=None if action == SavedViewAudit.Action.DELETED else view,
        view_slug=view.slug,
        view_name=view.name,
        owner_username=view.owner.get_username() if view.owner else "",
        what=what,
    )


# --- Accounts that go ---------------------------------------------------------------------------


def drop_private_views(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted account's private views go with it (nobody else can see them); its shared
    views stay, ownerless, for a manager to keep or delete."""
    SavedView.objects.filter(owner=instance, shared=False).delete()


def connect_signals() -> None:
    pre_delete.connect(drop_private_views, sender=User, dispatch_uid="saved-views-owner-gone")
    for model in (SavedView, LandingView, User):
        for signal in (post_save, post_delete):
            signal.connect(
                bump_list_version, sender=model, dispatch_uid=f"saved-views-list-{signal}-{model}"
            )
