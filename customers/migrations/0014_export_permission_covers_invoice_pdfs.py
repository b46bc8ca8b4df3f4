"""The export permission also guards an invoice's PDF: its name says so, so that the page
refusing a PDF says what is missing. Django creates a missing permission after migrating
but never renames one, so the name of an existing one is updated here."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

OLD_NAME = "Can download Metronome customers as CSV"
NEW_NAME = "Can download Metronome customers as CSV and their invoices as PDF"


def _rename(apps: Apps, name: str) -> None:
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(
        content_type__app_label="customers", codename="export_customers"
    ).update(name=name)


def say_it_covers_pdfs(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    _rename(apps, NEW_NAME)


def say_csv_only(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    _rename(apps, OLD_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0013_text_key"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="customeraccess",
            options={
                "default_permissions": (),
                "managed": False,
                "permissions": [
                    ("view_customers", "Can view Metronome customers"),
                    ("export_customers", NEW_NAME),
                    ("sync_index", "Can start a customer index update from the customers page"),
                    ("manage_shared_views", "Can change and delete any shared saved view"),
                ],
            },
        ),
        migrations.RunPython(say_it_covers_pdfs, say_csv_only),
    ]
