"""Generated from the OpenAPI document by ``.venv/bin/python sdk/python/generate.py``: do not edit."""

# ruff: noqa: E501  (descriptions are the document's, unwrapped)

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from gateway_client._base import ApiModel, InputModel
from gateway_client.filters import (
    BoolField,
    DateTimeField,
    EnumField,
    IntField,
    TextField,
)


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OrderItem(ApiModel):
    id: int
    product_id: int
    quantity: int
    unit_price_cents: int = Field(description="The product's price when the order was placed.")


class Order(ApiModel):
    id: int
    customer_id: int
    status: OrderStatus
    total_cents: int
    note: str
    version: int
    created_at: datetime
    updated_at: datetime
    items: list[OrderItem] | None = Field(
        default=None,
        description="The order's lines: in the full view (get, batchGet, lists with `view=full` or `fields` naming `items`).",
    )


class OrderItemInput(InputModel):
    product_id: int = Field(ge=1, le=2147483647)
    quantity: int = Field(ge=1, le=10000)


class OrderInput(InputModel):
    """A new order: the total and unit prices are computed from current product prices."""

    customer_id: int = Field(ge=1, le=2147483647)
    items: list[OrderItemInput] = Field(min_length=1, max_length=100)
    note: str = Field(default="", max_length=2000)


class OrderPatch(InputModel):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    note: str | None = Field(default=None, max_length=2000)


class OrderUpdate(InputModel):
    """The writable fields of an existing order (status changes through its actions)."""

    note: str = Field(max_length=2000)


class Customer(ApiModel):
    id: int
    name: str
    email: str = Field(description="Unique per organization.")
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerInput(InputModel):
    """A customer as clients write it (create and full replace)."""

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=254)


class CustomerPatch(InputModel):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)


class Product(ApiModel):
    id: int
    sku: str = Field(description="Unique per organization.")
    name: str
    description: str
    price_cents: int = Field(description="Unit price in cents.")
    stock: int = Field(description="Units in stock; orders reserve them.")
    supplier_id: int | None = Field(description="Who the product is bought from (expand=supplier).")
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(description="Set while the product is soft-deleted.")


class ProductInput(InputModel):
    """A product as clients write it (create and full replace)."""

    sku: str = Field(
        pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Unique per organization."
    )
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10000)
    price_cents: int = Field(ge=0, le=100000000, description="Unit price in cents.")
    stock: int = Field(default=0, ge=0, le=1000000000)
    supplier_id: int | None = Field(default=None)


class ProductPatch(InputModel):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    sku: str | None = Field(
        default=None,
        pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Unique per organization.",
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    price_cents: int | None = Field(
        default=None, ge=0, le=100000000, description="Unit price in cents."
    )
    stock: int | None = Field(default=None, ge=0, le=1000000000)
    supplier_id: int | None = Field(default=None)


class Supplier(ApiModel):
    id: int
    name: str = Field(description="The supplier's trading name.")
    email: str = Field(description="Where purchase orders go; unique per organization.")
    country: str = Field(description="ISO 3166-1 alpha-2 country code.")
    version: int
    created_at: datetime
    updated_at: datetime


class SupplierInput(InputModel):
    """A supplier as clients write it (create and full replace)."""

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=254)
    country: str = Field(pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. DE.")


class SupplierPatch(InputModel):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    country: str | None = Field(
        default=None, pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. DE."
    )


class WebhookEndpoint(ApiModel):
    id: int
    url: str = Field(description="Where events are POSTed (https; http only to loopback).")
    description: str
    topics: list[str] = Field(description="The topics whose events are sent, e.g. orders.")
    filter: str = Field(
        description="AIP-160 filter on the events' objects (as the topics' list filters); empty: every event of the topics."
    )
    enabled: bool = Field(description="Set true to resume an endpoint and clear its failures.")
    disabled_reason: str | None = Field(description="Why it was disabled, when it was.")
    disabled_at: datetime | None
    secret: str | None = Field(
        description="The signing secret (whsec_...): only in the answers of create and rotateSecret, null everywhere else. Keep it: it is not shown again."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation still signs too."
    )
    cursor: int = Field(description="The change-log position of the last event handled.")
    failing_since: datetime | None = Field(description="Failing without a success since.")
    version: int
    created_at: datetime
    updated_at: datetime


class WebhookEndpointInput(InputModel):
    """A webhook endpoint as clients write it (create and full replace)."""

    url: str = Field(min_length=1, max_length=2048)
    topics: list[str] = Field(min_length=1, max_length=20, description="Topic names, e.g. orders.")
    filter: str = Field(default="", max_length=2000)
    description: str = Field(default="", max_length=500)
    enabled: bool = Field(default=True)


class WebhookEndpointPatch(InputModel):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    description: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    topics: list[str] | None = Field(
        default=None, min_length=1, max_length=20, description="Topic names, e.g. orders."
    )
    filter: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = Field(default=None)


class SalesBucket(ApiModel):
    start: datetime
    order_count: int
    revenue_cents: int


class StatusCount(ApiModel):
    status: str
    count: int


class MinuteBucket(ApiModel):
    start: datetime
    order_count: int


class OrderActivity(ApiModel):
    """The live dashboard's numbers (GraphQL ``orderActivity``), as of a stream position."""

    position: int = Field(description="The change log's head these numbers are as of.")
    as_of: datetime
    orders_today: int = Field(description="Orders created since 00:00 UTC, cancelled ones too.")
    revenue_today_cents: int = Field(
        description="The total of today's orders that were paid (paid, shipped, delivered)."
    )
    status_counts: list[StatusCount] = Field(description="Every status, zeros too.")
    per_minute: list[MinuteBucket] = Field(
        description="Orders created in each of the last `minutes` UTC minutes, the current last."
    )


class NewApiKey(ApiModel):
    id: int
    key_id: str = Field(description="public part of the key (gwk_<key_id>_...)")
    name: str
    scopes: list[str] = Field(description="what the key may do (as written when created)")
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    key: str = Field(description="the key itself: shown only in this response")


class ApiKeyInput(InputModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=13)
    expires_at: datetime | None = Field(default=None)


class ApiKey(ApiModel):
    id: int
    key_id: str = Field(description="public part of the key (gwk_<key_id>_...)")
    name: str
    scopes: list[str] = Field(description="what the key may do (as written when created)")
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class AuditEvent(ApiModel):
    id: int
    actor: str = Field(
        description="who: the caller's subject (`user:...`, `client:...`, `api-key:...`), `cli` for the gateway command, `system` for the gateway itself"
    )
    action: str = Field(description="what, e.g. `api_key.revoked`, `user.created`")
    target_type: str = Field(description="`api_key`, `user` or `oauth_client`")
    target_id: str = Field(description="the target's id (an OAuth client's `client_id`)")
    request_id: str | None = Field(
        description="the `X-Request-ID` of the request that made the change (none from the command line)"
    )
    details: dict[str, Any] = Field(description="what changed; never a secret")
    occurred_at: datetime


class WebhookDelivery(ApiModel):
    id: int
    position: int = Field(description="The event's change-log position (its webhook-id).")
    event_type: str = Field(description="e.g. order.created")
    attempt: int = Field(description="1 for the first try of this event, then 2, 3, ...")
    outcome: str = Field(description="delivered, failed, timeout, refused or error")
    http_status: int | None = Field(description="The receiver's status, when it answered.")
    latency_ms: int
    response_excerpt: str = Field(description="The first bytes of the receiver's answer.")
    error: str | None = Field(description="What went wrong, when something did.")
    replay: bool = Field(description="Whether this attempt sent a replayed dead letter.")
    created_at: datetime


class WebhookDeadLetter(ApiModel):
    id: int
    position: int = Field(description="The event's change-log position (its webhook-id).")
    event_type: str
    event: dict[str, Any] = Field(description="The event JSON that was sent (and is resent).")
    attempts: int
    last_error: str
    status: str = Field(description="dead, replay_requested or replayed")
    replayed_at: datetime | None
    created_at: datetime


class WebhookReplay(ApiModel):
    replay_requested: int = Field(description="How many dead letters will be sent again.")


class IssueEventTicketResult(ApiModel):
    ticket: str
    expires_in: int


class FieldProblem(ApiModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(ApiModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None
    errors: list[FieldProblem] | None = Field(default=None)


class ApiKeyFields:
    """Typed filter fields of ApiKey (see gateway_client.filters)."""

    id = IntField("id")
    key_id = TextField("key_id")
    name = TextField("name")
    created_by = TextField("created_by")
    created_at = DateTimeField("created_at")
    expires_at = DateTimeField("expires_at")
    revoked_at = DateTimeField("revoked_at")
    last_used_at = DateTimeField("last_used_at")


class AuditEventFields:
    """Typed filter fields of AuditEvent (see gateway_client.filters)."""

    id = IntField("id")
    actor = TextField("actor")
    action = TextField("action")
    target_type = TextField("target_type")
    target_id = TextField("target_id")
    request_id = TextField("request_id")
    occurred_at = DateTimeField("occurred_at")


class CustomerFields:
    """Typed filter fields of Customer (see gateway_client.filters)."""

    id = IntField("id")
    name = TextField("name")
    email = TextField("email")
    version = IntField("version")
    created_at = DateTimeField("created_at")
    updated_at = DateTimeField("updated_at")


class OrderFields:
    """Typed filter fields of Order (see gateway_client.filters)."""

    id = IntField("id")
    customer_id = IntField("customer_id")
    status = EnumField[OrderStatus]("status")
    total_cents = IntField("total_cents")
    note = TextField("note")
    version = IntField("version")
    created_at = DateTimeField("created_at")
    updated_at = DateTimeField("updated_at")


class ProductFields:
    """Typed filter fields of Product (see gateway_client.filters)."""

    id = IntField("id")
    sku = TextField("sku")
    name = TextField("name")
    description = TextField("description")
    price_cents = IntField("price_cents")
    stock = IntField("stock")
    supplier_id = IntField("supplier_id")
    version = IntField("version")
    created_at = DateTimeField("created_at")
    updated_at = DateTimeField("updated_at")
    deleted_at = DateTimeField("deleted_at")


class SupplierFields:
    """Typed filter fields of Supplier (see gateway_client.filters)."""

    id = IntField("id")
    name = TextField("name")
    email = TextField("email")
    country = TextField("country")
    version = IntField("version")
    created_at = DateTimeField("created_at")
    updated_at = DateTimeField("updated_at")


class WebhookDeadLetterFields:
    """Typed filter fields of WebhookDeadLetter (see gateway_client.filters)."""

    id = IntField("id")
    position = IntField("position")
    event_type = TextField("event_type")
    attempts = IntField("attempts")
    last_error = TextField("last_error")
    status = TextField("status")
    replayed_at = DateTimeField("replayed_at")
    created_at = DateTimeField("created_at")


class WebhookDeliveryFields:
    """Typed filter fields of WebhookDelivery (see gateway_client.filters)."""

    id = IntField("id")
    position = IntField("position")
    event_type = TextField("event_type")
    attempt = IntField("attempt")
    outcome = TextField("outcome")
    http_status = IntField("http_status")
    latency_ms = IntField("latency_ms")
    response_excerpt = TextField("response_excerpt")
    error = TextField("error")
    replay = BoolField("replay")
    created_at = DateTimeField("created_at")


class WebhookEndpointFields:
    """Typed filter fields of WebhookEndpoint (see gateway_client.filters)."""

    id = IntField("id")
    url = TextField("url")
    description = TextField("description")
    filter = TextField("filter")
    enabled = BoolField("enabled")
    disabled_reason = TextField("disabled_reason")
    disabled_at = DateTimeField("disabled_at")
    secret = TextField("secret")
    previous_secret_expires_at = DateTimeField("previous_secret_expires_at")
    cursor = IntField("cursor")
    failing_since = DateTimeField("failing_since")
    version = IntField("version")
    created_at = DateTimeField("created_at")
    updated_at = DateTimeField("updated_at")


__all__ = [
    "ApiKey",
    "ApiKeyFields",
    "ApiKeyInput",
    "AuditEvent",
    "AuditEventFields",
    "Customer",
    "CustomerFields",
    "CustomerInput",
    "CustomerPatch",
    "FieldProblem",
    "IssueEventTicketResult",
    "MinuteBucket",
    "NewApiKey",
    "Order",
    "OrderActivity",
    "OrderFields",
    "OrderInput",
    "OrderItem",
    "OrderItemInput",
    "OrderPatch",
    "OrderStatus",
    "OrderUpdate",
    "Problem",
    "Product",
    "ProductFields",
    "ProductInput",
    "ProductPatch",
    "SalesBucket",
    "StatusCount",
    "Supplier",
    "SupplierFields",
    "SupplierInput",
    "SupplierPatch",
    "WebhookDeadLetter",
    "WebhookDeadLetterFields",
    "WebhookDelivery",
    "WebhookDeliveryFields",
    "WebhookEndpoint",
    "WebhookEndpointFields",
    "WebhookEndpointInput",
    "WebhookEndpointPatch",
    "WebhookReplay",
]
