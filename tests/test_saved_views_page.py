"""Saved views and chosen columns on the customers page: the table, its links, the CSV, the
list of views, "modified", the column chooser and the phone labels."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from customers import saved_view_rules as rules
from customers.models import SavedView

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("indexed")]

LIST = "/customers/"
HOSTILE = "<script>alert(1)</script>"


def person(username: str, group: str) -> User:
    user = User.objects.create_user(username)
    user.groups.add(Group.objects.get(name=group))
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def fiona() -> User:
    return person("fiona", "Finance")


def opened_view(owner: User, name: str, state: str) -> tuple[SavedView, Client, str]:
    """A private view of `state`, and its owner's client with the view's page opened."""
    view = rules.create(
        owner, name=name, shared=False, state=rules.canonical_state(QueryDict(state))
    )
    client = client_for(owner)
    return view, client, client.get(f"/customers/v/{view.slug}/", follow=True).content.decode()


def headers(html: str) -> list[str]:
    thead = re.search(r"<thead>(.*?)</thead>", html, re.S)
    assert thead is not None
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<th[^>]*>(.*?)</th>", thead[1])]


def test_chosen_columns_make_the_table_with_those_headers_in_that_order(fiona):
    html = client_for(fiona).get(LIST, {"columns": "id,name,billable,cf.region"}).content.decode()

    assert headers(html) == ["Metronome ID", "Name", "Billable", "region"]
    rows = re.findall(r"<tr data-customer-id=\"([0-9a-f-]{36})\">(.*?)</tr>", html, re.S)
    assert rows and all(row.count("<td>") == 3 for _, row in rows)
    # The first column opens the customer, whichever it is.
    opens = '<th><a href="/customers/{0}/"><code>{0}</code>'
    assert all(opens.format(id_) in row for id_, row in rows)
    assert 'href="/customers/columns.css?columns=id%2Cname%2Cbillable%2Ccf.region"' in html


def test_without_a_choice_the_standard_table_is_unchanged(fiona):
    html = client_for(fiona).get(LIST).content.decode()
    assert "customers chosen" not in html and "columns.css" not in html
    assert headers(html)[:2] == ["Name", "Metronome ID"]


def test_every_link_of_the_page_keeps_the_columns_and_the_download_has_exactly_them(fiona):
    client = client_for(fiona)
    html = client.get(LIST, {"q": "a", "limit": "2", "columns": "name,cf.region,billable"})
    body = html.content.decode()
    next_link = re.search(r'<a rel="next" href="([^"]+)"', body)
    assert next_link is not None
    assert parse_qs(urlsplit(next_link[1].replace("&amp;", "&")).query)["columns"] == [
        "name,cf.region,billable"
    ]
    download = re.search(r'id="download-csv" href="([^"]+)"', body)
    assert download is not None

    response = client.get(download[1].replace("&amp;", "&"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    # The Metronome ID comes first to join the rows back: the choice lacked it.
    assert header == ["id", "name", "custom_fields.region", "billable_status"]
    assert rows and all(len(row) == 4 for row in rows)


def test_a_support_user_opening_a_finance_view_gets_no_download(fiona):
    view = rules.create(
        fiona, name="Finance view", shared=True, state=rules.canonical_state(QueryDict("q=a"))
    )
    support = client_for(person("sam", "Support"))
    page = support.get(LIST, {"q": "a", "view": view.slug}).content.decode()
    assert "Finance view" in page and "download-csv" not in page
    assert support.get("/customers/export.csv", {"q": "a", "view": view.slug}).status_code == 403


def test_the_views_list_shows_mine_first_then_the_teams_with_names_escaped(fiona):
    other = person("olga", "Finance")
    rules.create(other, name=HOSTILE, shared=True, state=rules.canonical_state(QueryDict()))
    rules.create(fiona, name="Mine", shared=False, state=rules.canonical_state(QueryDict()))

    html = client_for(fiona).get(LIST).content.decode()

    nav = re.search(r'<nav class="saved-views".*?</nav>', html, re.S)
    assert nav is not None
    assert nav[0].index("Mine") < nav[0].index("&lt;script&gt;")
    assert HOSTILE not in html


def test_changing_a_filter_of_an_open_view_shows_modified_with_save_and_reset(fiona):
    view, client, opened = opened_view(fiona, "EMEA", "custom_field=region%3Demea&columns=name,id")
    assert "View <strong>EMEA</strong>" in opened and 'id="view-modified"' not in opened

    changed = client.get(
        LIST,
        {"custom_field": "region=apac", "columns": "name,id", "view": view.slug},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'id="view-modified"' in changed
    assert "Save changes to this view" in changed
    assert f'href="/customers/v/{view.slug}/">Reset' in changed
    save_as_new = re.search(r'href="/customers/v/new/\?([^"]+)">Save as new view', changed)
    assert save_as_new is not None
    new_page = client.get("/customers/v/new/?" + save_as_new[1].replace("&amp;", "&"))
    assert 'name="state" value="custom_field=region%3Dapac&amp;columns=name%2Cid' in (
        new_page.content.decode()
    )
    # The form says what it is about to save, as the view's own page will.
    what = " ".join(new_page.content.decode().split())
    assert "<dt>Custom field</dt><dd>region=apac</dd>" in what
    assert "Columns: Name, Metronome ID" in what

    state = re.search(r'name="state" value="([^"]+)"', changed)
    assert state is not None
    client.post(f"/customers/v/{view.slug}/save/", {"state": state[1].replace("&amp;", "&")})
    view.refresh_from_db()
    assert view.params == {"custom_field": "region=apac"}


def test_a_view_opened_through_a_stored_search_is_not_modified(fiona):
    ids = "\n".join(f"001Dn00000Ab{n:05d}A" for n in range(400))
    state = rules.canonical_state(QueryDict(f"salesforce_account_ids={ids}&columns=name,id"))
    view = rules.create(fiona, name="Long", shared=False, state=state)

    opened = client_for(fiona).get(f"/customers/v/{view.slug}/", follow=True)

    assert "search=" in opened.redirect_chain[-1][0]
    html = opened.content.decode()
    assert "View <strong>Long</strong>" in html and 'id="view-modified"' not in html


def test_a_view_beside_a_stored_search_that_expired_says_so(fiona):
    view = rules.create(
        fiona, name="EMEA", shared=False, state=rules.canonical_state(QueryDict("columns=name"))
    )

    html = client_for(fiona).get(LIST, {"search": "gone0000", "view": view.slug}).content.decode()

    # The page shows every customer instead; the view is not compared with that.
    assert "That saved search does not exist" in html
    assert "This view’s filters no longer validate" in html
    assert 'id="view-modified"' not in html


def test_the_page_offers_a_real_form_that_saves_the_search_without_javascript(fiona):
    client = client_for(fiona)
    html = client.get(LIST, {"billable": "unbillable", "columns": "name,created"}).content.decode()
    link = re.search(r'id="save-view" href="([^"]+)"', html)
    assert link is not None
    html = client.get(link[1].replace("&amp;", "&")).content.decode()
    form = re.search(r'<form method="post" action="/customers/v/new/">(.*?)</form>', html, re.S)
    assert form is not None
    state = re.search(r'name="state" value="([^"]+)"', form[1])
    assert state is not None

    response = client.post(
        "/customers/v/new/", {"name": "Unbillable", "state": state[1].replace("&amp;", "&")}
    )

    assert response.status_code == 303
    opened = client.get(response["Location"])
    assert parse_qs(urlsplit(opened["Location"]).query) == {
        "billable": ["unbillable"],
        "columns": ["name,created"],
        "view": [response["Location"].split("/")[-2]],
    }


# --- The chooser --------------------------------------------------------------------------------


def test_the_chooser_starts_from_the_standard_columns_and_offers_every_custom_field(fiona):
    html = client_for(fiona).get("/customers/columns/", {"q": "a"}).content.decode()
    assert (
        'name="columns" value="name,id,aliases,salesforce,billable,created,updated,archived"'
        in html
    )
    for key in ("cf.region", "cf.plan", "cf.account_manager"):
        assert f'value="add:{key}"' in html
    assert '<input type="hidden" name="q" value="a">' in html


def test_the_chooser_buttons_move_add_and_remove_one_column_each(fiona):
    client = client_for(fiona)

    def after(columns: str, move: str) -> str:
        html = client.get(
            "/customers/columns/", {"columns": columns, "move": move}
        ).content.decode()
        found = re.search(r'name="columns" value="([^"]*)"', html)
        assert found is not None
        return found[1]

    assert after("name,id,billable", "up:billable") == "name,billable,id"
    assert after("name,id,billable", "down:name") == "id,name,billable"
    assert after("name,id", "add:cf.region") == "name,id,cf.region"
    assert after("name,id", "remove:name") == "id"
    assert after("id", "remove:id") == "id"  # the last column stays
    assert after("name,id", "up:name") == "name,id"


def test_show_returns_to_the_search_with_the_columns_and_the_standard_set_leaves_no_parameter(
    fiona,
):
    client = client_for(fiona)
    shown = client.get("/customers/columns/", {"q": "a", "columns": "name,cf.plan", "show": "1"})
    assert parse_qs(urlsplit(shown["Location"]).query) == {"q": ["a"], "columns": ["name,cf.plan"]}
    standard = "name,id,aliases,salesforce,billable,created,updated,archived"
    back = client.get("/customers/columns/", {"q": "a", "columns": standard, "show": "1"})
    assert back["Location"] == "/customers/?q=a"


def test_the_chooser_keeps_every_value_of_a_filter_given_twice(fiona):
    client = client_for(fiona)
    search = {"only_archived": "all", "billable": ["billable", "unbillable"]}
    page = client.get(LIST, search).content.decode()
    chooser = re.search(r'id="choose-columns" href="([^"]+)"', page)
    assert chooser is not None
    opened = client.get(chooser[1].replace("&amp;", "&")).content.decode()
    back = re.search(r'class="back-link"><a href="([^"]+)"', opened)
    assert back is not None
    assert parse_qs(urlsplit(back[1].replace("&amp;", "&")).query)["billable"] == [
        "billable",
        "unbillable",
    ]

    shown = client.get("/customers/columns/", {**search, "columns": "name,cf.region", "show": "1"})
    assert parse_qs(urlsplit(shown["Location"]).query) == {
        "only_archived": ["all"],
        "billable": ["billable", "unbillable"],
        "columns": ["name,cf.region"],
    }


def test_columns_chosen_for_an_open_view_leave_it_open_and_modified(fiona):
    view, client, opened = opened_view(fiona, "Unbillable", "billable=unbillable")
    chooser = re.search(r'id="choose-columns" href="([^"]+)"', opened)
    assert chooser is not None
    chooser_url = chooser[1].replace("&amp;", "&")
    assert parse_qs(urlsplit(chooser_url).query)["view"] == [view.slug]

    form = client.get(chooser_url).content.decode()
    assert f'<input type="hidden" name="view" value="{view.slug}">' in form
    shown = client.get(chooser_url + "&columns=name,created&show=1")
    assert parse_qs(urlsplit(shown["Location"]).query)["view"] == [view.slug]
    page = client.get(shown["Location"]).content.decode()
    assert "View <strong>Unbillable</strong>" in page
    assert 'id="view-modified"' in page and "Save changes to this view" in page


def test_the_phone_labels_stylesheet_is_css_for_the_choice(fiona):
    response = client_for(fiona).get(
        "/customers/columns.css", {"columns": "name,created,cf.region"}
    )
    assert response["Content-Type"] == "text/css; charset=utf-8"
    css = response.content.decode()
    assert 'td:nth-child(2)::before { content: "Created"; }' in css
    assert 'td:nth-child(3)::before { content: "region"; }' in css


def test_the_manage_page_words_a_views_filters_as_the_form_does(fiona):
    query = QueryDict(mutable=True)
    query.setlist("billable", ["unbillable", "not_set"])
    query.update(
        {
            "sort": "-updated",
            "only_archived": "all",
            "no_salesforce_id": "true",
            "customer_ids": 'Customer ID\n3f1b5c2e-8d7a-4e21-9c3b-2a1d0e9f8b7c\n"Acme, Inc"',
        }
    )
    view = rules.create(fiona, name="Unbilled", shared=False, state=rules.canonical_state(query))

    html = client_for(fiona).get(reverse("customers:edit_view", args=[view.slug])).content.decode()

    shown = re.search(r'<dl class="view-filters">.*?</dl>', html, re.S)
    assert shown is not None
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", shown[0])
    assert pairs == [
        ("Customer IDs", "1 ID: 3f1b5c2e-8d7a-4e21-9c3b-2a1d0e9f8b7c (2 other values ignored)"),
        ("Show", "All"),
        ("Billable status", "Unbillable, Not set"),
        ("Has no Salesforce ID", "yes"),
        ("Sort", "Updated, newest first"),
    ]


def test_past_six_views_the_rest_fold_away_open_when_the_view_shown_is_among_them(fiona):
    every = QueryDict()
    views = [
        rules.create(fiona, name=f"View {n}", shared=False, state=rules.canonical_state(every))
        for n in range(9)
    ]

    html = client_for(fiona).get(LIST).content.decode()

    nav = re.search(r'<nav class="saved-views".*?</nav>', html, re.S)
    assert nav is not None
    assert len(re.findall(r'<a href="/customers/v/', nav[0])) == 9
    folded = re.search(r'<details class="more-views">.*?</details>', nav[0], re.S)
    assert folded is not None
    assert "3 more views" in folded[0]
    # The view shown is never hidden: opened, its fold is open.
    last = sorted(views, key=lambda view: view.name.casefold())[-1]
    opened = client_for(fiona).get(f"/customers/v/{last.slug}/", follow=True).content.decode()
    assert '<details class="more-views" open>' in opened
    # Seven fit without a fold of one.
    for view in views[-2:]:
        rules.delete(fiona, view)
    seven = client_for(fiona).get(LIST).content.decode()
    assert len(re.findall(r'<a href="/customers/v/', seven)) == 7
    assert "more-views" not in seven
