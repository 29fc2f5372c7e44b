from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# The denylist's source of truth: every worker loads the unexpired rows when it
# starts, and reads again what it may have missed whenever Redis (which only tells
# it sooner) was away. ``credential_id`` finds a revocation already recorded,
# ``revoked_at`` what is new, ``expires_at`` what to prune.


class Migration(migrations.Migration):
    dependencies = [("models", "0004_installation")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Revocation",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("credential_id", fields.CharField(max_length=255)),
                ("revoked_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "revocations",
                "app": "models",
                "indexes": [
                    Index(fields=["credential_id"]),
                    Index(fields=["revoked_at"]),
                    Index(fields=["expires_at"]),
                ],
                "pk_attr": "id",
                "table_description": "A revoked credential, denied on every worker and host until ``expires_at``.",
            },
            bases=["Model"],
        ),
    ]
