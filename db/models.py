"""Tortoise models: every business row belongs to one organization.

Rows carry a ``version`` that every write increments; REST exposes it as the
ETag and uses it for optimistic concurrency.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Organization(Model):
    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organizations"


class Customer(Model):
    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "customers"
        unique_together = (("organization", "email"),)
        indexes = (("organization_id", "created_at", "id"),)


class Supplier(Model):
    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254)
    country = fields.CharField(max_length=2)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "suppliers"
        unique_together = (("organization", "email"),)
        indexes = (("organization_id", "created_at", "id"),)


class Product(Model):
    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    supplier: fields.ForeignKeyNullableRelation[Supplier] = fields.ForeignKeyField(
        "models.Supplier", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    sku = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    price_cents = fields.IntField()
    stock = fields.IntField(default=0)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "products"
        unique_together = (("organization", "sku"),)
        indexes = (("organization_id", "created_at", "id"), ("organization_id", "supplier_id"))


class Order(Model):
    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name=False, on_delete=fields.RESTRICT
    )
    status = fields.CharEnumField(OrderStatus, max_length=16, default=OrderStatus.PENDING)
    total_cents = fields.IntField(default=0)
    note = fields.TextField(default="")
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "orders"
        indexes = (("organization_id", "created_at", "id"), ("organization_id", "customer_id"))


class OrderItem(Model):
    id = fields.IntField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name=False, on_delete=fields.CASCADE
    )
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "models.Product", related_name=False, on_delete=fields.RESTRICT
    )
    quantity = fields.IntField()
    unit_price_cents = fields.IntField()

    class Meta:
        table = "order_items"
        indexes = (("order_id", "id"), ("product_id",))


class Event(Model):
    """The change log (outbox): one row per committed write, in the write's transaction.

    ``position`` is set by the relay once the row is committed: gap-free and
    increasing in the order the relay saw commits (realtime/relay.py).
    """

    id = fields.BigIntField(primary_key=True)
    position = fields.BigIntField(null=True, unique=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    type = fields.CharField(max_length=64)
    resource = fields.CharField(max_length=32)
    resource_id = fields.CharField(max_length=64)
    actor = fields.CharField(max_length=200)
    snapshot: dict[str, Any] = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)
    # The W3C traceparent of the write's span, while tracing is on (db/tracing.py):
    # the relay's and the deliveries' spans link to it. Never sent to clients.
    traceparent = fields.CharField(max_length=55, null=True)

    class Meta:
        table = "events"
        indexes = (("organization_id", "id"), ("organization_id", "position"))


class Installation(Model):
    """One row: this installation's random key (names its channels on a shared Redis)."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=32)

    class Meta:
        table = "installation"


class IdempotencyRecord(Model):
    """The stored outcome of a write sent with an idempotency key."""

    id = fields.BigIntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    subject = fields.CharField(max_length=200)
    key = fields.CharField(max_length=255)
    fingerprint = fields.CharField(max_length=64)
    status = fields.IntField()
    result: dict[str, Any] = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_records"
        unique_together = (("organization", "subject", "key"),)


def fits(model: type[Model], field: str, value: str) -> bool:
    """Whether ``value`` fits ``model.field``'s column. A longer value cannot match any
    row, and Tortoise raises (instead of finding nothing) when asked to look it up."""
    max_length: int | None = getattr(model._meta.fields_map[field], "max_length", None)
    return max_length is None or len(value) <= max_length


# --- Authentication -------------------------------------------------------------------


class User(Model):
    """A person who signs in (authorization code flow), a member of one organization."""

    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    role = fields.CharField(max_length=16)
    disabled = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class OAuthClient(Model):
    """A registered OAuth2 client: confidential (secret hash set) or public (PKCE only).

    ``scopes`` caps what its tokens may carry; ``role`` is what a client acting
    for itself (client credentials) holds in its organization.
    """

    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    client_id = fields.CharField(max_length=64, unique=True)
    secret_hash = fields.CharField(max_length=128, null=True)
    name = fields.CharField(max_length=200)
    redirect_uris: list[str] = fields.JSONField(default=list)
    grant_types: list[str] = fields.JSONField(default=list)
    scopes: list[str] = fields.JSONField(default=list)
    role = fields.CharField(max_length=16, default="staff")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "oauth_clients"


class AuthorizationCode(Model):
    id = fields.IntField(primary_key=True)
    code_hash = fields.CharField(max_length=64, unique=True)
    client_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    redirect_uri = fields.CharField(max_length=2000)
    scope = fields.TextField()
    code_challenge = fields.CharField(max_length=128)
    code_challenge_method = fields.CharField(max_length=8)
    nonce = fields.CharField(max_length=255, null=True)
    expires_at = fields.DatetimeField()
    used = fields.BooleanField(default=False)

    class Meta:
        table = "oauth_codes"


class RefreshToken(Model):
    """A refresh token (stored as a hash). Rotation links each to its family:
    presenting a token that was already rotated revokes the whole family."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    family = fields.CharField(max_length=32, db_index=True)
    client_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE, null=True
    )
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    scope = fields.TextField()
    access_jti = fields.CharField(max_length=64)
    access_expires_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    rotated_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "oauth_refresh_tokens"


class SigningKey(Model):
    """A token signing key pair. The newest active key signs, retired keys stay
    published in the JWKS until every token they signed has expired."""

    id = fields.IntField(primary_key=True)
    kid = fields.CharField(max_length=64, unique=True)
    algorithm = fields.CharField(max_length=8)
    private_pem = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "signing_keys"


class ApiKey(Model):
    """A service-to-service key. Only a SHA-256 of the secret is kept, the
    prefix (``gwk_<key_id>_``) makes keys recognisable in logs and scanners."""

    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    key_id = fields.CharField(max_length=32, unique=True)
    secret_hash = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)
    scope = fields.TextField()  # space-separated, as OAuth writes scopes
    created_by = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_keys"
        indexes = (("organization_id", "created_at", "id"),)


class Revocation(Model):
    """A revoked credential, denied on every worker and host until ``expires_at``.

    ``credential_id`` is an access token's ``jti`` or ``key:<key_id>`` for an API key.
    The source of truth of the denylist (gateway/auth/denylist.py): Redis only tells
    the other workers sooner. Rows past ``expires_at`` are pruned.
    """

    id = fields.BigIntField(primary_key=True)
    credential_id = fields.CharField(max_length=255)
    revoked_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "revocations"
        indexes = (("credential_id",), ("revoked_at",), ("expires_at",))


class AuditEvent(Model):
    """An admin write (API keys, users, OAuth clients, signing keys): who did what to
    which target, when, and from which request. Recorded in the write's own transaction
    (``db.audit``). ``organization`` is None for installation-wide actions (signing
    keys): no organization's owner reads those, operators do (``gateway list-audit-events``).
    """

    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyNullableRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE, null=True
    )
    actor = fields.CharField(max_length=200)
    action = fields.CharField(max_length=64)
    target_type = fields.CharField(max_length=32)
    target_id = fields.CharField(max_length=255)
    request_id = fields.CharField(max_length=128, null=True)
    details: dict[str, Any] = fields.JSONField(default=dict)
    occurred_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_events"
        indexes = (("organization_id", "occurred_at", "id"),)


# --- Outgoing webhooks ----------------------------------------------------------------


class WebhookEndpoint(Model):
    """A receiver of an organization's change-log events (Standard Webhooks).

    Each endpoint is a durable consumer with its own ``cursor`` (the last change-log
    position handled); ``secret`` signs deliveries, ``previous_secret`` keeps signing
    until ``previous_secret_expires_at`` after a rotation. Secrets are never sent to
    clients except once, in the create and rotate responses (db/webhooks.py).
    """

    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=500, default="")
    topics: list[str] = fields.JSONField()
    # AIP-160 over the topics' events, "" = all. Named ``event_filter`` in Python because
    # Tortoise reserves ``filter`` (Model.filter); the column and the API field are ``filter``.
    event_filter = fields.CharField(max_length=2000, default="", source_field="filter")
    enabled = fields.BooleanField(default=True)
    disabled_reason = fields.CharField(max_length=200, null=True)
    disabled_at = fields.DatetimeField(null=True)
    secret = fields.CharField(max_length=100)
    previous_secret = fields.CharField(max_length=100, null=True)
    previous_secret_expires_at = fields.DatetimeField(null=True)
    cursor = fields.BigIntField(default=0)
    failing_since = fields.DatetimeField(null=True)
    consecutive_failures = fields.IntField(default=0)
    breaker_open_until = fields.DatetimeField(null=True)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "webhook_endpoints"
        indexes = (("organization_id", "created_at", "id"),)


class WebhookDelivery(Model):
    """The delivery log: one row per attempt to send one event to one endpoint."""

    id = fields.BigIntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name=False, on_delete=fields.CASCADE
    )
    position = fields.BigIntField()
    event_type = fields.CharField(max_length=64)
    attempt = fields.IntField()  # 1-based per event
    outcome = fields.CharField(max_length=20)  # delivered|failed|timeout|refused|error
    http_status = fields.IntField(null=True)
    latency_ms = fields.IntField()
    response_excerpt = fields.CharField(max_length=1024, default="")
    error = fields.CharField(max_length=500, null=True)
    replay = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_deliveries"
        indexes = (("endpoint_id", "id"),)


class WebhookDeadLetter(Model):
    """An event an endpoint never accepted after every attempt. ``event`` keeps the
    exact JSON that was sent, so a replay works after the change log is pruned."""

    id = fields.BigIntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, on_delete=fields.CASCADE
    )
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name=False, on_delete=fields.CASCADE
    )
    position = fields.BigIntField()
    event_type = fields.CharField(max_length=64)
    event: dict[str, Any] = fields.JSONField()
    attempts = fields.IntField()
    last_error = fields.CharField(max_length=500)
    status = fields.CharField(max_length=20, default="dead")  # dead|replay_requested|replayed
    replayed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_dead_letters"
        unique_together = (("endpoint", "position"),)
        indexes = (("endpoint_id", "id"),)
