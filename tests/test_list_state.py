"""The customers page's state, through the page: one word for each filter value, URLs without
empty parameters, the sort kept by every control, the billable multi-select, exact matches
the toggle hides, the pasted IDs' "matched as" column and paste order, and the match report's
own CSV."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from customers import wiring
from customers.index import sync as index_sync
from customers.models import ExportAudit, SyncRun
from customers.sandbox import SandboxAPI, SandboxTransport
from customers.sandbox.api import Faults
from tests.factories import CUSTOMERS, customer_id, install_metronome, shown, wire_customer

LIST = reverse("customers:list")
EXPORT = reverse("customers:export")
REPORT = reverse("customers:export_report")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def indexed(db, install_client) -> SandboxAPI:
    api = SandboxAPI(CUSTOMERS)
    install_client(SandboxTransport(api))
    run = index_sync.sync(wiring.get_client())
    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error
    return api


def user_in(group: str) -> Client:
    user = User.objects.create_user(f"{group.lower()}-person")
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


# --- One word for each value ------------------------------------------------------------------


@pytest.mark.parametrize("word", ["true", "yes", "1", "on"])
def test_billable_true_means_billable_as_true_means_yes_everywhere(finance_client, indexed, word):
    response = finance_client.get(LIST, {"q": "acme", "billable": word})

    assert response.status_code == 200
    assert shown(response) == ["Northwind Acme"]


def test_billable_false_means_unbillable(finance_client, indexed):
    assert shown(finance_client.get(LIST, {"billable": "false"})) == ["HR Juniper Partners"]


@pytest.mark.parametrize(("word", "ticked"), [("true", True), ("yes", True), ("false", False)])
def test_the_no_salesforce_id_box_is_ticked_only_by_a_yes(finance_client, indexed, word, ticked):
    html = finance_client.get(LIST, {"no_salesforce_id": word}).content.decode()

    box = re.search(r'<input type="checkbox" name="no_salesforce_id"[^>]*>', html)
    assert box is not None
    assert (" checked" in box[0]) is ticked


def test_a_yes_no_parameter_refuses_a_word_that_is_neither(finance_client, indexed):
    html = finance_client.get(LIST, {"no_salesforce_id": "banana"}).content.decode()

    assert "Check the filters." in html
    assert "Use true or false." in html


def test_billable_takes_several_statuses_at_once(finance_client, indexed):
    response = finance_client.get(LIST, {"billable": ["unbillable", "not_set"]})

    assert shown(response) == [
        "Acme Corp",
        "HR Juniper Partners",
        "Société Générale",
        "株式会社 佐藤",
    ]
    html = response.content.decode()
    # Each box stays checked, and the links keep both values.
    assert re.search(r'name="billable" value="unbillable"[^>]*checked', html)
    assert re.search(r'name="billable" value="not_set"[^>]*checked', html)
    assert re.search(r'name="billable" value="billable"[^>]*>', html)
    assert not re.search(r'name="billable" value="billable"[^>]*checked', html)
    assert "billable=unbillable&amp;billable=not_set" in html


def test_the_billable_boxes_apply_at_once_like_the_toggle(finance_client, indexed):
    html = finance_client.get(LIST).content.decode()

    boxes = re.findall(r'<input class="autosubmit" type="checkbox" name="billable"[^>]*>', html)
    assert len(boxes) == 3


# --- URLs without empty parameters --------------------------------------------------------------


def test_a_submitted_search_without_javascript_lands_on_a_url_without_empty_parameters(
    finance_client, indexed
):
    submitted = {
        "q": "acme",
        "salesforce_account_ids": "",
        "customer_ids": "",
        "ingest_alias": "",
        "only_archived": "false",
        "limit": "50",
        "created_from": "",
        "custom_field": "",
        "sort": "",
    }
    response = finance_client.get(LIST, submitted)

    assert response.status_code == 303
    assert response["Location"] == "/customers/?q=acme"


def test_a_submitted_search_with_htmx_pushes_a_url_without_empty_parameters(
    finance_client, indexed
):
    response = finance_client.get(
        LIST, {"q": "acme", "customer_ids": "", "sort": "-name", "limit": "10"}, headers=HTMX
    )

    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/customers/?q=acme&sort=-name&limit=10"
    assert shown(response) == ["Northwind Acme", "Acme Corp"]


def test_a_submitted_search_that_fails_still_pushes_a_url_without_empty_parameters(
    finance_client, indexed
):
    indexed.faults = Faults(fail_every=1, fail_status=503)

    response = finance_client.get(
        LIST, {"ingest_alias": "acct_1", "customer_ids": "", "q": ""}, headers=HTMX
    )

    assert "Could not load customers." in response.content.decode()
    assert response["HX-Push-Url"] == "/customers/?ingest_alias=acct_1"


def test_a_submitted_search_refused_by_validation_pushes_a_url_without_empty_parameters(
    finance_client, indexed
):
    response = finance_client.get(
        LIST, {"q": "acme", "customer_ids": "not-an-id !!!", "ingest_alias": ""}, headers=HTMX
    )

    assert response.status_code == 200 and "Check the filters." in response.content.decode()
    assert response["HX-Push-Url"] == "/customers/?q=acme&customer_ids=not-an-id+%21%21%21"


# --- The sort is kept --------------------------------------------------------------------------


def test_every_results_swap_refreshes_the_forms_sort_so_search_and_page_size_keep_it(
    finance_client, indexed
):
    # A header click swaps only the results: they carry the form's sort out of band.
    fragment = finance_client.get(LIST, {"q": "acme", "sort": "-name"}, headers=HTMX)
    html = fragment.content.decode()
    assert re.search(
        r'<input type="hidden" id="sort-state" name="sort" value="-name" hx-swap-oob="true">', html
    )
    page = finance_client.get(LIST, {"q": "acme", "sort": "created"}).content.decode()
    form = page[
        page.index('<form id="filters"') : page.index("</form>", page.index('id="filters"'))
    ]
    assert 'id="sort-state" name="sort" value="created"' in form


# --- Exact matches the toggle hides, and customers newer than the index -------------------------


def test_an_exact_name_of_an_archived_customer_is_shown_labelled_on_the_active_view(
    finance_client, indexed
):
    response = finance_client.get(LIST, {"q": "acme archived"})

    assert shown(response)[0] == "Acme Archived"
    html = response.content.decode()
    assert '<span class="badge badge-stale">archived</span>' in html
    assert "exact match of the search that the active customers view would not show" in html


def test_an_archived_exact_match_is_not_counted_among_the_active_views_rows(
    finance_client, db, install_client
):
    customers = [
        wire_customer("Tidewater", archived_at="2025-01-01T00:00:00Z"),
        *(wire_customer(f"Tidewater {kind}") for kind in ("Labs", "Inc", "Co")),
    ]
    install_metronome(install_client, customers)
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED

    first = finance_client.get(LIST, {"q": "tidewater", "limit": "2"})
    first_html = first.content.decode()
    next_url = re.search(r'<a rel="next"[^>]* href="([^"]+)"', first_html) or re.search(
        r'<a href="([^"]+)"[^>]* rel="next"', first_html
    )
    assert next_url is not None
    second = finance_client.get(next_url[1].replace("&amp;", "&"))

    assert shown(first)[0] == "Tidewater"
    assert len(shown(first)) == 3
    # The same total on both pages, rows numbered once: the exact match is beside them.
    assert "Rows 1–2 of 3" in first_html
    assert "not counted in its rows or its CSV" in first_html
    # The count beside the rows says so too, where the eye checks it against them.
    assert "and 1 exact match above, not counted" in first_html
    assert "Rows 3–3 of 3" in second.content.decode()
    assert "exact match above" not in second.content.decode()
    assert len(shown(second)) == 1


def test_a_page_past_the_end_says_so_and_leads_to_the_last(finance_client, indexed):
    response = finance_client.get(LIST, {"q": "acme", "limit": "1", "page": "999"})

    html = response.content.decode()
    assert response.status_code == 200
    assert shown(response) == []
    assert "Page 999 is past the last page of this search." in html
    assert "No active customers match" not in html
    last = re.search(r'<a href="([^"]+)"[^>]*>go to the last page</a>', html)
    assert last is not None
    last_page = finance_client.get(last[1].replace("&amp;", "&"))
    assert len(shown(last_page)) == 1
    assert "past the last page" not in last_page.content.decode()
    # No page links around a page that does not exist.
    assert 'rel="prev"' not in html and 'aria-label="Pages"' not in html


def test_a_page_past_the_end_of_a_capped_total_says_so_with_no_links_past_it(
    finance_client, indexed, monkeypatch
):
    monkeypatch.setattr("customers.index.search.TOTAL_CAP", 1)
    # Sorted, not searched: a sort counts at most TOTAL_CAP + 1 matches.
    response = finance_client.get(LIST, {"sort": "name", "limit": "1", "page": "50"})

    html = response.content.decode()
    assert "Page 50 is past the last page of this search." in html
    assert "More than 1 active customers match:" in html
    assert "go to the first page" in html and "go to the last page" not in html
    assert 'rel="prev"' not in html and 'aria-label="Page 49"' not in html


def test_an_exact_metronome_id_of_an_archived_customer_is_shown_on_the_active_view(
    finance_client, indexed
):
    archived_id = customer_id("Acme Archived")

    response = finance_client.get(LIST, {"q": archived_id})

    assert shown(response) == ["Acme Archived"]
    assert "No active customers match" not in response.content.decode()


def test_an_exact_salesforce_id_of_an_archived_customer_is_shown_on_the_active_view(
    finance_client, db, install_client
):
    archived = wire_customer(
        "Gone Ltd",
        archived_at="2025-01-01T00:00:00Z",
        customer_config={"salesforce_account_id": "001Dn00000GoNeAAA"[:15]},
    )
    install_metronome(install_client, [*CUSTOMERS, archived])
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED

    assert shown(finance_client.get(LIST, {"q": "001Dn00000GoNeA"})) == ["Gone Ltd"]


def test_an_exact_id_finds_a_customer_created_after_the_last_sync(
    finance_client, indexed, install_client
):
    newcomer = wire_customer(
        "Brand New GmbH", customer_config={"salesforce_account_id": "001Dn00000NeWxY"}
    )
    install_metronome(install_client, [*CUSTOMERS, newcomer])

    by_id = finance_client.get(LIST, {"q": newcomer["id"]})
    by_salesforce_id = finance_client.get(LIST, {"q": "001Dn00000NeWxY"})

    assert shown(by_id) == shown(by_salesforce_id) == ["Brand New GmbH"]
    assert "new since the index was updated" in by_id.content.decode()


def test_two_salesforce_ids_differing_only_in_case_are_two_accounts(
    finance_client, db, install_client
):
    lower = wire_customer(
        "Lower Case Inc", customer_config={"salesforce_account_id": "001dn00000abcde"}
    )
    upper = wire_customer(
        "Upper Case Inc", customer_config={"salesforce_account_id": "001DN00000ABCDE"}
    )
    install_metronome(install_client, [lower, upper])
    assert index_sync.sync(wiring.get_client()).outcome == SyncRun.Outcome.SUCCEEDED

    assert shown(finance_client.get(LIST, {"q": "001dn00000abcde"})) == ["Lower Case Inc"]
    assert shown(finance_client.get(LIST, {"q": "001DN00000ABCDE"})) == ["Upper Case Inc"]


# --- Pasted IDs: matched as, paste order, the report with index filters, its CSV ---------------


def pasted(*names: str) -> str:
    return "\n".join(customer_id(name) for name in names)


def test_pasted_ids_show_which_pasted_id_each_row_matched_and_can_keep_paste_order(
    finance_client, indexed
):
    ids = pasted("Juniper HR Ltd.", "Acme Corp", "Northwind Acme")

    creation = finance_client.get(LIST, {"customer_ids": ids})
    in_paste_order = finance_client.get(LIST, {"customer_ids": ids, "order": "pasted"})

    assert shown(creation) == ["Acme Corp", "Northwind Acme", "Juniper HR Ltd."]
    assert shown(in_paste_order) == ["Juniper HR Ltd.", "Acme Corp", "Northwind Acme"]
    html = in_paste_order.content.decode()
    assert '<th scope="col">Matched as</th>' in html
    assert re.findall(r'<td data-matched-as="([^"]+)">', html) == [
        customer_id("Juniper HR Ltd."),
        customer_id("Acme Corp"),
        customer_id("Northwind Acme"),
    ]


def csv_names(response) -> list[str]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return [row["name"] for row in csv.DictReader(io.StringIO(body))]


def test_the_csv_of_a_search_in_paste_order_is_in_paste_order(finance_client, indexed):
    ids = pasted("Juniper HR Ltd.", "Acme Corp", "Northwind Acme")
    page = finance_client.get(LIST, {"customer_ids": ids, "order": "pasted"})
    download = re.search(r'id="download-csv" href="([^"]*)"', page.content.decode())
    assert download and "order=pasted" in download.group(1)

    in_file = csv_names(finance_client.get(download.group(1).replace("&amp;", "&")))

    assert in_file == shown(page) == ["Juniper HR Ltd.", "Acme Corp", "Northwind Acme"]
    creation = csv_names(finance_client.get(EXPORT, {"customer_ids": ids}))
    assert creation == ["Acme Corp", "Northwind Acme", "Juniper HR Ltd."]


def test_a_stored_search_keeps_paste_order_in_its_links_and_its_csv(finance_client, indexed):
    # Too many IDs for a link: stored, under a key.
    unknown = [str(uuid.UUID(int=n)) for n in range(1, 201)]
    ids = pasted("Juniper HR Ltd.", "Acme Corp", "Northwind Acme") + "\n" + "\n".join(unknown)
    stored = finance_client.post(LIST, {"customer_ids": ids, "order": "pasted", "limit": "10"})
    assert stored.status_code == 303
    page = finance_client.get(stored["Location"])
    html = page.content.decode().replace("&amp;", "&")
    download = re.search(r'id="download-csv" href="([^"]*)"', html)

    assert shown(page) == ["Juniper HR Ltd.", "Acme Corp", "Northwind Acme"]
    assert download and csv_names(finance_client.get(download.group(1))) == shown(page)

    # The report's order links switch the stored search's order, page and CSV alike.
    creation_link = order_link(page, "Creation order")
    assert "search=" in creation_link
    creation = finance_client.get(creation_link)
    assert shown(creation) == ["Acme Corp", "Northwind Acme", "Juniper HR Ltd."]
    assert current_order(creation) == "Creation order"
    assert csv_names(finance_client.get(download_link(creation))) == shown(creation)
    back = finance_client.get(order_link(creation, "Paste order"))
    assert shown(back) == ["Juniper HR Ltd.", "Acme Corp", "Northwind Acme"]


def order_link(response, label: str) -> str:
    html = response.content.decode().replace("&amp;", "&")
    found = re.search(rf'<a class="button" href="([^"]*)"[^>]*>{label}</a>', html)
    assert found, label
    return found.group(1)


def current_order(response) -> str:
    found = re.search(r'aria-current="true">([^<]+)</a>', response.content.decode())
    return found.group(1) if found else ""


def download_link(response) -> str:
    html = response.content.decode().replace("&amp;", "&")
    found = re.search(r'id="download-csv" href="([^"]*)"', html)
    assert found
    return found.group(1)


def test_the_match_report_offers_both_orders_and_the_form_keeps_the_one_chosen(
    finance_client, indexed
):
    ids = pasted("Juniper HR Ltd.", "Acme Corp", "Northwind Acme")
    page = finance_client.get(LIST, {"customer_ids": ids})
    assert current_order(page) == "Creation order"
    # Without a stored key, creation order is the default and no parameter at all (a saved
    # view clicked back to it is not "modified").
    assert "order=" not in order_link(page, "Creation order")

    in_paste_order = finance_client.get(order_link(page, "Paste order"), HTTP_HX_REQUEST="true")
    html = in_paste_order.content.decode()
    assert shown(in_paste_order) == ["Juniper HR Ltd.", "Acme Corp", "Northwind Acme"]
    assert current_order(in_paste_order) == "Paste order"
    # Refreshed out of band, so the next search from the form keeps paste order.
    assert (
        '<input type="hidden" id="order-state" name="order" value="pasted" hx-swap-oob="true">'
        in html
    )
    # A search without pasted IDs has no order to keep, in the form or its links.
    by_name = finance_client.get(LIST, {"q": "acme", "order": "pasted"}, HTTP_HX_REQUEST="true")
    assert '<input type="hidden" id="order-state" name="order" value="" hx-swap-oob="true">' in (
        by_name.content.decode()
    )
    assert "order=" not in download_link(by_name)


def test_pasted_salesforce_ids_name_the_form_they_were_pasted_in(finance_client, indexed):
    response = finance_client.get(LIST, {"salesforce_account_ids": "001xx000003DHurAAG"})

    assert shown(response) == ["Juniper HR Ltd."]
    assert '<td data-matched-as="001xx000003DHurAAG">' in response.content.decode()


def test_chosen_columns_keep_the_matched_as_column_of_a_pasted_search(finance_client, indexed):
    # It is the search's, not a column to choose: the chosen table adds it last, as the
    # standard one does, and the phone cards have its label.
    response = finance_client.get(
        LIST, {"salesforce_account_ids": "001xx000003DHurAAG", "columns": "name,billable"}
    )

    html = response.content.decode()
    assert shown(response) == ["Juniper HR Ltd."]
    headers = re.findall(r'<th scope="col"[^>]*>(?:<a[^>]*>)?([^<]+)', html)
    assert headers == ["Name", "Billable", "Matched as"]
    assert '<td data-matched-as="001xx000003DHurAAG"><code>001xx000003DHurAAG</code></td>' in html
    labels = finance_client.get(reverse("customers:card_labels"), {"columns": "name,billable"})
    assert 'td:nth-child(3)::before { content: "Matched as"; }' in labels.content.decode()
    unpasted = finance_client.get(LIST, {"q": "juniper", "columns": "name,billable"})
    assert "Matched as" not in unpasted.content.decode()


def test_pasted_ids_with_an_index_filter_keep_the_match_report(finance_client, indexed):
    ids = pasted("Acme Corp", "Acme Archived") + "\n" + "00000000-0000-4000-8000-000000000000"

    response = finance_client.get(LIST, {"customer_ids": ids, "custom_field": "region=emea"})

    assert shown(response) == ["Acme Corp"]
    html = response.content.decode()
    assert '<strong data-count="pasted">3</strong>' in html
    assert 'data-unmatched-id="00000000-0000-4000-8000-000000000000"' in html
    assert f'data-other-state-id="{customer_id("Acme Archived")}"' in html


def narrowed(response) -> str:
    found = re.search(
        r"<div class=\"match-narrowed\" data-narrowed>(.*?)</div>", response.content.decode(), re.S
    )
    return " ".join(found.group(1).split()) if found else ""


def test_the_match_report_says_what_else_narrows_its_rows_and_links_every_match(
    finance_client, indexed
):
    ids = pasted("Acme Corp", "Juniper HR Ltd.", "Northwind Acme")
    response = finance_client.get(LIST, {"customer_ids": ids, "q": "acme", "billable": "billable"})

    assert '<strong data-count="matched">3</strong>' in response.content.decode()
    text = narrowed(response).replace("&amp;", "&")
    assert text.startswith(
        "The rows below are only the matched customers that also fit Search “acme”, "
        "Billable status “Billable”."
    )
    every = re.search(r'href="([^"]*)"[^>]*>Show every match', text)
    assert every
    # A whole page: the form's narrowing filters go too, not only the rows.
    assert "hx-get" not in every.group(0)
    assert sorted(shown(finance_client.get(every.group(1)))) == sorted(
        ["Acme Corp", "Juniper HR Ltd.", "Northwind Acme"]
    )
    # The report alone, with nothing else set, says nothing of the kind.
    assert narrowed(finance_client.get(LIST, {"customer_ids": ids})) == ""


def test_a_paste_too_long_for_a_link_offers_every_match_by_the_storing_form(
    finance_client, indexed
):
    unknown = "\n".join(f"00000000-0000-4000-8000-{n:012d}" for n in range(400))
    ids = pasted("Acme Corp", "Juniper HR Ltd.", "Northwind Acme") + "\n" + unknown
    stored = finance_client.post(LIST, {"customer_ids": ids, "q": "acme"})
    assert stored.status_code == 303 and "search=" in stored["Location"]
    page = finance_client.get(stored["Location"])
    assert sorted(shown(page)) == ["Acme Corp", "Northwind Acme"]

    form = re.search(
        r'<form class="every-match" method="post" action="([^"]+)">(.*?)</form>',
        page.content.decode(),
        re.S,
    )
    assert form and "Show every match" in form[2]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form[2]):
        fields.setdefault(name, []).append(html.unescape(value))
    assert "q" not in fields
    every = finance_client.post(form[1], fields)

    assert every.status_code == 303 and every["Location"] != stored["Location"]
    assert sorted(shown(finance_client.get(every["Location"]))) == sorted(
        ["Acme Corp", "Juniper HR Ltd.", "Northwind Acme"]
    )


def test_with_both_boxes_the_report_says_the_rows_are_the_customers_both_matched(
    finance_client, indexed
):
    both = finance_client.get(
        LIST,
        {
            "customer_ids": pasted("Acme Corp", "Juniper HR Ltd."),
            "salesforce_account_ids": "001xx000003DHurAAG",
        },
    )
    assert shown(both) == ["Juniper HR Ltd."]
    assert (
        narrowed(both) == "The rows below are only the matched customers that both boxes matched."
    )


def test_a_typo_search_beside_other_filters_says_it_looked_among_them(finance_client, indexed):
    response = finance_client.get(LIST, {"q": "acmee", "customer_ids": pasted("Acme Corp")})
    assert "Nothing that fits the other filters matched “acmee” exactly" in (
        response.content.decode()
    )
    alone = finance_client.get(LIST, {"q": "acmee"}).content.decode()
    assert "Nothing matched “acmee” exactly" in alone


def test_in_all_the_match_report_counts_archived_customers_as_matched(finance_client, indexed):
    # Archived first: the matched IDs keep the pasted order, as in every other view.
    ids = pasted("Acme Archived", "Acme Corp") + "\n" + "00000000-0000-4000-8000-000000000000"

    response = finance_client.get(LIST, {"customer_ids": ids, "only_archived": "all"})

    assert sorted(shown(response)) == ["Acme Archived", "Acme Corp"]
    html = response.content.decode()
    # Both rows shown are matched; nothing is "in the other state", with a switch to it.
    assert '<strong data-count="matched">2</strong>' in html
    assert "2 matched customers, 1 of them archived." in html
    assert 'data-count="other-state"' not in html
    assert "switch to Archived" not in html
    matched = re.findall(r'data-matched-id="([^"]+)"', html)
    assert matched == [customer_id("Acme Archived"), customer_id("Acme Corp")]
    assert 'data-unmatched-id="00000000-0000-4000-8000-000000000000"' in html
    assert 'data-only-archived="all"' in html


def test_the_match_report_is_its_own_csv_audited_and_neutralised(finance_client, indexed):
    ids = pasted("Acme Corp", "Acme Archived")
    text = f"{ids}\n00000000-0000-4000-8000-000000000000\n=SUM"
    page = finance_client.get(LIST, {"customer_ids": text}).content.decode()
    link = re.search(r'id="download-report-csv" href="([^"]+)"', page)
    assert link is not None

    response = finance_client.get(link[1].replace("&amp;", "&"))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(
        'attachment; filename="metronome-match-report'
    )
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["pasted_id"], r["customer_name"], r["archived"], r["outcome"]) for r in rows] == [
        (customer_id("Acme Corp"), "Acme Corp", "false", "matched"),
        (customer_id("Acme Archived"), "Acme Archived", "true", "matched"),
        ("00000000-0000-4000-8000-000000000000", "", "", "not found"),
        ("'=SUM", "", "", "ignored"),
    ]
    assert rows[0]["matched_as"] == customer_id("Acme Corp")
    written = io.StringIO()  # the file is exactly what the csv module writes for its rows
    csv.writer(written, lineterminator="\r\n").writerows(
        [list(rows[0]), *[list(row.values()) for row in rows]]
    )
    assert body == written.getvalue()
    audit = ExportAudit.objects.get()
    assert (audit.outcome, audit.rows_written) == (ExportAudit.Outcome.COMPLETE, 4)


def test_support_cannot_download_the_match_report_and_is_told_finance_can_export(db, indexed):
    support = user_in("Support")
    ids = pasted("Acme Corp")

    page = support.get(LIST, {"customer_ids": ids}).content.decode()

    assert "download-report-csv" not in page and "download-csv" not in page
    assert "Finance staff can download this list as CSV" in page
    assert support.get(REPORT, {"customer_ids": ids}).status_code == 403
    assert not ExportAudit.objects.exists()
