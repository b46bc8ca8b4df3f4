"""Pull the IDs out of whatever was pasted into a paste box, and report everything else.

People paste a column from a spreadsheet (with its header and a total row), several columns
at once (tab-separated), a CSV export with quoted cells, a JSON list, or links copied from
Salesforce or Metronome. Extraction never fails: what is an ID is kept (normalised, each once,
in pasted order); what is not is returned as ignored, with how often it appeared.

How a paste is read:
- Cells are separated by new lines, tabs, commas, semicolons and pipes. A cell in double
  quotes (CSV style, `""` for a quote) may hold any of those.
- Within a cell, words are separated by spaces. Quotes, brackets and braces around a word
  (and trailing sentence punctuation) are dropped.
- A word is an ID, a link to one, or not an ID. A cell with no ID in it is ignored as a
  whole ("Account ID", "Total 250"); in a cell with IDs, each other word is ignored on its
  own. Cells with no letter or digit at all (`---`, `[`) carry nothing and are skipped.

This module is pure: no I/O, no Django.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from customers import salesforce
from customers.salesforce import SalesforceId

_CELL_SEPARATORS = "\r\n\t,;|"
# A quoted cell only where a cell starts (after optional spaces) and ends (before optional
# spaces and a separator), so a stray quote inside a value is just a character.
_CELL = re.compile(
    rf'(?:(?<=[{_CELL_SEPARATORS}])|^)[ ]*"(?P<quoted>(?:[^"]|"")*)"[ ]*'
    rf"(?=[{_CELL_SEPARATORS}]|$)"
    rf"|(?P<plain>[^{_CELL_SEPARATORS}]+)"
)
# Zero-width spaces and byte-order marks come along with text copied from web pages and
# some spreadsheet exports; they separate words like spaces do.
_WORDS = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_WRAPPING = "\"'`“”‘’„«»‹›()[]{}<>"
# Sentence punctuation, and the list separators left on a word inside one quoted cell
# ("ID1, ID2"), which the ignored values' display (`_unpaired`) drops too.
_TRAILING = ".:!?,;"
_HAS_ALNUM = re.compile(r"[^\W_]")
_SPACES = re.compile(r"\s+")

# A UUID with its dashes or without (as some database exports write it; the search box
# takes both too).
_UUID = re.compile(
    r"(?:urn:uuid:)?"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})",
    re.IGNORECASE,
)
# Something shaped like a link even without its scheme, as some browsers copy it.
_SCHEMELESS_LINK = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{2,}/", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A pasted value that is not an ID, and how many times it was pasted. `note` says why
    when the value is nearly an ID: one character short is easy to miss in a list of them."""

    value: str
    count: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class PastedIds:
    """What one paste box held.

    `ids` are normalised (customer IDs as lower-case UUIDs, Salesforce IDs as their
    18-character key) and each appears once, in the order first pasted; `as_pasted` gives
    each one as it was first found (inside its quotes or link), for redisplay and for a
    lookup that must send the form the person typed. `repeats` counts the pasted IDs that
    were already in the list. For Salesforce IDs, `conversions` holds every distinct pasted
    form whose key differs from it (15 -> 18 characters, case repaired), in pasted order.
    `repeated` holds each repeat that no kept form stands for, as typed, so that the
    compacted paste (`as_text`) keeps the count of repeats too."""

    ids: tuple[str, ...] = ()
    as_pasted: tuple[str, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    repeats: int = 0
    conversions: tuple[SalesforceId, ...] = ()
    repeated: tuple[str, ...] = ()

    def as_text(self, separator: str = ",") -> str:
        """The paste, compacted to what the results report: each ID as pasted (every
        distinct pasted form of it), each repeat the forms do not already count, then each
        ignored value as often as it was pasted, comma-separated (or one a line, as a box
        redisplays it). Extracting it again gives the same IDs, forms, ignored values and
        number of repeats: a link or a stored search carries it instead of the whole paste."""
        forms = dict.fromkeys([*self.as_pasted, *(c.typed for c in self.conversions)])
        ignored = [_as_cell(item.value) for item in self.ignored for _ in range(item.count)]
        return separator.join([*forms, *self.repeated, *ignored])


def extract_customer_ids(text: str) -> PastedIds:
    """Metronome customer IDs: UUIDs in any case, with or without dashes, braced or
    `urn:uuid:` prefixed, and links to a customer in Metronome's app
    (`https://app.metronome.com/customers/<id>...`)."""
    return _extract(text, _customer_id, _not_quite_a_uuid)


def extract_salesforce_ids(text: str) -> PastedIds:
    """Salesforce IDs of 15 or 18 characters (read as `salesforce.normalise` describes) and
    links to a Salesforce record, Lightning (`.../lightning/r/Account/<id>/view`) or
    Classic (`https://<domain>/<id>`)."""
    return _extract(text, _salesforce_id, _not_quite_a_salesforce_id)


# What a reader finds in one word: the ID as found, its normalised form and, for Salesforce
# IDs, how it was read. None when the word holds no ID.
_Found = tuple[str, str, SalesforceId | None]
_Reader = Callable[[str], _Found | None]


def _extract(text: str, read: _Reader, explain: Callable[[str], str]) -> PastedIds:
    keys: dict[str, str] = {}  # normalised -> as first found
    ignored: dict[str, int] = {}
    conversions: dict[str, SalesforceId] = {}
    repeats = 0
    repeated: list[str] = []  # the repeats that as_text's forms do not stand for
    forms: set[str] = set()  # the forms as_text writes: each first one, each conversion
    for cell in _cells(text):
        # Each word is read without any wrapping; what is ignored is shown as pasted, less
        # whole pairs around it: unwrapped, "Acme (EU)" showed as "Acme (EU".
        words = [(raw, word) for raw in _WORDS.split(cell) if (word := _unwrap(raw))]
        found = [(raw, word, read(word)) for raw, word in words]
        if not any(result for _, _, result in found):
            value = _SPACES.sub(" ", cell.strip())
            if _HAS_ALNUM.search(value):
                ignored[value] = ignored.get(value, 0) + 1
            continue
        for raw, word, result in found:
            if result is None:
                if _HAS_ALNUM.search(word):
                    shown = _unpaired(raw)
                    ignored[shown] = ignored.get(shown, 0) + 1
                continue
            typed, key, salesforce_id = result
            converted = salesforce_id is not None and salesforce_id.converted
            if key in keys:
                repeats += 1
                # as_text writes each converted form once, which counts a repeat that
                # brought a new one; any other repeat is written again as typed.
                if not (converted and typed not in forms):
                    repeated.append(typed)
            else:
                keys[key] = typed
                forms.add(typed)
            if salesforce_id is not None and salesforce_id.converted:
                conversions.setdefault(typed, salesforce_id)
                forms.add(typed)
    return PastedIds(
        ids=tuple(keys),
        as_pasted=tuple(keys.values()),
        ignored=tuple(Ignored(value, count, explain(value)) for value, count in ignored.items()),
        repeats=repeats,
        conversions=tuple(conversions.values()),
        repeated=tuple(repeated),
    )


def _as_cell(value: str) -> str:
    """A value as one cell: quoted (CSV style) when it holds a separator or a quote."""
    if any(character in value for character in f'{_CELL_SEPARATORS}"'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _cells(text: str) -> Iterator[str]:
    for match in _CELL.finditer(text):
        quoted = match.group("quoted")
        yield quoted.replace('""', '"') if quoted is not None else match.group("plain")


def _unwrap(word: str) -> str:
    """Drop quotes, brackets and braces around a word, and trailing sentence punctuation,
    in any mix ("(ID).)" is ID). In one pass each end: stripping them in turns until
    nothing changed copied the word once a turn, and a word of a million ").", pasted on
    purpose, held a worker for 22 seconds."""
    return word.lstrip(_WRAPPING).rstrip(_WRAPPING + _TRAILING)


_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">", '"': '"', "'": "'", "`": "`", "“": "”"}
_PAIRS |= {"‘": "’", "„": "“", "«": "»", "‹": "›"}


def _unpaired(word: str) -> str:
    """A word as shown among the ignored values: without trailing sentence punctuation or a
    pair of brackets or quotes around all of it ("(Acme)," shows as Acme), but with any
    bracket that belongs to it ("<b>x</b>" stays whole)."""
    word = word.rstrip(_TRAILING + ",;")
    while len(word) > 2 and _PAIRS.get(word[0]) == word[-1]:
        inner = word[1:-1]
        if word[0] in inner or word[-1] in inner:
            break
        word = inner.rstrip(_TRAILING + ",;")
    return word


def _link_path(word: str) -> list[str] | None:
    """The path segments of a link, or None when the word is not a link."""
    if "://" not in word:
        if not _SCHEMELESS_LINK.match(word):
            return None
        word = "https://" + word
    try:
        parts = urlsplit(word)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return [segment for segment in parts.path.split("/") if segment]


# Letters and digits both: a 13-digit number (a timestamp) is no near-ID.
_ALMOST_SALESFORCE_ID = re.compile(r"(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]{12,21}")
_ALMOST_UUID = re.compile(r"[0-9A-Fa-f-]{24,40}")


def _not_quite_a_salesforce_id(value: str) -> str:
    """Why a value shaped like a Salesforce ID but of another length is none."""
    if _ALMOST_SALESFORCE_ID.fullmatch(value):
        return f"{len(value)} characters: a Salesforce ID has 15 or 18"
    return ""


def _not_quite_a_uuid(value: str) -> str:
    """Why a value shaped like a customer ID but of another length is none."""
    if _ALMOST_UUID.fullmatch(value) and (digits := len(value.replace("-", ""))) != 32:
        return f"{digits} hex digits: a customer ID has 32"
    return ""


def _customer_id(word: str) -> _Found | None:
    path = _link_path(word)
    if path is not None:
        # Metronome's app: /customers/<id>, then maybe a tab such as /invoices.
        for name, following in itertools.pairwise(path):
            if name == "customers" and _UUID.fullmatch(following):
                return following, str(uuid.UUID(following)), None
        return None
    if _UUID.fullmatch(word):
        return word, str(uuid.UUID(word)), None
    return None


def _salesforce_id(word: str) -> _Found | None:
    path = _link_path(word)
    if path is not None:
        candidate = _salesforce_id_in_link(path)
        if candidate is None:
            return None
        word = candidate
    elif not salesforce.looks_like_id(word):
        return None
    salesforce_id = salesforce.normalise(word)
    return word, salesforce_id.key, salesforce_id


def _salesforce_id_in_link(path: list[str]) -> str | None:
    # Lightning: /lightning/r/Account/<id>/view (or /lightning/r/<id>/view).
    if path[:2] == ["lightning", "r"]:
        return next((s for s in path[2:4] if salesforce.looks_like_id(s)), None)
    # Classic: https://<domain>/<id>, sometimes followed by /e (edit) and the like.
    if path and salesforce.looks_like_id(path[0]):
        return path[0]
    return None
