"""What the paste boxes make of what people paste: IDs pulled out of columns, quotes, links
and reports; everything else ignored and reported, never an error; and the form's two
errors (nothing usable, more than 1,000 IDs)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers import pasted
from customers.forms import MAX_PASTED_IDS, CustomerFilterForm
from customers.pasted import Ignored, PastedIds, extract_customer_ids, extract_salesforce_ids
from customers.salesforce import Reading, to_18

ACME = "001xx000003DHurAAG"
GLOBEX = "a0D30000001n7PiEAI"
INITECH = to_18("001Dn00000AbCdE")
CUSTOMER = "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"
OTHER_CUSTOMER = "0c5e4f3a-3f7c-4b8e-9a8e-2f4a1c9d7b6e"


def ignored_values(pasted: PastedIds) -> list[str]:
    return [item.value for item in pasted.ignored]


# --- Shapes of a paste ------------------------------------------------------------------------


def test_header_row_is_ignored_and_reported():
    pasted = extract_salesforce_ids(f"Account ID\n{ACME}\n{GLOBEX}\n")
    assert pasted.ids == (ACME, GLOBEX)
    assert pasted.ignored == (Ignored("Account ID", 1),)


def test_a_value_nearly_an_id_says_what_its_length_lacks():
    salesforce = extract_salesforce_ids(
        f"{ACME[:-1]}\n{ACME}0\nAccount ID\n{ACME[:14]}\n12000\n1714557600000"
    )
    assert salesforce.ignored == (
        Ignored(ACME[:-1], 1, "17 characters: a Salesforce ID has 15 or 18"),
        Ignored(f"{ACME}0", 1, "19 characters: a Salesforce ID has 15 or 18"),
        Ignored("Account ID", 1),
        Ignored(ACME[:14], 1, "14 characters: a Salesforce ID has 15 or 18"),
        Ignored("12000", 1),
        Ignored("1714557600000", 1),  # a timestamp: digits only, no near-ID
    )
    customers = extract_customer_ids(f"{CUSTOMER[:-1]}\n{CUSTOMER.replace('-', '')}0\ndeadbeef")
    assert customers.ignored == (
        Ignored(CUSTOMER[:-1], 1, "31 hex digits: a customer ID has 32"),
        Ignored(CUSTOMER.replace("-", "") + "0", 1, "33 hex digits: a customer ID has 32"),
        Ignored("deadbeef", 1),
    )


def test_quoted_csv_cells_are_unquoted_and_commas_inside_quotes_stay_in_their_cell():
    pasted = extract_salesforce_ids(
        '"Account ID","Account Name"\n'
        f'"{ACME}","Smith, Jones & ""Partners"" LLC"\n'
        f"'{GLOBEX}',Acme\n"
    )
    assert pasted.ids == (ACME, GLOBEX)
    assert ignored_values(pasted) == [
        "Account ID",
        "Account Name",
        'Smith, Jones & "Partners" LLC',
        "Acme",
    ]


def test_three_tab_separated_columns_give_the_ids_and_ignore_the_rest():
    pasted = extract_salesforce_ids(
        "Account Name\tAccount ID\tARR\n"
        f"Acme Corp\t{ACME}\t12000\n"
        f"Globex\t{GLOBEX}\t900\n"
        f"Acme Corp\t{INITECH}\t12000\n"
    )
    assert pasted.ids == (ACME, GLOBEX, INITECH)
    assert pasted.ignored == (
        Ignored("Account Name", 1),
        Ignored("Account ID", 1),
        Ignored("ARR", 1),
        Ignored("Acme Corp", 2),
        Ignored("12000", 2),
        Ignored("Globex", 1),
        Ignored("900", 1),
    )


def test_any_mix_of_separators_works():
    pasted = extract_salesforce_ids(f" {ACME};{GLOBEX} | {INITECH},\r\n\n\t{ACME} ")
    assert pasted.ids == (ACME, GLOBEX, INITECH)
    assert pasted.ignored == ()


def test_brackets_braces_and_a_json_list_are_unwrapped():
    assert extract_salesforce_ids(f'["{ACME}", "{GLOBEX}"]').ids == (ACME, GLOBEX)
    assert extract_salesforce_ids(f"({ACME}) {{{GLOBEX}}} <{INITECH}>.").ids == (
        ACME,
        GLOBEX,
        INITECH,
    )


@pytest.mark.parametrize(
    "link",
    [
        f"https://acme.lightning.force.com/lightning/r/Account/{ACME}/view",
        f"https://acme.lightning.force.com/lightning/r/{ACME}/view",
        f"acme.lightning.force.com/lightning/r/Account/{ACME}/view?ws=%2Flightning",
    ],
)
def test_a_lightning_record_link_gives_its_id(link):
    pasted = extract_salesforce_ids(f"{link}\n")
    assert pasted.ids == (ACME,)
    assert pasted.as_pasted == (ACME,)
    assert pasted.ignored == ()


@pytest.mark.parametrize(
    "link",
    [
        "https://na1.salesforce.com/001xx000003DHur",
        "https://acme.my.salesforce.com/001xx000003DHurAAG/e?retURL=%2Fhome",
        "http://crm.example.com/001xx000003DHur",
    ],
)
def test_a_classic_record_link_gives_its_id(link):
    assert extract_salesforce_ids(link).ids == (ACME,)


def test_a_link_without_an_id_is_ignored_whole():
    link = "https://acme.lightning.force.com/lightning/o/Account/list"
    pasted = extract_salesforce_ids(f"{link}\n{ACME}")
    assert pasted.ids == (ACME,)
    assert ignored_values(pasted) == [link]


def test_a_metronome_customer_link_gives_its_customer_id():
    pasted = extract_customer_ids(
        f"https://app.metronome.com/customers/{CUSTOMER}\n"
        f"https://app.metronome.com/customers/{OTHER_CUSTOMER}/invoices?tab=all\n"
    )
    assert pasted.ids == (CUSTOMER, OTHER_CUSTOMER)
    assert pasted.ignored == ()


def test_braced_upper_case_and_urn_uuids_are_read_as_customer_ids():
    pasted = extract_customer_ids(
        f"{{{CUSTOMER.upper()}}}\n{OTHER_CUSTOMER.upper()}\nurn:uuid:{CUSTOMER}"
    )
    assert pasted.ids == (CUSTOMER, OTHER_CUSTOMER)
    assert pasted.as_pasted == (CUSTOMER.upper(), OTHER_CUSTOMER.upper())
    assert pasted.repeats == 1


def test_uuids_without_dashes_are_read_as_customer_ids():
    # As some database exports write them; the search box takes them too.
    no_dashes = CUSTOMER.replace("-", "").upper()
    pasted = extract_customer_ids(f"{no_dashes}\n{OTHER_CUSTOMER.replace('-', '')}\n{'a' * 31}")
    assert pasted.ids == (CUSTOMER, OTHER_CUSTOMER)
    assert pasted.as_pasted[0] == no_dashes
    assert [item.value for item in pasted.ignored] == ["a" * 31]


def test_each_box_ignores_the_other_box_s_ids():
    salesforce_box = extract_salesforce_ids(
        f"{CUSTOMER}\nhttps://app.metronome.com/customers/{CUSTOMER}"
    )
    customer_box = extract_customer_ids(
        f"{ACME}\nhttps://x.lightning.force.com/lightning/r/Account/{ACME}/view"
    )
    assert salesforce_box.ids == customer_box.ids == ()
    assert len(salesforce_box.ignored) == len(customer_box.ignored) == 2


# --- Salesforce forms -------------------------------------------------------------------------


def test_15_character_ids_are_converted_with_the_checksum_and_the_conversion_reported():
    pasted = extract_salesforce_ids("001xx000003DHur\na0D30000001n7Pi")
    assert pasted.ids == ("001xx000003DHurAAG", "a0D30000001n7PiEAI")
    assert pasted.as_pasted == ("001xx000003DHur", "a0D30000001n7Pi")
    assert [(c.typed, c.key, c.reading) for c in pasted.conversions] == [
        ("001xx000003DHur", "001xx000003DHurAAG", Reading.EXPANDED),
        ("a0D30000001n7Pi", "a0D30000001n7PiEAI", Reading.EXPANDED),
    ]


def test_a_lower_cased_18_character_id_has_its_case_repaired_and_reported():
    pasted = extract_salesforce_ids("001xx000003dhuraag")
    assert pasted.ids == (ACME,)
    [conversion] = pasted.conversions
    assert conversion.reading is Reading.CASE_REPAIRED
    assert conversion.typed == "001xx000003dhuraag"


def test_an_18_character_id_with_a_wrong_suffix_is_kept_as_typed():
    pasted = extract_salesforce_ids("0015500001WO1ZiABL")
    assert pasted.ids == ("0015500001WO1ZiABL",)
    assert pasted.conversions == ()


def test_one_id_pasted_in_several_forms_counts_once():
    pasted = extract_salesforce_ids(
        f"001xx000003DHur\n{ACME}\n001xx000003dhuraag\n"
        f"https://x.lightning.force.com/lightning/r/Account/{ACME}/view"
    )
    assert pasted.ids == (ACME,)
    assert pasted.as_pasted == ("001xx000003DHur",)
    assert pasted.repeats == 3
    assert [c.typed for c in pasted.conversions] == ["001xx000003DHur", "001xx000003dhuraag"]


def test_words_of_15_letters_are_not_mistaken_for_ids():
    pasted = extract_salesforce_ids(f"Internationally\n{ACME}")
    assert pasted.ids == (ACME,)
    assert ignored_values(pasted) == ["Internationally"]


# --- What is not an ID ------------------------------------------------------------------------


def test_an_email_and_a_total_row_are_ignored_and_reported():
    pasted = extract_salesforce_ids(f"{ACME}\nbilling@acme.example\n{GLOBEX}\nTotal 250\n")
    assert pasted.ids == (ACME, GLOBEX)
    assert ignored_values(pasted) == ["billing@acme.example", "Total 250"]


def test_ignored_values_keep_their_order_and_count_repeats():
    pasted = extract_customer_ids(f"n/a\n{CUSTOMER}\nTBD\nn/a\nn/a\n")
    assert pasted.ignored == (Ignored("n/a", 3), Ignored("TBD", 1))


def test_a_word_beside_an_id_in_one_cell_is_ignored_on_its_own():
    pasted = extract_salesforce_ids(f"ID: {ACME} (Acme)")
    assert pasted.ids == (ACME,)
    assert ignored_values(pasted) == ["ID", "Acme"]


def test_cells_without_a_letter_or_digit_carry_nothing():
    pasted = extract_salesforce_ids(f"| Account ID |\n|---|\n| {ACME} |\n[\n]\n—")
    assert pasted.ids == (ACME,)
    assert ignored_values(pasted) == ["Account ID"]


@given(st.text())
def test_extraction_never_fails_and_keeps_each_id_once(text):
    for extract in (extract_salesforce_ids, extract_customer_ids):
        pasted = extract(text)
        assert len(set(pasted.ids)) == len(pasted.ids) == len(pasted.as_pasted)
        assert len({item.value for item in pasted.ignored}) == len(pasted.ignored)
        # What is redisplayed (one ID per line, as pasted) reads back the same.
        assert extract("\n".join(pasted.as_pasted)).ids == pasted.ids


@given(st.lists(st.uuids(), max_size=20), st.sampled_from(["\n", ",", "\t", " ; ", "|"]))
def test_uuids_come_back_in_order_whatever_the_separator(ids, separator):
    text = separator.join(str(i).upper() for i in ids)
    assert extract_customer_ids(text).ids == tuple(dict.fromkeys(str(i) for i in ids))


# --- The form ---------------------------------------------------------------------------------


def salesforce_ids(count: int) -> list[str]:
    return [to_18(f"001Dn{n:010d}") for n in range(count)]


def test_the_form_searches_the_ids_and_exposes_what_it_ignored():
    form = CustomerFilterForm(
        {
            "salesforce_account_ids": "Account ID\n001xx000003DHur\nTotal 1",
            "customer_ids": f"Customer\n{CUSTOMER.upper()}",
        }
    )
    assert form.is_valid(), form.errors
    assert form.query().salesforce_account_ids == (ACME,)
    assert form.query().customer_ids == (CUSTOMER,)
    assert form.ignored_values == [
        ("Salesforce account IDs", (Ignored("Account ID", 1), Ignored("Total 1", 1))),
        ("Customer IDs", (Ignored("Customer", 1),)),
    ]
    assert form.pasted["salesforce_account_ids"].conversions[0].typed == "001xx000003DHur"


def test_a_thousand_ids_after_extraction_are_accepted():
    # A report with a header, a total row and a second column: 1,002 rows, 1,000 IDs.
    rows = [f"{i}\tAcme" for i in salesforce_ids(MAX_PASTED_IDS)]
    text = "\n".join(["Account ID\tName", *rows, "Total\t1000"])
    form = CustomerFilterForm({"salesforce_account_ids": text})
    assert form.is_valid(), form.errors
    assert len(form.cleaned_data["salesforce_account_ids"]) == MAX_PASTED_IDS


def test_duplicates_do_not_count_towards_the_limit():
    ids = salesforce_ids(MAX_PASTED_IDS)
    text = "\n".join([*ids, *(i[:15] for i in ids)])
    assert CustomerFilterForm({"salesforce_account_ids": text}).is_valid()


def test_1001_ids_after_extraction_are_a_form_error():
    text = "Account ID\n" + "\n".join(salesforce_ids(MAX_PASTED_IDS + 1))
    form = CustomerFilterForm({"salesforce_account_ids": text})
    assert not form.is_valid()
    assert form.errors["salesforce_account_ids"] == [
        "1,001 Salesforce account IDs were pasted; search at most 1,000 at a time."
    ]


@pytest.mark.parametrize(
    ("box", "text", "message"),
    [
        (
            "salesforce_account_ids",
            "Account ID\nTotal 250",
            "No Salesforce account ID found in “Account ID”, “Total 250”.",
        ),
        (
            "customer_ids",
            "not-a-uuid",
            "No Metronome customer ID found in “not-a-uuid”.",
        ),
        ("customer_ids", "[ ]", "No Metronome customer ID found."),
    ],
)
def test_a_box_with_nothing_usable_is_a_form_error_naming_what_it_held(box, text, message):
    form = CustomerFilterForm({box: text})
    assert not form.is_valid()
    [error] = form.errors[box]
    assert error.startswith(message)


def test_an_empty_box_is_no_filter_and_no_error():
    form = CustomerFilterForm({"salesforce_account_ids": " \n\t", "customer_ids": ""})
    assert form.is_valid()
    assert form.query().salesforce_account_ids == form.query().customer_ids == ()
    assert form.ignored_values == []


def test_the_box_redisplays_the_ids_one_per_line_as_pasted_then_what_it_ignored():
    form = CustomerFilterForm(
        {"salesforce_account_ids": f"Account ID,001xx000003DHur;{GLOBEX}", "customer_ids": "x"}
    )
    assert f">\n001xx000003DHur\n{GLOBEX}\nAccount ID</textarea>" in str(
        form["salesforce_account_ids"]
    )
    # With no ID in it, the box keeps its text so it can be corrected.
    assert ">\nx</textarea>" in str(form["customer_ids"])


# --- The paste compacted, for links and stored searches ----------------------------------------


def test_the_compacted_paste_keeps_the_ids_as_pasted_and_every_ignored_value_with_its_count():
    text = (
        'Account ID\tName\n001xx000003DHur\t"Acme, Inc"\n'
        f'{GLOBEX.lower()}\tGlobex\n"say ""hi""; ok"\tTotal\nTotal'
    )
    pasted = extract_salesforce_ids(text)

    compact = pasted.as_text()

    assert compact == (
        f'001xx000003DHur,{GLOBEX.lower()},Account ID,Name,"Acme, Inc",Globex,'
        '"say ""hi""; ok",Total,Total'
    )
    assert extract_salesforce_ids(compact) == PastedIds(
        ids=pasted.ids,
        as_pasted=pasted.as_pasted,
        ignored=pasted.ignored,
        conversions=pasted.conversions,
    )


def test_a_quoted_cell_holding_a_list_of_ids_finds_each_of_them():
    pasted = extract_salesforce_ids(f'Accounts\n"{ACME}, {GLOBEX};"')
    assert pasted.ids == (ACME, GLOBEX)
    assert [item.value for item in pasted.ignored] == ["Accounts"]


def test_every_distinct_pasted_form_of_an_id_is_kept():
    pasted = extract_salesforce_ids(f"001xx000003DHur\n{ACME.lower()}")
    assert pasted.as_text() == f"001xx000003DHur,{ACME.lower()}"
    assert extract_salesforce_ids(pasted.as_text()).conversions == pasted.conversions


_PIECES = st.sampled_from(
    [
        ACME,
        GLOBEX[:15],
        GLOBEX.lower(),
        CUSTOMER.upper(),
        CUSTOMER,
        f"{ACME}, {GLOBEX[:15]}",  # quoted, one cell holding two IDs
        "Account ID",
        "Acme, Inc",
        'a "b"',
        "Total 3",
        "x|y",
        "https://acme.lightning.force.com/lightning/r/Account/001xx000003DHur/view",
    ]
)
_SEPARATORS = st.sampled_from(["\n", "\t", ",", ";", " ", "|", "\r\n"])


@given(st.lists(st.tuples(_PIECES, _SEPARATORS, st.booleans()), max_size=12))
def test_extracting_the_compacted_paste_gives_the_same_ids_forms_ignored_values_and_repeats(
    parts,
):
    text = "".join(
        ('"' + piece.replace('"', '""') + '"' if quoted else piece) + separator
        for piece, separator, quoted in parts
    )
    for extract in (extract_salesforce_ids, extract_customer_ids):
        pasted = extract(text)
        for separator in (",", "\n"):  # a link's, a redisplayed box's
            again = extract(pasted.as_text(separator))
            assert (again.ids, again.as_pasted, again.ignored, again.repeats) == (
                pasted.ids,
                pasted.as_pasted,
                pasted.ignored,
                pasted.repeats,
            )
            assert set(again.conversions) == set(pasted.conversions)


def test_a_redisplayed_box_keeps_what_it_ignored_so_searching_it_again_reports_the_same():
    text = f"Account ID\tName\n001xx000003DHur\tAcme\n{GLOBEX}\tGlobex\nTotal 2"
    first = CustomerFilterForm({"salesforce_account_ids": text})
    assert first.is_valid(), first.errors

    shown = first["salesforce_account_ids"].value()
    redisplayed = first.fields["salesforce_account_ids"].prepare_value(shown)
    again = CustomerFilterForm({"salesforce_account_ids": redisplayed})

    assert redisplayed.splitlines()[:2] == ["001xx000003DHur", GLOBEX]
    assert again.is_valid(), again.errors
    assert again.query() == first.query()
    assert again.ignored_values == first.ignored_values
    assert [value for value, _ in first.ignored_values] == ["Salesforce account IDs"]


def test_the_form_gives_the_compacted_boxes_and_the_salesforce_ids_as_pasted():
    form = CustomerFilterForm(
        {"salesforce_account_ids": f"Account ID\n001xx000003DHur\n{GLOBEX}", "customer_ids": ""}
    )
    assert form.is_valid(), form.errors
    assert form.pasted_text == {"salesforce_account_ids": f"001xx000003DHur,{GLOBEX},Account ID"}
    assert [(s.typed, s.key) for s in form.salesforce_ids] == [
        ("001xx000003DHur", ACME),
        (GLOBEX, GLOBEX),
    ]
    assert form.ignored_total == 1


@pytest.mark.parametrize(
    ("pasted", "shown"),
    [
        ("Acme (EU)", ["Acme (EU)"]),  # a whole cell, as typed
        (f"{ACME} <b>x</b>", ["<b>x</b>"]),  # its brackets belong to it
        (f"{ACME} (Acme),", ["Acme"]),  # a pair around all of it, and a comma after
        (f"{ACME} “Acme”.", ["Acme"]),
        (f"{ACME} f(x)", ["f(x)"]),
    ],
)
def test_ignored_values_are_shown_as_pasted_less_a_pair_around_them(pasted, shown):
    assert ignored_values(extract_salesforce_ids(pasted)) == shown


def _unwrap_in_turns(word: str) -> str:
    """How words were unwrapped before: wrapping stripped both ends, then trailing
    punctuation, in turns until nothing changed (a copy of the word each turn)."""
    previous = None
    while word != previous:
        previous = word
        word = word.strip(pasted._WRAPPING).rstrip(pasted._TRAILING)
    return word


@given(st.text(alphabet=pasted._WRAPPING + pasted._TRAILING + "a1-,;", max_size=30))
def test_unwrapping_in_one_pass_is_unwrapping_in_turns(word):
    assert pasted._unwrap(word) == _unwrap_in_turns(word)


def test_a_word_of_brackets_and_dots_is_unwrapped_whole():
    assert pasted._unwrap("x" + ").(" * 3 + ").") == "x"
    assert extract_customer_ids(f"({CUSTOMER}).)." + ")." * 1000).ids == (CUSTOMER,)
