"""Search over the synced customer index: what Metronome's API cannot do (names, typos, the
filters it lacks, sorting, true totals), answered from the dashboard's own database.

The index finds; the API tells the truth: `search` returns customer IDs in order, and the
page re-reads those customers live from Metronome.

Ranking: an exact ID (Metronome, Salesforce, external ID or ingest alias), then a name (or
alias, external ID) starting with the search, then names containing every word of it in any
order (or a custom field value containing it), then, only when nothing matched so far, names
whose words are close misspellings of the searched ones. Every comparison is between
folded text (`fold`) in plain SQL, so SQLite and PostgreSQL give the same results; their
text indexes (FTS5 trigram on SQLite, a pg_trgm GIN index on PostgreSQL) only make them fast.
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import BooleanField, Case, IntegerField, Q, QuerySet, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from customers import salesforce
from customers.models import IndexedCustomer, IndexedNameWord, SyncRun

MAX_PER_PAGE = 1000
# The typo fallback tries at most this many corrections per searched word.
MAX_CORRECTIONS_PER_WORD = 8
# Trigram indexes can only look up runs of three characters or more.
_TRIGRAM_MIN_LENGTH = 3


# --- Folding and IDs -----------------------------------------------------------------------


def fold(text: str) -> str:
    """Text as searches compare it: accents removed, case folded, spaces collapsed."""
    if text.isascii():  # most names and IDs: the same result, several times faster
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().split())


def words(folded: str) -> list[str]:
    return folded.split()


_SALESFORCE_ID = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")


def _salesforce_id_18(salesforce_id: str) -> str:
    """The 18-character form of a 15- or 18-character Salesforce ID ('' for anything else)."""
    if not _SALESFORCE_ID.fullmatch(salesforce_id):
        return ""
    return salesforce_id if len(salesforce_id) == 18 else salesforce.to_18(salesforce_id)


def salesforce_id_18(salesforce_id: str) -> str:
    """The 18-character form of a Salesforce ID as given ('' when it is not one)."""
    return _salesforce_id_18(salesforce_id.strip())


def salesforce_key(salesforce_id: str) -> str:
    """What an indexed Salesforce ID is matched by: the key the paste boxes match by too
    (`salesforce.normalise`), in its case: a 15-character ID with its checksum suffix (two
    that differ only in case are two accounts, two keys), an 18-character one with its case
    restored from its suffix, or as given when the suffix does not fit. '' when it is not a
    Salesforce ID at all."""
    text = salesforce_id.strip()
    return salesforce.normalise(text).key if _SALESFORCE_ID.fullmatch(text) else ""


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


# --- The query -----------------------------------------------------------------------------


class Billable(StrEnum):
    BILLABLE = "billable"
    UNBILLABLE = "unbillable"
    NOT_SET = "not_set"


class Archived(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    ALL = "all"


class Sort(StrEnum):
    NAME = "name"
    NAME_DESC = "-name"
    CREATED = "created"
    CREATED_DESC = "-created"
    UPDATED = "updated"
    UPDATED_DESC = "-updated"


_SORT_COLUMNS = {
    Sort.NAME: ("name_folded", "id"),
    Sort.NAME_DESC: ("-name_folded", "-id"),
    Sort.CREATED: ("created_at", "id"),
    Sort.CREATED_DESC: ("-created_at", "-id"),
    Sort.UPDATED: ("updated_at", "id"),
    Sort.UPDATED_DESC: ("-updated_at", "-id"),
}


@dataclass(frozen=True, slots=True)
class IndexFilters:
    """The filters, all combined with AND. Dates are whole UTC days, both ends included."""

    archived: Archived = Archived.ACTIVE
    billable: frozenset[Billable] = frozenset()  # any of these; empty: any status
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    no_salesforce_id: bool = False
    custom_field: tuple[str, str] | None = None  # key, value: an exact match
    customer_ids: tuple[str, ...] = ()  # Metronome IDs; malformed ones match nothing
    salesforce_account_ids: tuple[str, ...] = ()  # 15 or 18 characters, any case
    ingest_alias: str = ""  # exact, as the API's filter


@dataclass(frozen=True, slots=True)
class IndexResult:
    total: int
    customer_ids: tuple[str, ...]  # this page's, in order
    page: int
    per_page: int
    # True when nothing matched exactly and these are close misspellings of the search.
    corrected: bool = False
    corrections: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first_row(self) -> int:
        """1-based number of the page's first row (0 when the page is empty)."""
        return (self.page - 1) * self.per_page + 1 if self.customer_ids else 0

    @property
    def last_row(self) -> int:
        return (self.page - 1) * self.per_page + len(self.customer_ids)


def search(
    q: str = "",
    *,
    filters: IndexFilters | None = None,
    sort: Sort | None = None,
    page: int = 1,
    per_page: int = 50,
) -> IndexResult:
    """One page of the customers matching `q` and `filters`, with the total.

    Without `sort`, a search is ordered by rank then name, and no search by name. A page
    past the end is empty (the total says how far it goes).
    """
    if page < 1:
        raise ValueError(f"page must be 1 or more, got {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}, got {per_page}")
    filtered = _filtered(filters or IndexFilters())
    folded = fold(q)
    corrections: dict[str, tuple[str, ...]] = {}
    if folded:
        matches = _ranked_matches(filtered, q, folded)
        total = matches.count()
        if total == 0:
            corrections = _corrections(words(folded))
            if corrections:
                matches = _narrowed(
                    filtered.filter(_names_containing_any(corrections)),
                    _text_candidates(list(corrections.values()), None),
                ).annotate(rank=Value(_TYPO, output_field=IntegerField()))
                total = matches.count()
    else:
        matches = filtered.annotate(rank=Value(0, output_field=IntegerField()))
        total = matches.count()
    order: tuple[str, ...] = _SORT_COLUMNS[sort or Sort.NAME]
    if sort is None and folded:
        order = ("rank", *order)
    start = (page - 1) * per_page
    ids = (
        matches.order_by(*order).values_list("id", flat=True)[start : start + per_page]
        if start < total
        else []
    )
    return IndexResult(
        total=total,
        customer_ids=tuple(str(customer_id) for customer_id in ids),
        page=page,
        per_page=per_page,
        corrected=bool(corrections),
        corrections=corrections,
    )


def exact_name_matches(q: str, *, archived: Archived, limit: int = 20) -> list[str]:
    """The IDs of customers in `archived` whose name is `q` exactly (folded), by name: the
    search box shows them whatever the toggle."""
    folded = fold(q)
    if not folded:
        return []
    customers = _filtered(IndexFilters(archived=archived)).filter(name_folded=folded)
    return [
        str(i) for i in customers.order_by("name_folded", "id").values_list("id", flat=True)[:limit]
    ]


def indexed_ids(customer_ids: Sequence[str]) -> set[str]:
    """Which of `customer_ids` the index holds."""
    parsed = [found for raw in customer_ids if (found := _uuid(raw))]
    return {
        str(i) for i in IndexedCustomer.objects.filter(id__in=parsed).values_list("id", flat=True)
    }


def last_successful_sync() -> SyncRun | None:
    """The sync the index is from: "Index updated 4 min ago" is its `finished_at`. None
    means no sync has run, and the page should say to run `manage.py sync_customers`."""
    return SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED).first()


def plausible_customer_count() -> int | None:
    """The most customers one listing of the whole account can plausibly hold, a ceiling for
    the loops that read it (export, sync): the last sync's count times PAGING_HEADROOM, and
    1,000 more for a small account that just grew. None before the first sync: then only
    PAGING_MAX_ROWS bounds them."""
    last = last_successful_sync()
    if last is None:
        return None
    return math.ceil(last.seen * settings.PAGING_HEADROOM) + 1000


CUSTOM_FIELD_KEYS_CACHE_SECONDS = 24 * 3600


def custom_field_keys() -> tuple[str, ...]:
    """Every custom-field key of the indexed customers, sorted: the CSV export gives each its
    own column (a stream cannot learn keys late). Read once per sync and kept in the cache
    under that sync's ID; () before the first sync."""
    last = last_successful_sync()
    if last is None:
        return ()
    key = f"customer-index:custom-field-keys:{last.pk}"
    keys: tuple[str, ...] | None = cache.get(key)
    if keys is None:
        found: set[str] = set()
        for fields in IndexedCustomer.objects.values_list("custom_fields", flat=True).iterator(
            chunk_size=2000
        ):
            if isinstance(fields, dict):
                found.update(str(name) for name in fields)
        keys = tuple(sorted(found))
        cache.set(key, keys, CUSTOM_FIELD_KEYS_CACHE_SECONDS)
    return keys


# --- Filters -------------------------------------------------------------------------------


def _filtered(filters: IndexFilters) -> QuerySet[IndexedCustomer]:
    customers = IndexedCustomer.objects.all()
    if filters.archived is Archived.ACTIVE:
        customers = customers.filter(archived_at__isnull=True)
    elif filters.archived is Archived.ARCHIVED:
        customers = customers.filter(archived_at__isnull=False)
    if filters.billable:
        # The index stores "not set" as "".
        statuses = ["" if b is Billable.NOT_SET else b.value for b in filters.billable]
        customers = customers.filter(billable_status__in=statuses)
    for column, start, end in (
        ("created_at", filters.created_from, filters.created_to),
        ("updated_at", filters.updated_from, filters.updated_to),
    ):
        if start is not None:
            customers = customers.filter(**{f"{column}__gte": _day_start(start)})
        if end is not None:
            customers = customers.filter(**{f"{column}__lt": _day_start(end + timedelta(days=1))})
    if filters.no_salesforce_id:
        customers = customers.filter(salesforce_account_id="")
    if filters.custom_field is not None:
        key, value = filters.custom_field
        # Cast: compared as a KeyTextTransform, SQLite would parse `value` as JSON.
        custom_value = Cast(KeyTextTransform(key, "custom_fields"), TextField())
        customers = customers.annotate(_custom_value=custom_value).filter(_custom_value=value)
    if filters.customer_ids:
        customers = customers.filter(
            id__in=[parsed for raw in filters.customer_ids if (parsed := _uuid(raw))]
        )
    if filters.salesforce_account_ids:
        customers = customers.filter(
            salesforce_key__in=[
                key for raw in filters.salesforce_account_ids if (key := salesforce_key(raw))
            ]
        )
    if filters.ingest_alias:
        customers = customers.filter(aliases_folded__contains=f"\n{fold(filters.ingest_alias)}\n")
    return customers


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --- Ranking -------------------------------------------------------------------------------

_EXACT_ID, _PREFIX, _CONTAINS, _TYPO = range(4)


def _ranked_matches(
    customers: QuerySet[IndexedCustomer], q: str, folded: str
) -> QuerySet[IndexedCustomer]:
    exact_indexed = Q(external_id_folded=folded)
    if parsed := _uuid(q):
        exact_indexed |= Q(id=parsed)
    if key := salesforce_key(q):
        exact_indexed |= Q(salesforce_key=key)
    exact = exact_indexed | Q(aliases_folded__contains=f"\n{folded}\n")
    prefix = (
        Q(name_folded__startswith=folded)
        | Q(external_id_folded__startswith=folded)
        | Q(aliases_folded__contains=f"\n{folded}")
    )
    contains = Q(custom_values_folded__contains=folded)
    name_words = Q()
    for word in words(folded):
        name_words &= Q(name_folded__contains=word)
    contains |= name_words
    matches = customers.filter(exact | prefix | contains)
    if (candidates := _text_candidates([(word,) for word in words(folded)], folded)) is not None:
        matches = matches.filter(exact_indexed | candidates)
    return matches.annotate(
        rank=Case(
            When(exact, then=Value(_EXACT_ID)),
            When(prefix, then=Value(_PREFIX)),
            default=Value(_CONTAINS),
            output_field=IntegerField(),
        )
    )


# Every text a search matches, in one expression: the PostgreSQL migration indexes it
# (GIN, pg_trgm) exactly as written here.
SEARCH_TEXT_SQL = (
    "(name_folded || ' ' || aliases_folded || ' ' || external_id_folded || ' ' || "
    "custom_values_folded)"
)
_SEARCH_TEXT_LIKE = f"{SEARCH_TEXT_SQL} LIKE %s"


def _text_candidates(word_choices: Sequence[Sequence[str]], folded: str | None) -> Q | None:
    """The rows a trigram index finds: for each entry of `word_choices`, one of its words,
    or (when `folded` is given) the whole search in an alias, external ID or custom value.
    A superset of the text matches (a name that starts with or contains the search contains
    its words), so the exact comparisons only run on those. None when every word is too
    short for trigrams: then they read every row. SQLite asks its FTS5 trigram table;
    PostgreSQL its GIN index on SEARCH_TEXT_SQL."""
    # Rows containing every word also contain the longer ones: those are enough to narrow.
    long_choices = [
        choices
        for choices in word_choices
        if all(len(word) >= _TRIGRAM_MIN_LENGTH for word in choices)
    ]
    if not long_choices:
        return None
    # Only the search reaches the database, as parameters; the SQL itself is constant.
    if connection.vendor == "postgresql":
        candidates = Q()
        for choices in long_choices:
            any_of = Q()
            for word in choices:
                escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                any_of |= Q(
                    RawSQL(_SEARCH_TEXT_LIKE, [f"%{escaped}%"], output_field=BooleanField())  # noqa: S611
                )
            candidates &= any_of
        return candidates
    if connection.vendor == "sqlite":
        name_terms = " AND ".join(
            "(" + " OR ".join(_fts_phrase(word) for word in choices) + ")"
            for choices in long_choices
        )
        expression = f"name : ({name_terms})"
        if folded is not None:
            expression = f"({expression}) OR (other : {_fts_phrase(folded)})"
        fts = RawSQL(
            "SELECT id FROM customer_index_fts WHERE customer_index_fts MATCH %s", [expression]
        )
        return Q(id__in=fts)
    return None


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


# --- Close misspellings --------------------------------------------------------------------


def _corrections(searched_words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each searched word, the indexed name words it could be a misspelling of (itself
    when some name contains it as typed). {} when a word has no close match at all."""
    corrections: dict[str, tuple[str, ...]] = {}
    for word in searched_words:
        if IndexedNameWord.objects.filter(word__contains=word).exists():
            corrections[word] = (word,)
            continue
        limit = _edit_limit(word)
        candidates = IndexedNameWord.objects.filter(
            length__gte=len(word) - limit, length__lte=len(word) + limit
        ).values_list("word", flat=True)
        close = sorted(
            (distance, candidate)
            for candidate in candidates.iterator(chunk_size=5000)
            if (distance := _edit_distance(word, candidate, limit)) <= limit
        )
        if not close:
            return {}
        corrections[word] = tuple(candidate for _, candidate in close[:MAX_CORRECTIONS_PER_WORD])
    return corrections


def _edit_limit(word: str) -> int:
    # One slip in a short word, two in a longer one; fewer than three letters is no word.
    if len(word) < 3:
        return 0
    return 1 if len(word) <= 5 else 2


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count once), or limit + 1 as soon as it
    must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous_previous: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = 0 if char_a == char_b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous_previous[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous_previous, previous = previous, current
    return previous[-1]


def _narrowed(
    customers: QuerySet[IndexedCustomer], candidates: Q | None
) -> QuerySet[IndexedCustomer]:
    return customers if candidates is None else customers.filter(candidates)


def _names_containing_any(corrections: dict[str, tuple[str, ...]]) -> Q:
    condition = Q()
    for alternatives in corrections.values():
        any_of = Q()
        for alternative in alternatives:
            any_of |= Q(name_folded__contains=alternative)
        condition &= any_of
    return condition
