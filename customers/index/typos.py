"""Close misspellings of a search: the indexed name words a misspelt word could be.

Only the dictionary words that share a trigram with the searched word are compared with it
(`IndexedNameTrigram`, a plain table, so SQLite and PostgreSQL find the same words): a typo
costs about the same in a dictionary of 300 words as in one of 300,000, where comparing
every word of about the right length took seconds (issue 24).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from customers.models import IndexedNameTrigram, IndexedNameWord

# The typo fallback tries at most this many corrections per searched word.
MAX_CORRECTIONS_PER_WORD = 8


def corrections_of(searched_words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each searched word, the indexed name words it could be a misspelling of (itself
    when some name word contains it as typed). {} when a word has no close match at all."""
    corrections: dict[str, tuple[str, ...]] = {}
    for word in searched_words:
        limit = _edit_limit(word)
        if limit == 0:
            # Too short to correct: it stands if a name word starts with it.
            if not each_starts_a_name_word([word]):
                return {}
            corrections[word] = (word,)
            continue
        holders, near = _dictionary_words_near(word, limit)
        if any(word in holder for holder in holders):
            corrections[word] = (word,)
            continue
        close = sorted(
            (distance, candidate)
            for candidate in near
            if (distance := _edit_distance(word, candidate, limit)) <= limit
        )
        if not close:
            return {}
        corrections[word] = tuple(candidate for _, candidate in close[:MAX_CORRECTIONS_PER_WORD])
    return corrections


def word_trigrams(word: str) -> set[str]:
    """A dictionary word's trigrams, two spaces before and after it, so its ends count as
    much as its middle: "acme" gives "  a", " ac", "acm", "cme", "me ", "e  "."""
    padded = f"  {word}  "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def each_starts_a_name_word(words: Sequence[str]) -> bool:
    """Whether each of `words` starts some word of the dictionary, in one statement (a
    B-tree range per word). The dictionary may lag the index by a sync, and holds a name's
    first words only: the search uses False as a reason to look further, never as proof."""
    table = connection.ops.quote_name(IndexedNameWord._meta.db_table)
    starts = f"EXISTS (SELECT 1 FROM {table} WHERE word >= %s AND word < %s)"  # noqa: S608
    params: list[str] = []
    for word in words:
        params += [word, word + _LAST_CHARACTER]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " AND ".join([starts] * len(words)), params)
        (found,) = cursor.fetchone()
    return bool(found)


_LAST_CHARACTER = "\U0010ffff"  # sorts after every word that starts with a given one


def _dictionary_words_near(word: str, limit: int) -> tuple[list[str], list[str]]:
    """In one query, from the dictionary words sharing a trigram with `word` (3 letters or
    more): those that may contain it, holding every trigram inside it, and those `limit`
    edits from it may reach. One edit changes at most three of a word's trigrams (a swap of
    two letters four), so such a word shares at least all but 4 x limit of them, and always
    one (bench/README.md)."""
    trigrams = word_trigrams(word)
    inner = {word[i : i + 3] for i in range(len(word) - 2)}
    needed = max(1, len(trigrams) - 4 * limit)
    # Raw SQL: the ORM took four times the query's own time to build it (a typo's search
    # runs it for every word). Only the word's trigrams and numbers are parameters.
    table = connection.ops.quote_name(IndexedNameTrigram._meta.db_table)
    all_of = ", ".join(["%s"] * len(trigrams))
    inner_count = f"SUM(CASE WHEN trigram IN ({', '.join(['%s'] * len(inner))}) THEN 1 ELSE 0 END)"
    sql = (
        f"SELECT word, COUNT(*), {inner_count} FROM {table} "  # noqa: S608 (placeholders only)
        f"WHERE trigram IN ({all_of}) GROUP BY word "
        f"HAVING (COUNT(*) >= %s AND LENGTH(word) BETWEEN %s AND %s) OR {inner_count} = %s"
    )
    params: list[str | int] = [*inner, *trigrams, needed, len(word) - limit, len(word) + limit]
    params += [*inner, len(inner)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    holders: list[str] = []
    near: list[str] = []
    for candidate, shared, inner_shared in rows:
        if inner_shared == len(inner):
            holders.append(candidate)
        if shared >= needed and abs(len(candidate) - len(word)) <= limit:
            near.append(candidate)
    return holders, near


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
