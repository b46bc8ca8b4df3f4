"""The table's rows as customers/display.py prepares them, and the table as the page shows
them: precomputed strings, capped so that hostile data cannot blow up the page."""

import re

from customers import display
from customers.metronome import Customer
from customers.sandbox import SandboxAPI, SandboxTransport, generate_customers


def wire_customer(**changes) -> dict:
    customer = dict(next(iter(generate_customers(1))))
    customer.update(changes)
    return customer


def row_of(**changes) -> display.CustomerRow:
    customer = Customer.from_wire(wire_customer(**changes))
    return display.customer_row(
        customer, "/customers/", "https://app.example", "https://sf.example"
    )


def test_dates_are_shown_as_day_month_year_in_utc():
    row = row_of(
        created_at="2024-03-01T23:30:00-05:00",
        updated_at="2025-12-09T00:00:00Z",
        archived_at="2026-01-31T10:00:00+00:00",
        current_billable_status={"value": "billable", "effective_at": "2023-07-04T12:00:00Z"},
    )
    assert (row.created, row.updated, row.archived) == ("2 Mar 2024", "9 Dec 2025", "31 Jan 2026")
    assert (row.billable, row.billable_label, row.billable_since) == (
        "billable",
        "Billable",
        "4 Jul 2023",
    )


def test_a_customer_without_billable_status_or_archive_date_says_so():
    row = row_of(current_billable_status=None, archived_at=None)
    assert (row.billable, row.billable_label, row.billable_since, row.archived) == (
        "unset",
        "Not set",
        "",
        "",
    )


def test_the_first_alias_shows_and_the_rest_count_behind_plus_n():
    row = row_of(ingest_aliases=["a", "b", "c"], external_id="a")
    assert (row.first_alias, row.more_aliases, row.more_count) == ("a", ("b", "c"), 2)


def test_an_external_id_that_is_no_alias_is_listed_with_them():
    row = row_of(ingest_aliases=[], external_id="ext-1")
    assert (row.first_alias, row.more_count) == ("ext-1", 0)


def test_links_escape_the_ids_they_carry():
    row = row_of(id="a/b?c", customer_config={"salesforce_account_id": "001 x#"})
    assert row.metronome_url == "https://app.example/customers/a%2Fb%3Fc"
    assert row.salesforce_url == "https://sf.example/lightning/r/Account/001%20x%23/view"


def test_without_a_salesforce_base_url_the_salesforce_id_is_no_link():
    customer = Customer.from_wire(wire_customer(customer_config={"salesforce_account_id": "001"}))
    row = display.customer_row(customer, "/customers/", "https://app.example", "")
    assert (row.salesforce_id, row.salesforce_url) == ("001", "")


def test_hostile_lengths_are_capped_for_display():
    row = row_of(
        name="N" * 100_000,
        ingest_aliases=[f"alias-{i}-" + "x" * 1000 for i in range(5000)],
        external_id="alias-0-" + "x" * 1000,
    )
    assert len(row.name) == display.MAX_SHOWN_CHARS and row.name.endswith("…")
    assert len(row.more_aliases) == display.MAX_SHOWN_ALIASES
    assert row.more_count == 4999  # the count stays true
    assert all(len(alias) == display.MAX_SHOWN_CHARS for alias in row.more_aliases)


def test_the_table_shows_billable_since_as_text_and_names_the_customer_in_its_links(
    support_client, install_client
):
    customer = wire_customer(
        name="Acme <b>Corp</b>",
        current_billable_status={"value": "unbillable", "effective_at": "2023-07-04T12:00:00Z"},
        custom_fields={"plan": "gold-secret-plan"},
    )
    install_client(SandboxTransport(SandboxAPI([customer])))
    body = support_client.get("/customers/").content.decode()
    assert (
        '<span class="badge badge-unbillable">Unbillable</span> <small>since 4 Jul 2023</small>'
        in body
    )
    # The ID's link to Metronome is described once for the table, not once a row.
    assert 'target="_blank" aria-describedby="new-tab"><code>' in body
    assert '<span id="new-tab" hidden>Opens the customer in Metronome' in body
    assert 'aria-label="Copy ID of Acme &lt;b&gt;Corp&lt;/b&gt;"' in body
    assert f'<a href="/customers/{customer["id"]}/">Acme &lt;b&gt;Corp&lt;/b&gt;</a>' in body
    # Custom fields are on the customer view, not in the table.
    assert "gold-secret-plan" not in body


def test_a_hostile_customer_cannot_blow_up_the_page(support_client, install_client):
    # Under the client's 16 MB answer limit, far over what a row may show.
    aliases = [f"{i}-" + "y" * 20_000 for i in range(200)]
    customer = wire_customer(name="N" * 1_000_000, ingest_aliases=aliases, external_id=aliases[0])
    install_client(SandboxTransport(SandboxAPI([customer])))
    response = support_client.get("/customers/")
    assert response.status_code == 200
    assert len(response.content) < 30_000
    assert re.search(r"\+199<span", response.content.decode())


def test_a_name_with_a_direction_override_is_isolated_in_the_table_the_heading_and_the_title(
    support_client, install_client
):
    # U+202E reverses what follows it up to the end of its paragraph: the window's title
    # read "sremotsuc emonorteM · ..." and a heading took its badge along.
    name = "Acme \u202eevil"
    customer = wire_customer(name=name)
    install_client(SandboxTransport(SandboxAPI([customer])))
    isolated = "\u2068Acme evil\u2069"  # the override itself gone

    table = support_client.get("/customers/").content.decode()
    view = support_client.get(f"/customers/{customer['id']}/").content.decode()

    assert f">{isolated}</a>" in table
    assert re.search(rf"<title>{isolated}", view)
    assert f'<h1 id="customer-name">{isolated}</h1>' in view
    # A pop of its own cannot end the isolate early and let an override run on.
    assert display.isolated("\u2069\u202eevil") == "\u2068evil\u2069"
    # An ordinary name is left as it is.
    assert display.isolated("Ørsted A/S") == "Ørsted A/S"
    assert row_of(name="Acme").name == "Acme"
