"""The index's Salesforce keys in their case (customers.index.keys.salesforce_key): they
were the 18-character form lower-cased. Recomputed here, since a sync rewrites only the rows
whose values changed."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

BATCH = 2000


def recompute_keys(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from customers.index.keys import salesforce_key

    indexed = apps.get_model("customers", "IndexedCustomer")
    rows = indexed.objects.exclude(salesforce_account_id="").only(
        "id", "salesforce_account_id", "salesforce_key"
    )
    changed = []
    for row in rows.iterator(chunk_size=BATCH):
        key = salesforce_key(row.salesforce_account_id)
        if key != row.salesforce_key:
            row.salesforce_key = key
            changed.append(row)
        if len(changed) >= BATCH:
            indexed.objects.bulk_update(changed, ["salesforce_key"])
            changed = []
    if changed:
        indexed.objects.bulk_update(changed, ["salesforce_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0008_index_maintainers_group"),
    ]

    operations = [
        migrations.RunPython(recompute_keys, migrations.RunPython.noop, elidable=True),
    ]
