from typing import Any

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# SQLite: the FTS5 text index keeps only which rows hold each trigram (`detail=none`), not
# where in them. A search asks for rows holding every trigram of each searched word
# (`matching.fts_substring`) and compares the text itself afterwards, as it always did, so
# positions only made the index four times larger (42 MB against 10 MB at 100,000
# customers) and each search read them: 0.86x a one-word name search (bench/README.md,
# issue 24). Rebuilt from the index's rows under their `text_key`, as migration 0013 did.
# Code from before this migration asks for phrases and columns, which such an index
# refuses: going back to it takes `migrate customers 0016` first, which rebuilds the
# index with positions.
TEXT_VALUES = (
    "name_folded, aliases_folded || external_id_folded || char(10) || custom_values_folded"
)


def rebuild_text_index(detail: str) -> Any:
    def run(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor != "sqlite":
            return  # PostgreSQL's trigram index is on the customers' table itself
        schema_editor.execute("DROP TABLE IF EXISTS customer_index_fts")
        schema_editor.execute(
            "CREATE VIRTUAL TABLE customer_index_fts USING fts5("
            f"name, other, tokenize = 'trigram', detail = {detail})"
        )
        schema_editor.execute(
            f"INSERT INTO customer_index_fts (rowid, name, other) "  # noqa: S608
            f"SELECT text_key, {TEXT_VALUES} FROM customers_indexedcustomer "
            "WHERE text_key IS NOT NULL"
        )

    return run


class Migration(migrations.Migration):
    dependencies = [("customers", "0016_saved_view_names_nfkc")]

    operations = [
        migrations.RunPython(rebuild_text_index("none"), rebuild_text_index("full")),
    ]
