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


def test_a_page_at_once_agrees_with_one_key_at_a_time_past_the_set() -> None:
    """Pages of keys, some repeating earlier pages or themselves, through the move from the
    set to the flat array (a small limit, so it happens within the test): each page's
    answers are those of adding its keys one by one to a Python set."""
    randomness = random.Random(9)
    keys = [hash(str(uuid.UUID(int=randomness.getrandbits(128)))) for _ in range(6_000)]
    pages = [keys[at : at + 100] for at in range(0, len(keys), 100)]
    pages += [randomness.sample(keys, 100) for _ in range(5)]  # a listing repeating itself
    pages.insert(10, [0, 0, *keys[:3]])  # zero, and a key twice within one page
    # 950: the move happens within a page of new keys, added at once.
    seen, expected = SeenKeys(set_limit=950), set()
    for page in pages:
        answers = []
        for key in page:
            answers.append(key not in expected)
            expected.add(key)
        assert seen.add_all(page) == answers
        # Past the limit the keys are in the flat array, the memory's point.
        assert (seen._set is None) == (len(expected) > 950)
    assert len(seen) == len(expected)
    assert seen.add_all(sorted(expected)) == [False] * len(expected)
    assert seen.add_all([]) == []


def test_one_key_at_a_time_moves_to_the_flat_array_too() -> None:
    seen = SeenKeys(set_limit=10)
    for key in range(-5, 20):
        assert seen.add(key) is True
    assert seen._set is None
    assert all(seen.add(key) is False for key in range(-5, 20))
    assert len(seen) == 25
