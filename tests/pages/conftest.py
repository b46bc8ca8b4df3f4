"""Fixtures the page tests share."""

import pytest
from django.contrib.auth.models import Group, User


@pytest.fixture
def support_client(client, db):
    """The Django test client, logged in as a member of Support (may view, not export)."""
    user = User.objects.create_user("sam")
    user.groups.add(Group.objects.get(name="Support"))
    client.force_login(user)
    return client
