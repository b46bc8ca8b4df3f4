"""Saved views' names in NFKC, as `saved_view_rules.clean_name` now keeps them, so a new
look-alike cannot be saved beside an older name. A name whose normal form its owner already
uses (in any case) is left as it is: renaming it is theirs to choose."""

import unicodedata

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def normalised_name(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).split())


def normalise_names(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    SavedView = apps.get_model("customers", "SavedView")
    for view in SavedView.objects.only("pk", "name", "owner_id").iterator():
        name = normalised_name(view.name)[:80]
        if not name or name == view.name:
            continue
        twins = SavedView.objects.filter(owner_id=view.owner_id, name__iexact=name)
        if not twins.exclude(pk=view.pk).exists():
            SavedView.objects.filter(pk=view.pk).update(name=name)


class Migration(migrations.Migration):
    dependencies = [("customers", "0015_sync_run_counts_customers_by_state")]

    operations = [migrations.RunPython(normalise_names, migrations.RunPython.noop)]
