"""The customers a listing has already sent: in a set while there are few, then 8 bytes each.

`MetronomeClient._follow` keeps every customer of a listing once, so it remembers each one
it sent by `hash()` of its ID. In a Python set that is an int object and a slot, about 86
bytes a customer: 67 MB for the 780,000 active customers of an account of 1,000,000, most of
a sync's memory there (issue 24's budget is 100 MB of growth). So past `SET_LIMIT` keys
(about 3 MB in a set) the hashes move to one flat array of 64-bit slots, at most half full:
16 MB for those 780,000. The set is used first because it checks a whole page in C, where
the flat array costs about 0.5 µs a customer in Python (bench/README.md, the sixth and
ninth passes); it is kept that small so that an export's memory stays flat with its size.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

SET_LIMIT = 1 << 15  # 32,768 keys
_EMPTY = 0  # a free slot of the flat array; the key 0 itself is remembered apart


class SeenKeys:
    """An exact set of 64-bit ints (`hash()` values). Past `set_limit` keys: one array,
    open addressing with linear probing; hashes of IDs are spread evenly already, so
    neighbouring slots collide no more than any others. Nor can an API crowd one slot on
    purpose: `hash()` of a str is keyed afresh in every process (SipHash, PYTHONHASHSEED)."""

    __slots__ = ("_has_zero", "_mask", "_set", "_set_limit", "_slots", "_used")

    def __init__(self, set_limit: int = SET_LIMIT) -> None:
        self._set: set[int] | None = set()
        self._set_limit = set_limit
        self._slots = array("q")
        self._mask = 0
        self._used = 0
        self._has_zero = False

    def __len__(self) -> int:
        if self._set is not None:
            return len(self._set)
        return self._used + self._has_zero

    def add_all(self, keys: Sequence[int]) -> list[bool]:
        """Remember each key; for each, True when it is new, False when it was seen before
        (a key twice in `keys` is new the first time only). A page of new keys, the usual
        case, is checked and added in C while they fit in the set."""
        known = self._set
        if known is not None:
            page = set(keys)
            if len(page) == len(keys) and known.isdisjoint(page):
                known |= page
                if len(known) > self._set_limit:
                    self._move_to_slots()
                return [True] * len(keys)
        return [self.add(key) for key in keys]

    def add(self, key: int) -> bool:
        """Remember `key`; True when it is new, False when it was seen before."""
        known = self._set
        if known is not None:
            if key in known:
                return False
            known.add(key)
            if len(known) > self._set_limit:
                self._move_to_slots()
            return True
        if key == _EMPTY:
            new = not self._has_zero
            self._has_zero = True
            return new
        slots, mask = self._slots, self._mask
        slot = key & mask
        while (held := slots[slot]) != _EMPTY:
            if held == key:
                return False
            slot = (slot + 1) & mask
        slots[slot] = key
        self._used += 1
        if self._used * 2 > mask:
            self._grow()
        return True

    def _move_to_slots(self) -> None:
        keys, self._set = self._set or set(), None
        size = 1024
        while size < len(keys) * 4:  # at most a quarter full, so not grown again at once
            size *= 2
        self._slots, self._mask = array("q", bytes(8 * size)), size - 1
        for key in keys:
            self.add(key)

    def _grow(self) -> None:
        mask = self._mask * 2 + 1
        slots = array("q", bytes(8 * (mask + 1)))
        for key in self._slots:
            if key != _EMPTY:
                slot = key & mask
                while slots[slot] != _EMPTY:
                    slot = (slot + 1) & mask
                slots[slot] = key
        self._slots, self._mask = slots, mask
