from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# The audit log (db/audit.py): one row per admin write, in the write's transaction.
# It creates one table and touches nothing 0006 made: it follows 0006 only so the
# chain stays linear (one head).


class Migration(migrations.Migration):
    dependencies = [("models", "0006_suppliers")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "models.Organization",
                        source_field="organization_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("actor", fields.CharField(max_length=200)),
                ("action", fields.CharField(max_length=64)),
                ("target_type", fields.CharField(max_length=32)),
                ("target_id", fields.CharField(max_length=255)),
                ("request_id", fields.CharField(null=True, max_length=128)),
                ("details", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "audit_events",
                "app": "models",
                "indexes": [Index(fields=["organization_id", "occurred_at", "id"])],
                "pk_attr": "id",
                "table_description": (
                    "An admin write (API keys, users, OAuth clients, signing keys): who did what to"
                ),
            },
            bases=["Model"],
        ),
    ]
