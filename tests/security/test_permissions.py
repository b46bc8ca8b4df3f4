"""Permissions: the groups and what each may see and export, the 403 page, the admin for
superusers only, and the export audit log that nobody can change."""

import importlib
import re
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, User

from customers.models import ExportAudit
from tests.factories import EXPORT_URL, LIST_URL, body_of, client_for, make_user, read_to_the_end

pytestmark = pytest.mark.django_db


# --- Groups and permissions -------------------------------------------------------------------


def test_migrate_creates_the_groups_with_exactly_their_permissions():
    granted = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }
    assert granted == {
        "Support": {"customers.view_customers"},
        "Finance": {"customers.view_customers", "customers.export_customers"},
        "Index maintainers": {"customers.view_customers", "customers.sync_index"},
        # A role on top of the other two: it manages shared saved views, and sees nothing.
        "Managers": {"customers.manage_shared_views"},
    }


def test_support_sees_customers_without_a_download_button_and_may_not_download(
    support_user, sandbox
):
    client = client_for(support_user)
    page = client.get(LIST_URL)
    fragment = client.get(LIST_URL, HTTP_HX_REQUEST="true")
    assert page.status_code == 200 and fragment.status_code == 200
    for response in (page, fragment):
        assert "Download CSV" not in response.content.decode()
        assert EXPORT_URL not in response.content.decode()
    export = client.get(EXPORT_URL)
    assert export.status_code == 403
    assert "Not allowed" in export.content.decode()
    # Only Finance grants the download: the page names it, not "Support or Finance".
    assert "may not download Metronome customers as CSV and their invoices as PDF" in (
        export.content.decode()
    )
    assert "add you to the <strong>Finance</strong> group" in export.content.decode()
    assert not ExportAudit.objects.exists()


def test_finance_sees_the_download_button_and_may_download(finance_user, sandbox):
    client = client_for(finance_user)
    body = client.get(f"{LIST_URL}?only_archived=true").content.decode()
    assert re.search(r'<a class="button" id="download-csv" href="/customers/export\.csv\?', body)
    download = client.get(f"{EXPORT_URL}?only_archived=true")
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    body_of(download)
    assert ExportAudit.objects.get().username == "fiona"


def test_a_user_in_no_group_may_see_nothing(sandbox):
    client = client_for(make_user("nobody"))
    for url in (LIST_URL, f"{LIST_URL}?limit=10", EXPORT_URL):
        assert client.get(url).status_code == 403
    assert client.get(LIST_URL, HTTP_HX_REQUEST="true").status_code == 403
    assert client.post(LIST_URL, {"ingest_alias": "x"}).status_code == 403
    assert sandbox.request_count == 0


def test_the_403_page_names_every_group_that_grants_what_was_refused(sandbox):
    body = client_for(make_user("nobody")).get(LIST_URL).content.decode()
    assert "may not view Metronome customers" in body
    assert (
        "<strong>Finance</strong>, <strong>Index maintainers</strong> or "
        "<strong>Support</strong> group"
    ) in body


def test_an_htmx_request_refused_with_403_reloads_the_page_to_show_why(sandbox):
    client = client_for(make_user("revoked"))
    refused = client.get(f"{LIST_URL}?limit=10", HTTP_HX_REQUEST="true")
    assert refused.status_code == 403 and refused["HX-Refresh"] == "true"
    # A full page load gets the friendly page as it is, without htmx's header.
    assert "HX-Refresh" not in client.get(LIST_URL)


def test_a_superuser_may_view_download_and_manage_users_in_the_admin(superuser, sandbox):
    client = client_for(superuser)
    body = client.get(LIST_URL).content.decode()
    assert "Download CSV" in body and 'href="/admin/"' in body
    assert read_to_the_end(client.get(EXPORT_URL)).status_code == 200
    for url in ("/admin/", "/admin/auth/user/", "/admin/auth/user/add/", "/admin/auth/group/"):
        assert client.get(url).status_code == 200, url
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "newbie",
            "password1": "a-Long-pass-phrase-9",
            "password2": "a-Long-pass-phrase-9",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="newbie").exists()


@pytest.mark.parametrize("groups", [("Support",), ("Finance",)])
def test_support_and_finance_staff_cannot_open_the_admin(groups):
    client = client_for(make_user("staffer", *groups))
    response = client.get("/admin/customers/exportaudit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- The export audit log in the admin ---------------------------------------------------------


@pytest.fixture
def audits(superuser, finance_user) -> list[ExportAudit]:
    rows = [
        ExportAudit.objects.create(user=finance_user, username="fiona", outcome="complete"),
        ExportAudit.objects.create(user=superuser, username="root", outcome="failed"),
        ExportAudit.objects.create(user=finance_user, username="fiona", outcome="complete"),
    ]
    # auto_now_add: move the first row to another year with update().
    ExportAudit.objects.filter(pk=rows[0].pk).update(started_at=datetime(2024, 1, 15, tzinfo=UTC))
    return rows


def test_the_audit_log_is_visible_in_the_admin_but_cannot_be_added_changed_or_deleted(
    superuser, audits
):
    client = client_for(superuser)
    changelist = client.get("/admin/customers/exportaudit/")
    body = changelist.content.decode()
    assert changelist.status_code == 200
    assert len(changelist.context["cl"].result_list) == 3
    assert "/admin/customers/exportaudit/add/" not in body
    assert 'name="action"' not in body  # no bulk "delete selected"

    audit = audits[1]
    change_url = f"/admin/customers/exportaudit/{audit.pk}/change/"
    change = client.get(change_url)
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert "/delete/" not in change.content.decode()

    assert client.get("/admin/customers/exportaudit/add/").status_code == 403
    assert client.post("/admin/customers/exportaudit/add/", {"username": "x"}).status_code == 403
    assert client.post(change_url, {"username": "forged", "outcome": "complete"}).status_code == 403
    delete_url = f"/admin/customers/exportaudit/{audit.pk}/delete/"
    assert client.get(delete_url).status_code == 403
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    bulk = client.post(
        "/admin/customers/exportaudit/",
        {"action": "delete_selected", "_selected_action": [a.pk for a in audits], "post": "yes"},
    )
    assert bulk.status_code < 500
    audit.refresh_from_db()
    assert audit.username == "root" and audit.outcome == "failed"
    assert ExportAudit.objects.count() == 3


def test_the_audit_log_can_be_filtered_by_user_and_by_date(superuser, audits):
    client = client_for(superuser)

    def shown(query: str) -> set[int]:
        response = client.get(f"/admin/customers/exportaudit/?{query}")
        assert response.status_code == 200
        return {row.pk for row in response.context["cl"].result_list}

    body = client.get("/admin/customers/exportaudit/").content.decode()
    assert "By username" in body and "By started at" in body
    assert shown("username=fiona") == {audits[0].pk, audits[2].pk}
    assert shown("username=root") == {audits[1].pk}
    assert shown("started_at__year=2024") == {audits[0].pk}
    january = (
        "started_at__gte=2024-01-01T00:00:00%2B00:00&started_at__lt=2024-02-01T00:00:00%2B00:00"
    )
    assert shown(january) == {audits[0].pk}
    assert shown("username=fiona&started_at__year=2024") == {audits[0].pk}


def test_an_invoice_pdf_refused_says_the_permission_covers_pdfs(support_user, sandbox):
    pdf = client_for(support_user).get(f"/customers/{uuid.uuid4()}/invoices/{uuid.uuid4()}/pdf")
    assert pdf.status_code == 403
    assert "may not download Metronome customers as CSV and their invoices as PDF" in (
        pdf.content.decode()
    )


def test_the_export_permissions_old_name_is_renamed_where_it_already_exists(db):
    from django.apps import apps
    from django.contrib.auth.models import Permission

    migration = importlib.import_module(
        "customers.migrations.0014_export_permission_covers_invoice_pdfs"
    )
    permission = Permission.objects.get(codename="export_customers")
    permission.name = migration.OLD_NAME
    permission.save()

    migration.say_it_covers_pdfs(apps, None)

    permission.refresh_from_db()
    assert permission.name == migration.NEW_NAME
