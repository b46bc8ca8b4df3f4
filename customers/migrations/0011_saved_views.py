"""Named saved views, each person's landing view, the audit of shared views, and the
`manage_shared_views` permission, given to a new Managers group (a role on top of Support or
Finance: it grants no access to customers of its own)."""

import django.db.models.deletion
import django.db.models.functions.text
from django.apps.registry import Apps
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

MANAGERS = "Managers"


def create_managers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # As in 0002: the permission must exist before the group can hold it.
    app_config = apps.get_app_config("customers")
    app_config.models_module = True  # type: ignore[assignment]  # Django's own trick
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=MANAGERS)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="customers", codename="manage_shared_views"
        )
    )


def remove_managers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.filter(name=MANAGERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0010_index_state_sorts_and_trigrams"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="customeraccess",
            options={
                "default_permissions": (),
                "managed": False,
                "permissions": [
                    ("view_customers", "Can view Metronome customers"),
                    ("export_customers", "Can download Metronome customers as CSV"),
                    ("sync_index", "Can start a customer index update from the customers page"),
                    ("manage_shared_views", "Can change and delete any shared saved view"),
                ],
            },
        ),
        migrations.CreateModel(
            name="SavedView",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("slug", models.CharField(editable=False, max_length=16, unique=True)),
                ("name", models.CharField(max_length=80)),
                ("shared", models.BooleanField(default=False)),
                ("params", models.JSONField(default=dict)),
                ("columns", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "owner",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["name", "pk"],
                "constraints": [
                    models.UniqueConstraint(
                        django.db.models.functions.text.Lower("name"),
                        models.F("owner"),
                        name="saved_view_name_per_owner",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="LandingView",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "view",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="customers.savedview",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="SavedViewAudit",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("actor_username", models.CharField(max_length=150)),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("created", "Created"),
                            ("changed", "Changed"),
                            ("deleted", "Deleted"),
                        ],
                        max_length=16,
                    ),
                ),
                ("view_slug", models.CharField(max_length=16)),
                ("view_name", models.CharField(max_length=80)),
                ("owner_username", models.CharField(blank=True, max_length=150)),
                ("what", models.TextField(blank=True)),
                (
                    "actor",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "view",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="customers.savedview",
                    ),
                ),
            ],
            options={"ordering": ["-at", "-pk"], "verbose_name": "shared view change"},
        ),
        migrations.RunPython(create_managers, remove_managers),
    ]
