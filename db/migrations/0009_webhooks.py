from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# Outgoing webhooks (db/webhooks.py, realtime/webhooks/): the endpoints an organization
# registers, the delivery log (one row per attempt) and the dead letters. Three new
# tables; nothing existing changes. WebhookEndpoint.event_filter is the column "filter".


class Migration(migrations.Migration):
    dependencies = [("models", "0008_event_traceparent")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WebhookEndpoint",
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
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("url", fields.CharField(max_length=2048)),
                ("description", fields.CharField(default="", max_length=500)),
                ("topics", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                (
                    "event_filter",
                    fields.CharField(source_field="filter", default="", max_length=2000),
                ),
                ("enabled", fields.BooleanField(default=True)),
                ("disabled_reason", fields.CharField(null=True, max_length=200)),
                (
                    "disabled_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("secret", fields.CharField(max_length=100)),
                ("previous_secret", fields.CharField(null=True, max_length=100)),
                (
                    "previous_secret_expires_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("cursor", fields.BigIntField(default=0)),
                (
                    "failing_since",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("consecutive_failures", fields.IntField(default=0)),
                (
                    "breaker_open_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("version", fields.IntField(default=1)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "webhook_endpoints",
                "app": "models",
                "indexes": [Index(fields=["organization_id", "created_at", "id"])],
                "pk_attr": "id",
                "table_description": "A receiver of an organization's change-log events (Standard Webhooks).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookDeadLetter",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "models.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "endpoint",
                    fields.ForeignKeyField(
                        "models.WebhookEndpoint",
                        source_field="endpoint_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("position", fields.BigIntField()),
                ("event_type", fields.CharField(max_length=64)),
                ("event", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("attempts", fields.IntField()),
                ("last_error", fields.CharField(max_length=500)),
                ("status", fields.CharField(default="dead", max_length=20)),
                (
                    "replayed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "webhook_dead_letters",
                "app": "models",
                "unique_together": (("endpoint", "position"),),
                "indexes": [Index(fields=["endpoint_id", "id"])],
                "pk_attr": "id",
                "table_description": "An event an endpoint never accepted after every attempt. ``event`` keeps the",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookDelivery",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "models.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "endpoint",
                    fields.ForeignKeyField(
                        "models.WebhookEndpoint",
                        source_field="endpoint_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("position", fields.BigIntField()),
                ("event_type", fields.CharField(max_length=64)),
                ("attempt", fields.IntField()),
                ("outcome", fields.CharField(max_length=20)),
                ("http_status", fields.IntField(null=True)),
                ("latency_ms", fields.IntField()),
                ("response_excerpt", fields.CharField(default="", max_length=1024)),
                ("error", fields.CharField(null=True, max_length=500)),
                ("replay", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "webhook_deliveries",
                "app": "models",
                "indexes": [Index(fields=["endpoint_id", "id"])],
                "pk_attr": "id",
                "table_description": "The delivery log: one row per attempt to send one event to one endpoint.",
            },
            bases=["Model"],
        ),
    ]
