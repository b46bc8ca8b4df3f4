"""The customers a listing has already sent, 8 bytes each.

`MetronomeClient._follow` keeps every customer of a listing once, so it remembers each one
it sent by `hash()` of its ID. In a Python set that is an int object and a slot, about 86
bytes a customer: 67 MB for the 780,000 active customers of an account of 1,000,000, most of
a sync's memory there (issue 24's budget is 100 MB of growth). Here the hashes sit in one
flat array of 64-bit slots, at most half full: 16 MB for the same customers, for about 0.5
µs more a customer (bench/README.md, the sixth pass).
"""

from __future__ import annotations

from array import array

_EMPTY = 0  # a free slot; the key 0 itself is remembered apart
_FIRST_SLOTS = 1024


class SeenKeys:
    """An exact set of 64-bit ints (`hash()` values) in one array, open addressing with
    linear probing: hashes of IDs are spread evenly already, so neighbouring slots collide no
    more than any others. Nor can an API crowd one slot on purpose: `hash()` of a str is
    keyed afresh in every process (SipHash, PYTHONHASHSEED)."""

    __slots__ = ("_has_zero", "_mask", "_slots", "_used")

    def __init__(self) -> None:
        self._slots = array("q", bytes(8 * _FIRST_SLOTS))
        self._mask = _FIRST_SLOTS - 1
        self._used = 0
        self._has_zero = False

    def __len__(self) -> int:
        return self._used + self._has_zero

    def add(self, key: int) -> bool:
        """Remember `key`; True when it is new, False when it was seen before."""
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
