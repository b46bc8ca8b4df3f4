"""The 403 page (customers/errors.py): every guarded view, found by walking the URLconf,
names the permission it checks and the groups that hold it, and those groups do pass."""

import re
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from customers.errors import required_permission

pytestmark = pytest.mark.django_db


def every_view(patterns=None, namespace: str = ""):
    """(URL name, view, converters) for every named pattern of the URLconf."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from every_view(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", pattern.callback, pattern.pattern.converters


def guarded_urls(customer_id: str) -> list[tuple[str, str, str]]:
    """(URL name, a URL of it, the permission its view requires) of every guarded view."""
    found = []
    for name, view, converters in every_view():
        permission = required_permission(view)
        if permission is None:
            continue
        kwargs = {key: uuid.UUID(customer_id) for key in converters}
        found.append((name, reverse(name, kwargs=kwargs), permission))
    return found


def request(client, url: str):
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url)
    if response.streaming:  # a CSV export: finish it (and its audit) within this test
        b"".join(response.streaming_content)
    return response


def groups_holding(permission: str) -> list[str]:
    app_label, codename = permission.split(".")
    return sorted(
        Group.objects.filter(
            permissions__content_type__app_label=app_label, permissions__codename=codename
        ).values_list("name", flat=True)
    )


def test_every_customers_page_is_guarded_by_a_permission(sandbox_api):
    customer_id = sandbox_api.customers[0]["id"]
    guarded = {name for name, _, _ in guarded_urls(customer_id)}
    customers_views = {name for name, _, _ in every_view() if name.startswith("customers:")}
    assert customers_views and customers_views <= guarded


def test_each_guarded_views_403_names_its_permission_and_the_groups_that_do_pass(
    client, sandbox_api
):
    nobody = User.objects.create_user("nobody")
    customer_id = sandbox_api.customers[0]["id"]
    checked = set()
    for name, url, permission in guarded_urls(customer_id):
        client.force_login(nobody)
        refused = request(client, url)
        assert refused.status_code == 403, name
        page = refused.content.decode()
        assert re.search(rf"<code data-permission>{re.escape(permission)}</code>", page), name
        groups = groups_holding(permission)
        assert groups, f"no group holds {permission}, needed by {name}"
        named = re.findall(r"<strong>([^<]+)</strong>", page.split("ask an administrator")[1])
        assert named == groups, name
        for group in groups:  # each group named lets its members through
            member = User.objects.create_user(f"{group}-{name}".replace(" ", "-")[:150])
            member.groups.add(Group.objects.get(name=group))
            assert User.objects.get(pk=member.pk).has_perm(permission), (name, group)
            if refused.request["REQUEST_METHOD"] == "GET":
                client.force_login(member)
                assert request(client, url).status_code != 403, (name, group)
        checked.add(permission)
    assert checked == {
        "customers.view_customers",
        "customers.export_customers",
        "customers.sync_index",
    }


def test_a_support_member_refused_the_index_button_is_told_the_group_that_has_it(
    client, sandbox_api
):
    support = User.objects.create_user("sam")
    support.groups.add(Group.objects.get(name="Support"))
    client.force_login(support)

    refused = client.post(reverse("customers:sync_index"))

    assert refused.status_code == 403
    page = refused.content.decode()
    assert "start a customer index update from the customers page" in page
    assert "<strong>Index maintainers</strong> group" in page
    assert "<strong>Support</strong>" not in page
