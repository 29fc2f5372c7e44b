from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# events.traceparent (db/tracing.py): the W3C trace context of the write that
# recorded the event, so the relay's and the deliveries' spans can link to it.
# Nullable, and NULL whenever tracing is off: adding it rewrites no rows on either
# database (PostgreSQL adds a nullable column without a default in place).


class Migration(migrations.Migration):
    dependencies = [("models", "0007_audit")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Event",
            name="traceparent",
            field=fields.CharField(null=True, max_length=55),
        ),
    ]
