"""The flat set a listing remembers its customers in (customers/metronome/seen.py)."""

from __future__ import annotations

import random
import uuid

from customers.metronome.seen import SeenKeys


def test_a_key_is_new_once_and_seen_after() -> None:
    seen = SeenKeys()
    assert seen.add(12345) is True
    assert seen.add(12345) is False
    assert len(seen) == 1


def test_zero_and_negative_keys_are_keys_like_any_other() -> None:
    seen = SeenKeys()
    for key in (0, -1, -(2**63), 2**63 - 1):
        assert seen.add(key) is True
    for key in (0, -1, -(2**63), 2**63 - 1):
        assert seen.add(key) is False
    assert len(seen) == 4


def test_agrees_with_a_set_through_growing_and_colliding_keys() -> None:
    """Hashes of real IDs, and keys chosen to land in the same slot (equal low bits), past
    several doublings of the table: every answer matches Python's set."""
    randomness = random.Random(24)
    keys = [hash(str(uuid.UUID(int=randomness.getrandbits(128)))) for _ in range(20_000)]
    keys += [(n << 20) | 7 for n in range(2_000)]  # all in one slot of the first tables
    keys += randomness.sample(keys, 5_000)  # repeats, as a listing repeating itself sends
    randomness.shuffle(keys)
    seen, expected = SeenKeys(), set()
    for key in keys:
        assert seen.add(key) is (key not in expected)
        expected.add(key)
    assert len(seen) == len(expected)
    assert all(seen.add(key) is False for key in expected)
