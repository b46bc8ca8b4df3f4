from typing import Any

from django.db import migrations

# An ingest alias equal to a search, looked up in an index of each row's aliases
# (customers.index.matching.alias_is): the trigram index would find every row holding the
# search's words, thousands for a common name word at 1,000,000 customers. The expression
# must stay the same as alias_is's. A first sync rebuilds it with the table's other indexes.
POSTGRESQL_FORWARD = (
    "CREATE INDEX customer_index_aliases ON customers_indexedcustomer "
    "USING gin (string_to_array(btrim(aliases_folded, E'\\n'), E'\\n'))"
)
POSTGRESQL_BACKWARD = "DROP INDEX IF EXISTS customer_index_aliases"


def on_postgresql(statement: str) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0011_saved_views"),
    ]

    operations = [
        migrations.RunPython(on_postgresql(POSTGRESQL_FORWARD), on_postgresql(POSTGRESQL_BACKWARD)),
    ]
