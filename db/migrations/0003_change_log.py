from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_editor.base import BaseSchemaEditor

# NOTIFY is transactional: PostgreSQL delivers it when the inserting transaction
# commits, and once per transaction, so the relay wakes right after a commit.
PG_NOTIFY = [
    """CREATE OR REPLACE FUNCTION gateway_events_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gateway_events', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS events_notify ON events",
    """CREATE TRIGGER events_notify AFTER INSERT ON events
FOR EACH STATEMENT EXECUTE FUNCTION gateway_events_notify()""",
]


async def notify_on_insert(apps: object, schema_editor: BaseSchemaEditor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        for statement in PG_NOTIFY:
            await schema_editor.client.execute_script(statement)


async def drop_notify(apps: object, schema_editor: BaseSchemaEditor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "DROP TRIGGER IF EXISTS events_notify ON events;"
            " DROP FUNCTION IF EXISTS gateway_events_notify()"
        )


class Migration(migrations.Migration):
    dependencies = [("models", "0002_auth")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Event",
            name="position",
            field=fields.BigIntField(null=True, unique=True),
        ),
        ops.AddIndex(
            model_name="Event",
            index=Index(fields=["organization_id", "position"]),
        ),
        # The relay's work list: committed events not yet given a position.
        ops.RunSQL(
            "CREATE INDEX events_unpublished ON events (id) WHERE position IS NULL",
            reverse_sql="DROP INDEX events_unpublished",
        ),
        ops.RunPython(notify_on_insert, drop_notify),
    ]
