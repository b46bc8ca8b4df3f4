"""Close misspellings of a search: the indexed name words a misspelt word could be.

Only the dictionary words that share a trigram with the searched word are compared with it
(`IndexedNameTrigram`, a plain table, so SQLite and PostgreSQL find the same words): a typo
costs about the same in a dictionary of 300 words as in one of 300,000, where comparing
every word of about the right length took seconds (issue 24).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count

from customers.models import IndexedNameTrigram, IndexedNameWord

# The typo fallback tries at most this many corrections per searched word.
MAX_CORRECTIONS_PER_WORD = 8


def corrections_of(searched_words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each searched word, the indexed name words it could be a misspelling of (itself
    when some name word contains it as typed). {} when a word has no close match at all."""
    corrections: dict[str, tuple[str, ...]] = {}
    for word in searched_words:
        if _in_some_word(word):
            corrections[word] = (word,)
            continue
        limit = _edit_limit(word)
        if limit == 0:
            return {}
        close = sorted(
            (distance, candidate)
            for candidate in _sharing_trigrams(word, limit)
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


def _in_some_word(word: str) -> bool:
    """Whether some dictionary word contains `word`: those words hold all of its own
    trigrams, so only the words the rarest of them lists are read."""
    if IndexedNameWord.objects.filter(pk=word).exists():
        return True
    inner = [word[i : i + 3] for i in range(len(word) - 2)]
    if not inner:  # one or two letters: a word that starts with them
        upper = word + "\U0010ffff"
        return IndexedNameWord.objects.filter(word__gte=word, word__lt=upper).exists()
    holding = (
        IndexedNameTrigram.objects.filter(trigram__in=set(inner))
        .values("word")
        .annotate(shared=Count("id"))
        .filter(shared=len(set(inner)))
        .values_list("word", flat=True)
    )
    return any(word in candidate for candidate in holding)


def _sharing_trigrams(word: str, limit: int) -> list[str]:
    """The dictionary words `limit` edits from `word` could be: one edit changes at most
    three of a word's trigrams (a swap of two letters four), so such a word shares at least
    all but 4 x limit of them, and always one (bench/README.md)."""
    trigrams = word_trigrams(word)
    needed = max(1, len(trigrams) - 4 * limit)
    candidates = (
        IndexedNameTrigram.objects.filter(trigram__in=trigrams)
        .values("word")
        .annotate(shared=Count("id"))
        .filter(shared__gte=needed)
        .values_list("word", flat=True)
    )
    return [c for c in candidates if abs(len(c) - len(word)) <= limit]


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
