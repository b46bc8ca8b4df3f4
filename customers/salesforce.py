"""Salesforce record IDs in their two forms, as people paste them and as Metronome stores them.

A Salesforce ID has a case-sensitive 15-character form and an 18-character form: the same 15
characters plus a 3-character suffix that records which of them are upper case, so the ID
survives tools that change case. Reports give the 15-character form; the API, Data Loader and
integrations the 18-character one. Metronome stores whatever the company's integration wrote,
and most likely matches `salesforce_account_ids` as plain strings, so a lookup sends both
forms (`SalesforceId.wire_values`) and matches results back by the 18-character form
(`key_for_stored`), which is the key everything else is compared by.

This module is pure: no I/O, no Django.

Reference: https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm
(the ID field type: 15-character case-sensitive and 18-character case-safe IDs).
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

# Index i of this alphabet is the suffix character for a 5-character chunk whose upper-case
# letters set bit i (the chunk's first character is bit 0).
SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SUFFIX_VALUE = {character: value for value, character in enumerate(SUFFIX_ALPHABET)}
_CHUNKS = (0, 5, 10)
# Every ASCII character to "1" when it is an upper-case letter, else to "0" (suffix).
_UPPER_CASE_BITS = str.maketrans(
    {chr(code): "1" if "A" <= chr(code) <= "Z" else "0" for code in range(128)}
)

_SHAPE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_DIGIT = re.compile(r"[0-9]")


class Reading(enum.Enum):
    """How a pasted ID was read."""

    CHECKED = "checked"  # 18 characters whose suffix fits: used as typed
    EXPANDED = "expanded"  # 15 characters: the suffix was computed
    CASE_REPAIRED = "case repaired"  # 18 characters whose case was restored from the suffix
    UNCHECKED = "unchecked"  # 18 characters whose suffix does not fit: used exactly as typed


@dataclass(frozen=True, slots=True)
class SalesforceId:
    """One pasted Salesforce ID: as typed, its normalised 18-character key, and how it was
    read."""

    typed: str
    key: str
    reading: Reading

    @property
    def converted(self) -> bool:
        """Whether the key differs from what was typed (15 -> 18, or case repaired)."""
        return self.reading in (Reading.EXPANDED, Reading.CASE_REPAIRED)

    @property
    def wire_values(self) -> tuple[str, ...]:
        """The values to send in `salesforce_account_ids` to find this ID whichever form
        Metronome stores: the 18-character key and its 15-character form and, after a case
        repair, the form as typed too (the company may have stored the same case-changed
        copy). An ID whose suffix does not fit is sent only as typed: its first 15
        characters are not the short form of anything it could be stored as."""
        if self.reading is Reading.UNCHECKED:
            return (self.key,)
        values: tuple[str, ...] = (self.key, self.key[:15])
        if self.reading is Reading.CASE_REPAIRED:
            values += (self.typed,)
        return values


def suffix(id15: str) -> str:
    """The 3-character case-safe suffix of a 15-character ID: for each 5 characters, one bit
    per character, set for an upper-case letter, the first character the lowest bit."""
    if len(id15) != 15 or not id15.isascii():
        raise ValueError(
            f"a Salesforce ID of 15 ASCII characters is needed, got {len(id15)} characters"
        )
    # The bits written out in C, "1" or "0" a character, then read as three binary numbers
    # (last character first): a third of the time of testing each character in Python, and
    # the index sync computes one for every customer it writes.
    bits = id15.translate(_UPPER_CASE_BITS)
    return (
        SUFFIX_ALPHABET[int(bits[4::-1], 2)]
        + SUFFIX_ALPHABET[int(bits[9:4:-1], 2)]
        + SUFFIX_ALPHABET[int(bits[14:9:-1], 2)]
    )


def to_18(id15: str) -> str:
    """`001xx000003DHur` -> `001xx000003DHurAAG`."""
    return id15 + suffix(id15)


def looks_like_id(text: str) -> bool:
    """Whether pasted text is shaped like a Salesforce record ID: 15 or 18 ASCII letters and
    digits with at least one digit. Every real ID has digits (its 6th character is a reserved
    `0`, and record numbers are zero-padded); the digit rule keeps 15-letter words such as
    `Internationally` or a column header out."""
    return _SHAPE.fullmatch(text) is not None and _DIGIT.search(text) is not None


def _repair_case(typed: str) -> str | None:
    """The 18-character ID whose case its suffix describes, or None when the suffix cannot
    describe these characters: a suffix character outside the alphabet (case-insensitively,
    since a spreadsheet may have lower-cased the suffix too), or a bit set for a digit."""
    suffix_typed = typed[15:].upper()
    if suffix(typed[:15]) == typed[15:]:
        return typed  # the common case: an ID as Salesforce writes it
    repaired = []
    for start, character in zip(_CHUNKS, suffix_typed, strict=True):
        bits = _SUFFIX_VALUE.get(character)
        if bits is None:
            return None
        for position, original in enumerate(typed[start : start + 5]):
            upper = bool(bits >> position & 1)
            if upper and not original.isalpha():
                return None
            repaired.append(original.upper() if upper else original.lower())
    return "".join(repaired) + suffix_typed


# A pasted-ID search reads the same IDs several times over (the form, its stored search, each
# customer found matched back): 2,200 readings for 300 IDs, a third of its CPU before this.
# Pure, and its answer frozen, so each ID is worked out once.
@functools.lru_cache(maxsize=8192)
def normalise(typed: str) -> SalesforceId:
    """Read one pasted ID (already trimmed and shaped like an ID; see `looks_like_id`).

    - 15 characters: expanded to 18 with the computed suffix. Its case cannot be checked,
      so a lower-cased 15-character ID stays lower-cased.
    - 18 characters whose suffix fits: the case of the first 15 is taken from the suffix
      (and the suffix upper-cased), which repairs a lower-, upper- or otherwise re-cased ID.
    - 18 characters whose suffix cannot fit: kept exactly as typed, never rejected
      (Metronome's own docs show `0015500001WO1ZiABL`, whose suffix does not fit).
    """
    if _SHAPE.fullmatch(typed) is None:
        raise ValueError("a Salesforce ID has 15 or 18 ASCII letters and digits")
    if len(typed) == 15:
        return SalesforceId(typed=typed, key=to_18(typed), reading=Reading.EXPANDED)
    repaired = _repair_case(typed)
    if repaired is None:
        return SalesforceId(typed=typed, key=typed, reading=Reading.UNCHECKED)
    if repaired == typed:
        return SalesforceId(typed=typed, key=typed, reading=Reading.CHECKED)
    return SalesforceId(typed=typed, key=repaired, reading=Reading.CASE_REPAIRED)


def key_for_stored(stored: str) -> str:
    """The key a customer's stored `salesforce_account_id` is matched by: its normalised
    18-character form, so a customer found through any of a pasted ID's `wire_values` maps
    back to that ID's key. A stored value not shaped like an ID is its own key."""
    if _SHAPE.fullmatch(stored) is None:
        return stored
    # `normalise(stored).key` without building the SalesforceId: the index sync asks this of
    # every customer it writes.
    if len(stored) == 15:
        return to_18(stored)
    return _repair_case(stored) or stored
