import uuid

from tortoise import fields, migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_editor.base import BaseSchemaEditor


async def name_installation(apps: object, schema_editor: BaseSchemaEditor) -> None:
    # Random per database: gateways of different installations that share a Redis
    # server publish their change streams on different channels.
    client = schema_editor.client
    placeholder = "$1" if client.capabilities.dialect == "postgres" else "?"
    await client.execute_query(
        f"INSERT INTO installation (id, key) VALUES (1, {placeholder})", [uuid.uuid4().hex]
    )


async def nothing(apps: object, schema_editor: BaseSchemaEditor) -> None:
    return None


class Migration(migrations.Migration):
    dependencies = [("models", "0003_change_log")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Installation",
            fields=[
                ("id", fields.IntField(primary_key=True, unique=True, db_index=True)),
                ("key", fields.CharField(max_length=32)),
            ],
            options={
                "table": "installation",
                "app": "models",
                "pk_attr": "id",
                "table_description": "One row: this installation's random key (names its channels on a shared Redis).",
            },
            bases=["Model"],
        ),
        ops.RunPython(name_installation, nothing),
    ]
