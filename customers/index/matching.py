"""What a text search of the customer index matches and how it ranks, as conditions: the
search (`search.py`) ranks every match with them in one query, the tiers (`tiers.py`) read
the ranks one after the other. Every comparison is between folded text (`keys.fold`) in
plain SQL, so SQLite and PostgreSQL give the same results; their text indexes (FTS5 trigram
on SQLite, a pg_trgm GIN index on PostgreSQL) only make them fast."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence

from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL

from customers.index.keys import salesforce_key, words
from customers.index.typos import each_starts_a_name_word
from customers.models import IndexedCustomer

logger = logging.getLogger(__name__)

# Trigram indexes can only look up runs of three characters or more.
_TRIGRAM_MIN_LENGTH = 3


def parse_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


# --- Ranking -------------------------------------------------------------------------------

# An exact ID, then a name starting with the search, then (for several words) a name
# starting with one of them and containing the others, then any other match (an ID starting
# with the search, names containing its words, a custom value containing it); misspellings
# after. A name comes before an ID that only starts with the search: a range of the name
# index finds those names and stops at the page; IDs starting with the search cannot be
# found without reading every row holding its words (bench/README.md, issue 24).
EXACT_ID, NAME_PREFIX, WORD_PREFIX, CONTAINS, TYPO = range(5)


def exact_id(q: str, folded: str) -> Q:
    """An exact ID: Metronome ID, Salesforce key, external ID or ingest alias, compared."""
    return exact_indexed(q, folded) | Q(aliases_folded__contains=f"\n{folded}\n")


def exact_indexed(q: str, folded: str) -> Q:
    """An exact Metronome ID, Salesforce key or external ID: B-tree look-ups."""
    return Q(external_id_folded=folded) | exact_key(q)


def exact_key(q: str) -> Q:
    """A Metronome ID or Salesforce key equal to the search, which no text comparison and
    no text index finds (Q() when the search can be neither)."""
    exact = Q()
    if parsed := parse_uuid(q):
        exact |= Q(id=parsed)
    if key := salesforce_key(q):
        exact |= Q(salesforce_key=key)
    return exact


def alias_is(folded: str) -> Q:
    """An ingest alias equal to the search, as `exact_id` compares it, through an index: on
    PostgreSQL the GIN index of the alias arrays (migration 0012; the trigram index would
    find every row holding the search's words, a common name word's thousands), on SQLite
    the FTS5 table narrows."""
    if connection.vendor == "postgresql":
        return Q(
            RawSQL(
                "string_to_array(btrim(aliases_folded, E'\\n'), E'\\n') @> ARRAY[%s]::text[]",
                [folded],
                output_field=BooleanField(),
            )
        )
    alias = Q(aliases_folded__contains=f"\n{folded}\n")
    if connection.vendor == "sqlite" and len(folded) >= _TRIGRAM_MIN_LENGTH:
        alias &= in_text_index(fts_substring(folded))
    return alias


def prefix(folded: str) -> Q:
    return (
        Q(name_folded__startswith=folded)
        | Q(external_id_folded__startswith=folded)
        | Q(aliases_folded__contains=f"\n{folded}")
    )


def contains(folded: str) -> Q:
    return Q(custom_values_folded__contains=folded) | name_has_every_word(folded)


def name_has_every_word(folded: str) -> Q:
    name_words = Q()
    for word in words(folded):
        name_words &= Q(name_folded__contains=word)
    return name_words


def name_starts_with_a_word(folded: str) -> Q | None:
    """Several words: a name starting with one of them and holding the others ("birch
    silver" finds "Silver Birch Labs" before "Blue Birch Silverware"). None for one word:
    that is a name starting with the search."""
    searched = words(folded)
    if len(searched) < 2:
        return None
    starts = Q()
    for word in searched:
        starts |= Q(name_folded__startswith=word)
    return starts & name_has_every_word(folded)


def matching(
    customers: QuerySet[IndexedCustomer], q: str, folded: str
) -> QuerySet[IndexedCustomer]:
    """Every customer the search matches, in no order: an exact ID, or text containing or
    starting with the search, narrowed through the text index."""
    # An external ID or ingest alias equal to the search also starts with it: `prefix`
    # finds them, and the text index holds their words.
    key = exact_key(q)
    matches = customers.filter(key | prefix(folded) | contains(folded))
    if (candidates := text_candidates([(word,) for word in words(folded)])) is not None:
        matches = matches.filter(key | candidates)
    return matches


def ranked_matches(
    customers: QuerySet[IndexedCustomer], q: str, folded: str
) -> QuerySet[IndexedCustomer]:
    """`matching`, each with its rank: every match ranked in one query."""
    ranks = [
        When(exact_id(q, folded), then=Value(EXACT_ID)),
        When(name_folded__startswith=folded, then=Value(NAME_PREFIX)),
    ]
    if (word_prefix := name_starts_with_a_word(folded)) is not None:
        ranks.append(When(word_prefix, then=Value(WORD_PREFIX)))
    return matching(customers, q, folded).annotate(
        rank=Case(*ranks, default=Value(CONTAINS), output_field=IntegerField())
    )


# Every text a search matches, in one expression: the PostgreSQL migration indexes it
# (GIN, pg_trgm) exactly as written here.
SEARCH_TEXT_SQL = (
    "(name_folded || ' ' || aliases_folded || ' ' || external_id_folded || ' ' || "
    "custom_values_folded)"
)
_SEARCH_TEXT_LIKE = f"{SEARCH_TEXT_SQL} LIKE %s"


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_candidates(word_choices: Sequence[Sequence[str]]) -> Q | None:
    """The rows a trigram index finds: for each entry of `word_choices`, one of its words
    somewhere in the row's text. A superset of the text matches (a name, alias, external ID
    or custom value that starts with or contains the search contains its words), so the
    exact comparisons only run on those. None when every word is too short for trigrams:
    then they read every row. SQLite asks its FTS5 trigram table; PostgreSQL its GIN index
    on SEARCH_TEXT_SQL."""
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
                any_of |= Q(
                    RawSQL(  # noqa: S611
                        _SEARCH_TEXT_LIKE,
                        [f"%{_like_escaped(word)}%"],
                        output_field=BooleanField(),
                    )
                )
            candidates &= any_of
        return candidates
    if connection.vendor == "sqlite":
        return in_text_index(
            " AND ".join(
                "(" + " OR ".join(fts_substring(word) for word in choices) + ")"
                for choices in long_choices
            )
        )
    return None


def may_match(q: str, folded: str) -> bool:
    """False only when the text index shows that no customer can match the search (`matching`
    finds none, whatever the filters): a misspelt name then goes straight to its
    corrections instead of ranking every match of a search that has none (15-30% of a
    typo's time on SQLite, about half of it on PostgreSQL, bench/README.md).

    An exact Metronome or Salesforce ID is not in the text indexes, so one is never ruled
    out here; neither is a search with no word long enough for the trigram indexes."""
    if parse_uuid(q) or salesforce_key(q):
        return True
    long_words = [word for word in words(folded) if len(word) >= _TRIGRAM_MIN_LENGTH]
    if not long_words:
        return True
    if connection.vendor == "sqlite":
        return _in_sqlite_text_index(long_words)
    if connection.vendor == "postgresql":
        # Most searches are names or their beginnings: a look-up in the typo dictionary's
        # B-tree says they may match (0.1-0.2 ms). The rest, misspellings, parts of words,
        # aliases and other IDs, are asked of the trigram index.
        return each_starts_a_name_word(long_words) or _in_postgresql_text_index(long_words)
    return True


def _in_sqlite_text_index(long_words: Sequence[str]) -> bool:
    """Whether a row's text holds every word's trigrams: the rows `text_candidates` finds
    for `matching`, asked only whether there is one. One FTS5 look-up at 100,000
    customers: 0.2-0.6 ms for names, 0.4-0.7 ms for misspellings (medians)."""
    every_word = " AND ".join(fts_substring(word) for word in long_words)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM customer_index_fts WHERE customer_index_fts MATCH %s)",
            [every_word],
        )
        (found,) = cursor.fetchone()
    return bool(found)


def _in_postgresql_text_index(long_words: Sequence[str]) -> bool:
    """Whether some row's text holds every word, through the trigram index. Asked as an
    EXISTS, the planner scans the table until a row matches when it expects many; for a
    word it overrates (or whose rows a first sync laid out last, in name order) that reads
    most of the table, seconds at 1,000,000 customers. Sequential scans are therefore
    ruled out for this one statement: 0.5-1.3 ms for a misspelling or a rare word at
    100,000, 3-4 ms for a fragment as common as "inc". Its cost is bounded all the same
    (`MAY_MATCH_TIMEOUT_MS`): past it, or for a word pg_trgm takes no trigram from (which
    reads the whole index), the search simply goes on."""
    if not all(_TRIGRAM_RUN.search(word) for word in long_words):
        return True
    condition = " AND ".join([_SEARCH_TEXT_LIKE] * len(long_words))
    table = connection.ops.quote_name(IndexedCustomer._meta.db_table)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"SET LOCAL statement_timeout = {int(MAY_MATCH_TIMEOUT_MS)}")
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {condition})",  # noqa: S608
                [f"%{_like_escaped(word)}%" for word in long_words],
            )
            (found,) = cursor.fetchone()
            # Rolled back, to a savepoint when nested: only then do the SET LOCALs end
            # with this block rather than with the enclosing transaction. Nothing was
            # written.
            transaction.set_rollback(True)
    except OperationalError:  # the timeout: too costly to rule anything out
        logger.info("Customer index: a search was not checked against the trigram index")
        return True
    return bool(found)


# The trigram look-up's bound. A rare word takes about 1 ms at 100,000 customers.
MAY_MATCH_TIMEOUT_MS = 50
# What pg_trgm takes trigrams from: runs of letters and digits.
_TRIGRAM_RUN = re.compile(r"[^\W_]{3}")


def in_text_index(expression: str) -> Q:
    """SQLite: the rows whose FTS5 entry matches `expression`, found by its rowid, the row's
    `text_key` (migration 0013)."""
    return Q(
        text_key__in=RawSQL(
            "SELECT rowid FROM customer_index_fts WHERE customer_index_fts MATCH %s", [expression]
        )
    )


def fts_substring(text: str) -> str:
    """An FTS5 expression for the rows holding `text` (3 characters or more) somewhere, or
    holding at least every trigram of it: the text index keeps no positions (migration
    0017), so a phrase cannot be asked for, and the matches are compared afterwards."""
    trigrams = sorted({text[i : i + 3] for i in range(len(text) - 2)})
    return "(" + " AND ".join('"' + trigram.replace('"', '""') + '"' for trigram in trigrams) + ")"


# --- Close misspellings --------------------------------------------------------------------


def typo_rank(corrections: dict[str, tuple[str, ...]]) -> Case:
    """Names starting with a correction before names containing one. Also keeps the order
    an expression no index provides: ordered by a constant rank and the name, PostgreSQL
    walked the whole name index to count a common correction's matches (3.5 s at
    1,000,000), taking the page's LIMIT for one it could stop early."""
    starts = Q()
    for alternatives in corrections.values():
        for alternative in alternatives:
            starts |= Q(name_folded__startswith=alternative)
    return Case(
        When(starts, then=Value(TYPO)),
        default=Value(TYPO + 1),
        output_field=IntegerField(),
    )


def narrowed(
    customers: QuerySet[IndexedCustomer], candidates: Q | None
) -> QuerySet[IndexedCustomer]:
    return customers if candidates is None else customers.filter(candidates)


def typo_matches(
    customers: QuerySet[IndexedCustomer], corrections: dict[str, tuple[str, ...]]
) -> QuerySet[IndexedCustomer]:
    """The names containing, for every searched word, one of its corrections."""
    return narrowed(
        customers.filter(names_containing_any(corrections)),
        text_candidates(list(corrections.values())),
    )


def names_containing_any(corrections: dict[str, tuple[str, ...]]) -> Q:
    condition = Q()
    for alternatives in corrections.values():
        any_of = Q()
        for alternative in alternatives:
            any_of |= Q(name_folded__contains=alternative)
        condition &= any_of
    return condition
