"""How the customer index folds names and keys IDs: the same functions when rows are written
(rows.py, staging.py) and when a search compares against them (search.py)."""

from __future__ import annotations

import re
import unicodedata

from customers import salesforce

# Letters with no decomposition into a base letter and an accent, as people type them on a
# keyboard without them: "orsted" finds Ørsted. (ß needs none: casefold writes "ss".)
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "ħ": "h", "ı": "i"}
)


# The folded name and external ID are B-tree keys (sorting, prefix search), each folded
# alias a GIN key, and PostgreSQL refuses a key over about 2,700 bytes: one customer named
# with 5,000 words failed every sync ("index row requires 16744 bytes"). 500 characters are
# at most 2,000 bytes of UTF-8; the values are stored whole beside them, and a search for
# their first 500 characters finds them.
MAX_INDEXED_TEXT = 500


def fold(text: str) -> str:
    """Text as searches compare it: accents removed, case folded, spaces collapsed.
    Changing it changes what the index stores: bump rows.ROW_FORMAT with it."""
    if text.isascii():  # most names and IDs: the same result, several times faster
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().translate(_UNDECOMPOSED).split())


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
    return salesforce.key_for_stored(text) if _SALESFORCE_ID.fullmatch(text) else ""
