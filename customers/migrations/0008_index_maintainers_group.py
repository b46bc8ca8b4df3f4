"""A group that may press "Update index now": Index maintainers (view customers, and start an
index update from the customers page). The button costs a full read of every customer
through the company's one API token, so it is not everyone's: a team lead or whoever looks
after the dashboard. Support and Finance are unchanged."""

from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

GROUP = "Index maintainers"
CODENAMES = ["view_customers", "sync_index"]


def create_group(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally created after all migrations ran; this group needs them now.
    app_config = apps.get_app_config("customers")
    app_config.models_module = True  # type: ignore[assignment]  # Django's own trick
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="customers", codename__in=CODENAMES)
    )


def remove_group(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [("customers", "0007_exportaudit_filters")]

    operations = [migrations.RunPython(create_group, remove_group)]
