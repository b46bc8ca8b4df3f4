"""Salesforce IDs: 15 -> 18 characters, case repair from the suffix, the values a lookup
sends and the key results are matched back by."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers import salesforce
from customers.salesforce import Reading, SalesforceId

BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
ids_15 = st.text(alphabet=BASE62, min_size=15, max_size=15)


# --- The documented examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("short", "long"),
    [("001xx000003DHur", "001xx000003DHurAAG"), ("a0D30000001n7Pi", "a0D30000001n7PiEAI")],
)
def test_a_15_character_id_gets_salesforce_s_checksum_suffix(short, long):
    assert salesforce.to_18(short) == long
    assert salesforce.normalise(short) == SalesforceId(
        typed=short, key=long, reading=Reading.EXPANDED
    )


def test_every_suffix_character_is_reachable():
    assert salesforce.suffix("AAAAAAAAAAAAAAA") == "555"
    assert salesforce.suffix("000000000000000") == "AAA"
    assert salesforce.suffix("A0000a0000000aB") == "BAQ"


def test_a_correct_18_character_id_is_used_as_typed():
    assert salesforce.normalise("001xx000003DHurAAG") == SalesforceId(
        typed="001xx000003DHurAAG", key="001xx000003DHurAAG", reading=Reading.CHECKED
    )


# --- Case repair ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "001xx000003dhuraag",  # a spreadsheet lower-cased the whole column, suffix too
        "001XX000003DHURAAG",  # or upper-cased it
        "001xx000003DHuraag",  # only the suffix lost its case
        "001Xx000003Dhuraag",  # "proper case"
    ],
)
def test_a_re_cased_18_character_id_has_its_case_repaired_from_its_suffix(typed):
    read = salesforce.normalise(typed)
    assert read.key == "001xx000003DHurAAG"
    assert read.reading is Reading.CASE_REPAIRED
    assert read.converted


def test_a_lower_cased_id_of_another_object_is_repaired_too():
    assert salesforce.normalise("a0d30000001n7pieai").key == "a0D30000001n7PiEAI"


@pytest.mark.parametrize(
    "typed",
    [
        # Metronome's own docs example: the suffix says a digit is upper case.
        "0015500001WO1ZiABL",
        # Suffix characters 6-9 are not in the suffix alphabet at all.
        "001xx000003DHurAA9",
        "001xx000003DHur678",
    ],
)
def test_an_18_character_id_whose_suffix_does_not_fit_is_kept_exactly_as_typed(typed):
    read = salesforce.normalise(typed)
    assert read == SalesforceId(typed=typed, key=typed, reading=Reading.UNCHECKED)
    assert not read.converted
    assert read.wire_values == (typed,)


def test_a_lower_cased_15_character_id_cannot_be_repaired_and_is_expanded_as_it_is():
    read = salesforce.normalise("001xx000003dhur")
    assert read.key == "001xx000003dhurAAA"
    assert read.reading is Reading.EXPANDED


@pytest.mark.parametrize("typed", ["", "001xx000003DHu", "001xx000003DHurAA", "001xx-00003DHur"])
def test_normalise_refuses_what_is_not_shaped_like_an_id(typed):
    with pytest.raises(ValueError):
        salesforce.normalise(typed)


# --- What a lookup sends and how results are matched back -------------------------------------


def test_a_pasted_id_is_looked_up_in_both_forms():
    assert salesforce.normalise("001xx000003DHur").wire_values == (
        "001xx000003DHurAAG",
        "001xx000003DHur",
    )
    assert salesforce.normalise("001xx000003DHurAAG").wire_values == (
        "001xx000003DHurAAG",
        "001xx000003DHur",
    )


def test_a_case_repaired_id_is_also_looked_up_as_typed():
    assert salesforce.normalise("001xx000003dhuraag").wire_values == (
        "001xx000003DHurAAG",
        "001xx000003DHur",
        "001xx000003dhuraag",
    )


@pytest.mark.parametrize(
    ("stored", "key"),
    [
        ("001xx000003DHurAAG", "001xx000003DHurAAG"),
        ("001xx000003DHur", "001xx000003DHurAAG"),
        ("001xx000003dhuraag", "001xx000003DHurAAG"),
        ("0015500001WO1ZiABL", "0015500001WO1ZiABL"),
        ("not an id", "not an id"),
        ("Acme-42", "Acme-42"),
    ],
)
def test_a_stored_id_maps_back_to_the_normalised_key(stored, key):
    assert salesforce.key_for_stored(stored) == key


def test_two_forms_of_one_id_pasted_share_one_key():
    assert (
        salesforce.normalise("001xx000003DHur").key
        == salesforce.normalise("001XX000003DHURAAG").key
        == salesforce.normalise("001xx000003DHurAAG").key
    )


# --- Properties -------------------------------------------------------------------------------


@given(ids_15)
def test_every_18_character_form_checks_out_and_keeps_its_15_characters(short):
    long = salesforce.to_18(short)
    assert long[:15] == short
    assert salesforce.normalise(long) == SalesforceId(long, long, Reading.CHECKED)
    assert salesforce.normalise(short).key == long


@given(ids_15, st.lists(st.booleans(), min_size=18, max_size=18))
def test_any_change_of_case_is_repaired_back_to_the_original(short, flips):
    long = salesforce.to_18(short)
    re_cased = "".join(c.swapcase() if flip else c for c, flip in zip(long, flips, strict=True))
    assert salesforce.normalise(re_cased).key == long
    assert salesforce.normalise(re_cased.lower()).key == long
    assert salesforce.normalise(re_cased.upper()).key == long


@given(st.one_of(ids_15, ids_15.map(salesforce.to_18), st.text(BASE62, min_size=18, max_size=18)))
def test_whatever_form_metronome_stores_maps_back_to_the_pasted_key(typed):
    read = salesforce.normalise(typed)
    assert all(salesforce.key_for_stored(value) == read.key for value in read.wire_values)
    assert len(set(read.wire_values)) == len(read.wire_values)
    assert salesforce.key_for_stored(read.key) == read.key


@given(st.text(st.characters(max_codepoint=127), min_size=15, max_size=15))
def test_the_suffix_has_a_bit_for_each_upper_case_letter_first_character_lowest(id15):
    expected = "".join(
        salesforce.SUFFIX_ALPHABET[
            sum(1 << position for position, c in enumerate(id15[start : start + 5]) if c.isupper())
        ]
        for start in (0, 5, 10)
    )
    assert salesforce.suffix(id15) == expected


@pytest.mark.parametrize("id15", ["001xx000003DHu", "001xx000003DHurr", "001xx000003DHür"])
def test_a_suffix_needs_15_ascii_characters(id15):
    with pytest.raises(ValueError, match="15 ASCII characters"):
        salesforce.suffix(id15)


@given(
    st.one_of(
        ids_15,
        ids_15.map(salesforce.to_18),
        st.text(BASE62, min_size=18, max_size=18),
        st.text(min_size=0, max_size=20),
    )
)
def test_a_stored_value_s_key_is_what_reading_it_as_pasted_gives(stored):
    shaped = len(stored) in (15, 18) and all(c in BASE62 for c in stored)
    expected = salesforce.normalise(stored).key if shaped else stored
    assert salesforce.key_for_stored(stored) == expected
