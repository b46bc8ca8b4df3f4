"""The export audit keeps the validated filters, capped, instead of the raw query string.

Rows from before keep their query string, cut to the new column's size (they were capped at
8,190 characters); new rows hold the filters as JSON (customers.export.audited_filters)."""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.models import Value
from django.db.models.functions import Concat, Left, Length

CAP = 2000


def cut_to_fit(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    ExportAudit = apps.get_model("customers", "ExportAudit")
    ExportAudit.objects.annotate(length=Length("filters")).filter(length__gt=CAP).update(
        filters=Concat(Left("filters", CAP - 1), Value("…"))
    )


class Migration(migrations.Migration):
    dependencies = [("customers", "0006_work_slot")]

    operations = [
        migrations.RenameField("exportaudit", "query_string", "filters"),
        migrations.RunPython(cut_to_fit, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="exportaudit",
            name="filters",
            field=models.CharField(blank=True, max_length=CAP),
        ),
    ]
