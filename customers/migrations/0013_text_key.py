from typing import Any

from django.db import migrations, models

# SQLite: the FTS5 text index is keyed by each row's `text_key` instead of holding its id, so
# a search reads the matches' rowids only and finds their rows through one index (reading the
# stored id was a lookup per match). Rebuilt from the index's rows; a search text is the
# folded name, and the aliases, external ID and custom values (customers.index.staging).
TEXT_VALUES = (
    "name_folded, aliases_folded || external_id_folded || char(10) || custom_values_folded"
)
SQLITE_FORWARD = [
    "UPDATE customers_indexedcustomer SET text_key = rowid",
    "DROP TABLE IF EXISTS customer_index_fts",
    "CREATE VIRTUAL TABLE customer_index_fts USING fts5(name, other, tokenize = 'trigram')",
    f"INSERT INTO customer_index_fts (rowid, name, other) "  # noqa: S608
    f"SELECT text_key, {TEXT_VALUES} FROM customers_indexedcustomer",
]
# As migration 0004 defined it, filled again.
SQLITE_BACKWARD = [
    "DROP TABLE IF EXISTS customer_index_fts",
    "CREATE VIRTUAL TABLE customer_index_fts USING fts5("
    "id UNINDEXED, name, other, tokenize = 'trigram')",
    f"INSERT INTO customer_index_fts (id, name, other) "  # noqa: S608
    f"SELECT id, {TEXT_VALUES} FROM customers_indexedcustomer",
]


def on_sqlite(statements: list[str]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0012_search_alias_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="indexedcustomer",
            name="text_key",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.RunPython(on_sqlite(SQLITE_FORWARD), on_sqlite(SQLITE_BACKWARD)),
        migrations.AddConstraint(
            model_name="indexedcustomer",
            constraint=models.UniqueConstraint(
                condition=models.Q(("text_key__isnull", False)),
                fields=("text_key",),
                name="customer_index_text_key",
            ),
        ),
    ]
