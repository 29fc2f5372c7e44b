"""Generated from the OpenAPI document by ``.venv/bin/python sdk/python/generate.py``: do not edit."""

# ruff: noqa: E501  (descriptions are the document's, unwrapped)

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from gateway_client import _parse
from gateway_client._base import ApiModel, Done, ItemList, Page
from gateway_client._core import Call, Plan
from gateway_client._resource import (
    AsyncResource,
    AsyncRunner,
    SyncResource,
    SyncRunner,
    etag,
    headers,
    query,
    to_json,
)
from gateway_client.filters import Filter
from gateway_client.models import (
    ApiKey,
    ApiKeyInput,
    AuditEvent,
    Customer,
    CustomerInput,
    CustomerPatch,
    IssueEventTicketResult,
    NewApiKey,
    Order,
    OrderActivity,
    OrderInput,
    OrderPatch,
    OrderUpdate,
    Product,
    ProductInput,
    ProductPatch,
    SalesBucket,
    Supplier,
    SupplierInput,
    SupplierPatch,
    WebhookDeadLetter,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointInput,
    WebhookEndpointPatch,
    WebhookReplay,
)
from gateway_client.paging import AsyncPager, Pager


def _batch_get_orders(*, ids: str) -> Call[ItemList[Order]]:
    return Call(
        Plan("GET", "/orders:batchGet", params=query(ids=ids), retry_safe=True),
        _parse.many(Order, False),
    )


def _list_orders(
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    expand: str | None = None,
    page_token: str | None = None,
) -> Call[Page[Order]]:
    return Call(
        Plan(
            "GET",
            "/orders",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                expand=expand,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(Order, fields is not None),
    )


def _create_order(
    body: OrderInput | Mapping[str, Any], *, idempotency_key: str | None = None
) -> Call[Order]:
    return Call(
        Plan(
            "POST",
            "/orders",
            headers=headers(**{"Idempotency-Key": idempotency_key}),
            json=to_json(OrderInput, body),
            retry_safe=True,
        ),
        _parse.one(Order, False),
    )


def _get_order(id: int, *, fields: str | None = None, expand: str | None = None) -> Call[Order]:
    return Call(
        Plan("GET", f"/orders/{id}", params=query(fields=fields, expand=expand), retry_safe=True),
        _parse.one(Order, fields is not None),
    )


def _update_order(
    id: int, body: OrderPatch | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Order]:
    return Call(
        Plan(
            "PATCH",
            f"/orders/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(OrderPatch, body),
        ),
        _parse.one(Order, False),
    )


def _replace_order(
    id: int, body: OrderUpdate | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Order]:
    return Call(
        Plan(
            "PUT",
            f"/orders/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(OrderUpdate, body),
            retry_safe=True,
        ),
        _parse.one(Order, False),
    )


def _delete_order(id: int, *, if_match: str | ApiModel | None = None) -> Call[Done]:
    return Call(
        Plan(
            "DELETE",
            f"/orders/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            retry_safe=True,
        ),
        _parse.done,
    )


def _pay_order(
    id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
) -> Call[Order]:
    return Call(
        Plan(
            "POST",
            f"/orders/{id}:pay",
            headers=headers(**{"If-Match": etag(if_match), "Idempotency-Key": idempotency_key}),
            retry_safe=True,
        ),
        _parse.one(Order, False),
    )


def _ship_order(
    id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
) -> Call[Order]:
    return Call(
        Plan(
            "POST",
            f"/orders/{id}:ship",
            headers=headers(**{"If-Match": etag(if_match), "Idempotency-Key": idempotency_key}),
            retry_safe=True,
        ),
        _parse.one(Order, False),
    )


def _deliver_order(
    id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
) -> Call[Order]:
    return Call(
        Plan(
            "POST",
            f"/orders/{id}:deliver",
            headers=headers(**{"If-Match": etag(if_match), "Idempotency-Key": idempotency_key}),
            retry_safe=True,
        ),
        _parse.one(Order, False),
    )


def _cancel_order(
    id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
) -> Call[Order]:
    return Call(
        Plan(
            "POST",
            f"/orders/{id}:cancel",
            headers=headers(**{"If-Match": etag(if_match), "Idempotency-Key": idempotency_key}),
            retry_safe=True,
        ),
        _parse.one(Order, False),
    )


def _list_customers(
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    page_token: str | None = None,
) -> Call[Page[Customer]]:
    return Call(
        Plan(
            "GET",
            "/customers",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(Customer, fields is not None),
    )


def _create_customer(
    body: CustomerInput | Mapping[str, Any], *, idempotency_key: str | None = None
) -> Call[Customer]:
    return Call(
        Plan(
            "POST",
            "/customers",
            headers=headers(**{"Idempotency-Key": idempotency_key}),
            json=to_json(CustomerInput, body),
            retry_safe=True,
        ),
        _parse.one(Customer, False),
    )


def _get_customer(id: int, *, fields: str | None = None) -> Call[Customer]:
    return Call(
        Plan("GET", f"/customers/{id}", params=query(fields=fields), retry_safe=True),
        _parse.one(Customer, fields is not None),
    )


def _update_customer(
    id: int, body: CustomerPatch | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Customer]:
    return Call(
        Plan(
            "PATCH",
            f"/customers/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(CustomerPatch, body),
        ),
        _parse.one(Customer, False),
    )


def _replace_customer(
    id: int, body: CustomerInput | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Customer]:
    return Call(
        Plan(
            "PUT",
            f"/customers/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(CustomerInput, body),
            retry_safe=True,
        ),
        _parse.one(Customer, False),
    )


def _delete_customer(id: int, *, if_match: str | ApiModel | None = None) -> Call[Done]:
    return Call(
        Plan(
            "DELETE",
            f"/customers/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            retry_safe=True,
        ),
        _parse.done,
    )


def _list_customer_orders(
    id: int,
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    expand: str | None = None,
    page_token: str | None = None,
) -> Call[Page[Order]]:
    return Call(
        Plan(
            "GET",
            f"/customers/{id}/orders",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                expand=expand,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(Order, fields is not None),
    )


def _list_products(
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    show_deleted: bool | None = None,
    expand: str | None = None,
    page_token: str | None = None,
) -> Call[Page[Product]]:
    return Call(
        Plan(
            "GET",
            "/products",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                show_deleted=show_deleted,
                expand=expand,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(Product, fields is not None),
    )


def _create_product(
    body: ProductInput | Mapping[str, Any], *, idempotency_key: str | None = None
) -> Call[Product]:
    return Call(
        Plan(
            "POST",
            "/products",
            headers=headers(**{"Idempotency-Key": idempotency_key}),
            json=to_json(ProductInput, body),
            retry_safe=True,
        ),
        _parse.one(Product, False),
    )


def _get_product(id: int, *, fields: str | None = None, expand: str | None = None) -> Call[Product]:
    return Call(
        Plan("GET", f"/products/{id}", params=query(fields=fields, expand=expand), retry_safe=True),
        _parse.one(Product, fields is not None),
    )


def _update_product(
    id: int, body: ProductPatch | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Product]:
    return Call(
        Plan(
            "PATCH",
            f"/products/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(ProductPatch, body),
        ),
        _parse.one(Product, False),
    )


def _replace_product(
    id: int, body: ProductInput | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Product]:
    return Call(
        Plan(
            "PUT",
            f"/products/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(ProductInput, body),
            retry_safe=True,
        ),
        _parse.one(Product, False),
    )


def _delete_product(id: int, *, if_match: str | ApiModel | None = None) -> Call[Done]:
    return Call(
        Plan(
            "DELETE",
            f"/products/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            retry_safe=True,
        ),
        _parse.done,
    )


def _undelete_product(
    id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
) -> Call[Product]:
    return Call(
        Plan(
            "POST",
            f"/products/{id}:undelete",
            headers=headers(**{"If-Match": etag(if_match), "Idempotency-Key": idempotency_key}),
            retry_safe=True,
        ),
        _parse.one(Product, False),
    )


def _list_suppliers(
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    page_token: str | None = None,
) -> Call[Page[Supplier]]:
    return Call(
        Plan(
            "GET",
            "/suppliers",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(Supplier, fields is not None),
    )


def _create_supplier(
    body: SupplierInput | Mapping[str, Any], *, idempotency_key: str | None = None
) -> Call[Supplier]:
    return Call(
        Plan(
            "POST",
            "/suppliers",
            headers=headers(**{"Idempotency-Key": idempotency_key}),
            json=to_json(SupplierInput, body),
            retry_safe=True,
        ),
        _parse.one(Supplier, False),
    )


def _get_supplier(id: int, *, fields: str | None = None) -> Call[Supplier]:
    return Call(
        Plan("GET", f"/suppliers/{id}", params=query(fields=fields), retry_safe=True),
        _parse.one(Supplier, fields is not None),
    )


def _update_supplier(
    id: int, body: SupplierPatch | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Supplier]:
    return Call(
        Plan(
            "PATCH",
            f"/suppliers/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(SupplierPatch, body),
        ),
        _parse.one(Supplier, False),
    )


def _replace_supplier(
    id: int, body: SupplierInput | Mapping[str, Any], *, if_match: str | ApiModel | None = None
) -> Call[Supplier]:
    return Call(
        Plan(
            "PUT",
            f"/suppliers/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(SupplierInput, body),
            retry_safe=True,
        ),
        _parse.one(Supplier, False),
    )


def _delete_supplier(id: int, *, if_match: str | ApiModel | None = None) -> Call[Done]:
    return Call(
        Plan(
            "DELETE",
            f"/suppliers/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            retry_safe=True,
        ),
        _parse.done,
    )


def _list_supplier_products(
    id: int,
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    show_deleted: bool | None = None,
    expand: str | None = None,
    page_token: str | None = None,
) -> Call[Page[Product]]:
    return Call(
        Plan(
            "GET",
            f"/suppliers/{id}/products",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                show_deleted=show_deleted,
                expand=expand,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(Product, fields is not None),
    )


def _list_webhook_endpoints(
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    page_token: str | None = None,
) -> Call[Page[WebhookEndpoint]]:
    return Call(
        Plan(
            "GET",
            "/webhook-endpoints",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(WebhookEndpoint, fields is not None),
    )


def _create_webhook_endpoint(
    body: WebhookEndpointInput | Mapping[str, Any], *, idempotency_key: str | None = None
) -> Call[WebhookEndpoint]:
    return Call(
        Plan(
            "POST",
            "/webhook-endpoints",
            headers=headers(**{"Idempotency-Key": idempotency_key}),
            json=to_json(WebhookEndpointInput, body),
            retry_safe=True,
        ),
        _parse.one(WebhookEndpoint, False),
    )


def _get_webhook_endpoint(id: int, *, fields: str | None = None) -> Call[WebhookEndpoint]:
    return Call(
        Plan("GET", f"/webhook-endpoints/{id}", params=query(fields=fields), retry_safe=True),
        _parse.one(WebhookEndpoint, fields is not None),
    )


def _update_webhook_endpoint(
    id: int,
    body: WebhookEndpointPatch | Mapping[str, Any],
    *,
    if_match: str | ApiModel | None = None,
) -> Call[WebhookEndpoint]:
    return Call(
        Plan(
            "PATCH",
            f"/webhook-endpoints/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(WebhookEndpointPatch, body),
        ),
        _parse.one(WebhookEndpoint, False),
    )


def _replace_webhook_endpoint(
    id: int,
    body: WebhookEndpointInput | Mapping[str, Any],
    *,
    if_match: str | ApiModel | None = None,
) -> Call[WebhookEndpoint]:
    return Call(
        Plan(
            "PUT",
            f"/webhook-endpoints/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            json=to_json(WebhookEndpointInput, body),
            retry_safe=True,
        ),
        _parse.one(WebhookEndpoint, False),
    )


def _delete_webhook_endpoint(id: int, *, if_match: str | ApiModel | None = None) -> Call[Done]:
    return Call(
        Plan(
            "DELETE",
            f"/webhook-endpoints/{id}",
            headers=headers(**{"If-Match": etag(if_match)}),
            retry_safe=True,
        ),
        _parse.done,
    )


def _rotate_secret_webhook_endpoint(
    id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
) -> Call[WebhookEndpoint]:
    return Call(
        Plan(
            "POST",
            f"/webhook-endpoints/{id}:rotateSecret",
            headers=headers(**{"If-Match": etag(if_match), "Idempotency-Key": idempotency_key}),
            retry_safe=True,
        ),
        _parse.one(WebhookEndpoint, False),
    )


def _sales_stats(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    granularity: Literal["day", "hour"] | None = None,
) -> Call[ItemList[SalesBucket]]:
    return Call(
        Plan(
            "GET",
            "/stats/sales",
            params=query(start=start, end=end, granularity=granularity),
            retry_safe=True,
        ),
        _parse.many(SalesBucket, False),
    )


def _order_activity(*, minutes: int | None = None) -> Call[OrderActivity]:
    return Call(
        Plan("GET", "/stats/order-activity", params=query(minutes=minutes), retry_safe=True),
        _parse.one(OrderActivity, False),
    )


def _create_api_key(body: ApiKeyInput | Mapping[str, Any]) -> Call[NewApiKey]:
    return Call(
        Plan("POST", "/api-keys", json=to_json(ApiKeyInput, body)), _parse.one(NewApiKey, False)
    )


def _list_api_keys(
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    page_token: str | None = None,
) -> Call[Page[ApiKey]]:
    return Call(
        Plan(
            "GET",
            "/api-keys",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(ApiKey, fields is not None),
    )


def _get_api_key(id: int) -> Call[ApiKey]:
    return Call(Plan("GET", f"/api-keys/{id}", retry_safe=True), _parse.one(ApiKey, False))


def _revoke_api_key(id: int) -> Call[Done]:
    return Call(Plan("DELETE", f"/api-keys/{id}", retry_safe=True), _parse.done)


def _list_audit_events(
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    page_token: str | None = None,
) -> Call[Page[AuditEvent]]:
    return Call(
        Plan(
            "GET",
            "/audit-events",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(AuditEvent, fields is not None),
    )


def _get_audit_event(id: int) -> Call[AuditEvent]:
    return Call(Plan("GET", f"/audit-events/{id}", retry_safe=True), _parse.one(AuditEvent, False))


def _list_webhook_endpoint_deliveries(
    id: int,
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    page_token: str | None = None,
) -> Call[Page[WebhookDelivery]]:
    return Call(
        Plan(
            "GET",
            f"/webhook-endpoints/{id}/deliveries",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(WebhookDelivery, fields is not None),
    )


def _list_webhook_endpoint_dead_letters(
    id: int,
    *,
    filter: str | Filter | None = None,
    order_by: str | None = None,
    page_size: int | None = None,
    fields: str | None = None,
    page_token: str | None = None,
) -> Call[Page[WebhookDeadLetter]]:
    return Call(
        Plan(
            "GET",
            f"/webhook-endpoints/{id}/dead-letters",
            params=query(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=page_token,
            ),
            retry_safe=True,
        ),
        _parse.page(WebhookDeadLetter, fields is not None),
    )


def _replay_webhook_dead_letter(id: int, letter: int) -> Call[WebhookDeadLetter]:
    return Call(
        Plan("POST", f"/webhook-endpoints/{id}/dead-letters/{letter}:replay"),
        _parse.one(WebhookDeadLetter, False),
    )


def _replay_webhook_dead_letters(id: int) -> Call[WebhookReplay]:
    return Call(
        Plan("POST", f"/webhook-endpoints/{id}:replayDeadLetters"), _parse.one(WebhookReplay, False)
    )


def _issue_event_ticket() -> Call[IssueEventTicketResult]:
    return Call(Plan("POST", "/events/tickets"), _parse.bare(IssueEventTicketResult))


class Orders(SyncResource):
    """/api/v1/orders"""

    def batch_get(self, *, ids: str) -> ItemList[Order]:
        """Get several orders at once (all or nothing)

        Requires the `orders:read` scope."""
        return self._client._run(_batch_get_orders(ids=ids))

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        expand: str | None = None,
    ) -> Pager[Order]:
        """List orders

        Requires the `orders:read` scope."""
        return self._pages(
            lambda token: _list_orders(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                expand=expand,
                page_token=token,
            )
        )

    def create(
        self, body: OrderInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Order:
        """Create an order

        Requires the `orders:write` scope."""
        return self._client._run(_create_order(body, idempotency_key=idempotency_key))

    def get(self, id: int, *, fields: str | None = None, expand: str | None = None) -> Order:
        """Get an order

        Requires the `orders:read` scope."""
        return self._client._run(_get_order(id, fields=fields, expand=expand))

    def update(
        self,
        id: int,
        body: OrderPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Order:
        """Update some fields of an order

        Requires the `orders:write` scope."""
        return self._client._run(_update_order(id, body, if_match=if_match))

    def replace(
        self,
        id: int,
        body: OrderUpdate | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Order:
        """Replace an order's writable fields

        Requires the `orders:write` scope."""
        return self._client._run(_replace_order(id, body, if_match=if_match))

    def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete an order

        Requires the `orders:write` scope."""
        return self._client._run(_delete_order(id, if_match=if_match))

    def pay(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Mark a pending order as paid

        Requires the `orders:write` scope."""
        return self._client._run(_pay_order(id, if_match=if_match, idempotency_key=idempotency_key))

    def ship(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Mark a paid order as shipped

        Requires the `orders:write` scope."""
        return self._client._run(
            _ship_order(id, if_match=if_match, idempotency_key=idempotency_key)
        )

    def deliver(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Mark a shipped order as delivered

        Requires the `orders:write` scope."""
        return self._client._run(
            _deliver_order(id, if_match=if_match, idempotency_key=idempotency_key)
        )

    def cancel(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Cancel a pending or paid order and return its stock

        Requires the `orders:write` scope."""
        return self._client._run(
            _cancel_order(id, if_match=if_match, idempotency_key=idempotency_key)
        )


class AsyncOrders(AsyncResource):
    """/api/v1/orders"""

    async def batch_get(self, *, ids: str) -> ItemList[Order]:
        """Get several orders at once (all or nothing)

        Requires the `orders:read` scope."""
        return await self._client._run(_batch_get_orders(ids=ids))

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        expand: str | None = None,
    ) -> AsyncPager[Order]:
        """List orders

        Requires the `orders:read` scope."""
        return self._pages(
            lambda token: _list_orders(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                expand=expand,
                page_token=token,
            )
        )

    async def create(
        self, body: OrderInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Order:
        """Create an order

        Requires the `orders:write` scope."""
        return await self._client._run(_create_order(body, idempotency_key=idempotency_key))

    async def get(self, id: int, *, fields: str | None = None, expand: str | None = None) -> Order:
        """Get an order

        Requires the `orders:read` scope."""
        return await self._client._run(_get_order(id, fields=fields, expand=expand))

    async def update(
        self,
        id: int,
        body: OrderPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Order:
        """Update some fields of an order

        Requires the `orders:write` scope."""
        return await self._client._run(_update_order(id, body, if_match=if_match))

    async def replace(
        self,
        id: int,
        body: OrderUpdate | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Order:
        """Replace an order's writable fields

        Requires the `orders:write` scope."""
        return await self._client._run(_replace_order(id, body, if_match=if_match))

    async def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete an order

        Requires the `orders:write` scope."""
        return await self._client._run(_delete_order(id, if_match=if_match))

    async def pay(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Mark a pending order as paid

        Requires the `orders:write` scope."""
        return await self._client._run(
            _pay_order(id, if_match=if_match, idempotency_key=idempotency_key)
        )

    async def ship(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Mark a paid order as shipped

        Requires the `orders:write` scope."""
        return await self._client._run(
            _ship_order(id, if_match=if_match, idempotency_key=idempotency_key)
        )

    async def deliver(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Mark a shipped order as delivered

        Requires the `orders:write` scope."""
        return await self._client._run(
            _deliver_order(id, if_match=if_match, idempotency_key=idempotency_key)
        )

    async def cancel(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Order:
        """Cancel a pending or paid order and return its stock

        Requires the `orders:write` scope."""
        return await self._client._run(
            _cancel_order(id, if_match=if_match, idempotency_key=idempotency_key)
        )


class Customers(SyncResource):
    """/api/v1/customers"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> Pager[Customer]:
        """List customers

        Requires the `customers:read` scope."""
        return self._pages(
            lambda token: _list_customers(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def create(
        self, body: CustomerInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Customer:
        """Create a customer

        Requires the `customers:write` scope."""
        return self._client._run(_create_customer(body, idempotency_key=idempotency_key))

    def get(self, id: int, *, fields: str | None = None) -> Customer:
        """Get a customer

        Requires the `customers:read` scope."""
        return self._client._run(_get_customer(id, fields=fields))

    def update(
        self,
        id: int,
        body: CustomerPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Customer:
        """Update some fields of a customer

        Requires the `customers:write` scope."""
        return self._client._run(_update_customer(id, body, if_match=if_match))

    def replace(
        self,
        id: int,
        body: CustomerInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Customer:
        """Replace a customer's writable fields

        Requires the `customers:write` scope."""
        return self._client._run(_replace_customer(id, body, if_match=if_match))

    def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a customer

        Requires the `customers:write` scope."""
        return self._client._run(_delete_customer(id, if_match=if_match))

    def list_orders(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        expand: str | None = None,
    ) -> Pager[Order]:
        """List a customer's orders

        Requires the `orders:read` scope."""
        return self._pages(
            lambda token: _list_customer_orders(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                expand=expand,
                page_token=token,
            )
        )


class AsyncCustomers(AsyncResource):
    """/api/v1/customers"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> AsyncPager[Customer]:
        """List customers

        Requires the `customers:read` scope."""
        return self._pages(
            lambda token: _list_customers(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    async def create(
        self, body: CustomerInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Customer:
        """Create a customer

        Requires the `customers:write` scope."""
        return await self._client._run(_create_customer(body, idempotency_key=idempotency_key))

    async def get(self, id: int, *, fields: str | None = None) -> Customer:
        """Get a customer

        Requires the `customers:read` scope."""
        return await self._client._run(_get_customer(id, fields=fields))

    async def update(
        self,
        id: int,
        body: CustomerPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Customer:
        """Update some fields of a customer

        Requires the `customers:write` scope."""
        return await self._client._run(_update_customer(id, body, if_match=if_match))

    async def replace(
        self,
        id: int,
        body: CustomerInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Customer:
        """Replace a customer's writable fields

        Requires the `customers:write` scope."""
        return await self._client._run(_replace_customer(id, body, if_match=if_match))

    async def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a customer

        Requires the `customers:write` scope."""
        return await self._client._run(_delete_customer(id, if_match=if_match))

    def list_orders(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        expand: str | None = None,
    ) -> AsyncPager[Order]:
        """List a customer's orders

        Requires the `orders:read` scope."""
        return self._pages(
            lambda token: _list_customer_orders(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                expand=expand,
                page_token=token,
            )
        )


class Products(SyncResource):
    """/api/v1/products"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        show_deleted: bool | None = None,
        expand: str | None = None,
    ) -> Pager[Product]:
        """List products

        Requires the `products:read` scope."""
        return self._pages(
            lambda token: _list_products(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                show_deleted=show_deleted,
                expand=expand,
                page_token=token,
            )
        )

    def create(
        self, body: ProductInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Product:
        """Create a product

        Requires the `products:write` scope."""
        return self._client._run(_create_product(body, idempotency_key=idempotency_key))

    def get(self, id: int, *, fields: str | None = None, expand: str | None = None) -> Product:
        """Get a product

        Requires the `products:read` scope."""
        return self._client._run(_get_product(id, fields=fields, expand=expand))

    def update(
        self,
        id: int,
        body: ProductPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Product:
        """Update some fields of a product

        Requires the `products:write` scope."""
        return self._client._run(_update_product(id, body, if_match=if_match))

    def replace(
        self,
        id: int,
        body: ProductInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Product:
        """Replace a product's writable fields

        Requires the `products:write` scope."""
        return self._client._run(_replace_product(id, body, if_match=if_match))

    def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a product

        Requires the `products:write` scope."""
        return self._client._run(_delete_product(id, if_match=if_match))

    def undelete(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Product:
        """Restore a soft-deleted product

        Requires the `products:write` scope."""
        return self._client._run(
            _undelete_product(id, if_match=if_match, idempotency_key=idempotency_key)
        )


class AsyncProducts(AsyncResource):
    """/api/v1/products"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        show_deleted: bool | None = None,
        expand: str | None = None,
    ) -> AsyncPager[Product]:
        """List products

        Requires the `products:read` scope."""
        return self._pages(
            lambda token: _list_products(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                show_deleted=show_deleted,
                expand=expand,
                page_token=token,
            )
        )

    async def create(
        self, body: ProductInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Product:
        """Create a product

        Requires the `products:write` scope."""
        return await self._client._run(_create_product(body, idempotency_key=idempotency_key))

    async def get(
        self, id: int, *, fields: str | None = None, expand: str | None = None
    ) -> Product:
        """Get a product

        Requires the `products:read` scope."""
        return await self._client._run(_get_product(id, fields=fields, expand=expand))

    async def update(
        self,
        id: int,
        body: ProductPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Product:
        """Update some fields of a product

        Requires the `products:write` scope."""
        return await self._client._run(_update_product(id, body, if_match=if_match))

    async def replace(
        self,
        id: int,
        body: ProductInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Product:
        """Replace a product's writable fields

        Requires the `products:write` scope."""
        return await self._client._run(_replace_product(id, body, if_match=if_match))

    async def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a product

        Requires the `products:write` scope."""
        return await self._client._run(_delete_product(id, if_match=if_match))

    async def undelete(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> Product:
        """Restore a soft-deleted product

        Requires the `products:write` scope."""
        return await self._client._run(
            _undelete_product(id, if_match=if_match, idempotency_key=idempotency_key)
        )


class Suppliers(SyncResource):
    """/api/v1/suppliers"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> Pager[Supplier]:
        """List suppliers

        Requires the `suppliers:read` scope."""
        return self._pages(
            lambda token: _list_suppliers(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def create(
        self, body: SupplierInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Supplier:
        """Create a supplier

        Requires the `suppliers:write` scope."""
        return self._client._run(_create_supplier(body, idempotency_key=idempotency_key))

    def get(self, id: int, *, fields: str | None = None) -> Supplier:
        """Get a supplier

        Requires the `suppliers:read` scope."""
        return self._client._run(_get_supplier(id, fields=fields))

    def update(
        self,
        id: int,
        body: SupplierPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Supplier:
        """Update some fields of a supplier

        Requires the `suppliers:write` scope."""
        return self._client._run(_update_supplier(id, body, if_match=if_match))

    def replace(
        self,
        id: int,
        body: SupplierInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Supplier:
        """Replace a supplier's writable fields

        Requires the `suppliers:write` scope."""
        return self._client._run(_replace_supplier(id, body, if_match=if_match))

    def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a supplier

        Requires the `suppliers:write` scope."""
        return self._client._run(_delete_supplier(id, if_match=if_match))

    def list_products(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        show_deleted: bool | None = None,
        expand: str | None = None,
    ) -> Pager[Product]:
        """List a supplier's products

        Requires the `products:read` scope."""
        return self._pages(
            lambda token: _list_supplier_products(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                show_deleted=show_deleted,
                expand=expand,
                page_token=token,
            )
        )


class AsyncSuppliers(AsyncResource):
    """/api/v1/suppliers"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> AsyncPager[Supplier]:
        """List suppliers

        Requires the `suppliers:read` scope."""
        return self._pages(
            lambda token: _list_suppliers(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    async def create(
        self, body: SupplierInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Supplier:
        """Create a supplier

        Requires the `suppliers:write` scope."""
        return await self._client._run(_create_supplier(body, idempotency_key=idempotency_key))

    async def get(self, id: int, *, fields: str | None = None) -> Supplier:
        """Get a supplier

        Requires the `suppliers:read` scope."""
        return await self._client._run(_get_supplier(id, fields=fields))

    async def update(
        self,
        id: int,
        body: SupplierPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Supplier:
        """Update some fields of a supplier

        Requires the `suppliers:write` scope."""
        return await self._client._run(_update_supplier(id, body, if_match=if_match))

    async def replace(
        self,
        id: int,
        body: SupplierInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> Supplier:
        """Replace a supplier's writable fields

        Requires the `suppliers:write` scope."""
        return await self._client._run(_replace_supplier(id, body, if_match=if_match))

    async def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a supplier

        Requires the `suppliers:write` scope."""
        return await self._client._run(_delete_supplier(id, if_match=if_match))

    def list_products(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
        show_deleted: bool | None = None,
        expand: str | None = None,
    ) -> AsyncPager[Product]:
        """List a supplier's products

        Requires the `products:read` scope."""
        return self._pages(
            lambda token: _list_supplier_products(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                show_deleted=show_deleted,
                expand=expand,
                page_token=token,
            )
        )


class WebhookEndpoints(SyncResource):
    """/api/v1/webhook-endpoints"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> Pager[WebhookEndpoint]:
        """List webhook endpoints

        Requires the `webhooks:admin` scope."""
        return self._pages(
            lambda token: _list_webhook_endpoints(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def create(
        self, body: WebhookEndpointInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        """Create a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return self._client._run(_create_webhook_endpoint(body, idempotency_key=idempotency_key))

    def get(self, id: int, *, fields: str | None = None) -> WebhookEndpoint:
        """Get a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return self._client._run(_get_webhook_endpoint(id, fields=fields))

    def update(
        self,
        id: int,
        body: WebhookEndpointPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> WebhookEndpoint:
        """Update some fields of a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return self._client._run(_update_webhook_endpoint(id, body, if_match=if_match))

    def replace(
        self,
        id: int,
        body: WebhookEndpointInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> WebhookEndpoint:
        """Replace a webhook endpoint's writable fields

        Requires the `webhooks:admin` scope."""
        return self._client._run(_replace_webhook_endpoint(id, body, if_match=if_match))

    def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return self._client._run(_delete_webhook_endpoint(id, if_match=if_match))

    def rotate_secret(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        """Make a new signing secret, returned once in `secret`; the previous one keeps signing for
        24 hours

        Requires the `webhooks:admin` scope."""
        return self._client._run(
            _rotate_secret_webhook_endpoint(id, if_match=if_match, idempotency_key=idempotency_key)
        )

    def list_deliveries(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> Pager[WebhookDelivery]:
        """List a webhook endpoint's deliveries, newest first (filter on attempt, created_at,
        event_type, http_status, id, outcome, position, replay)

        Requires the `webhooks:admin` scope."""
        return self._pages(
            lambda token: _list_webhook_endpoint_deliveries(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def list_dead_letters(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> Pager[WebhookDeadLetter]:
        """List a webhook endpoint's dead letters, newest first (filter on created_at, event_type,
        id, position, status)

        Requires the `webhooks:admin` scope."""
        return self._pages(
            lambda token: _list_webhook_endpoint_dead_letters(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def replay_webhook_dead_letter(self, id: int, letter: int) -> WebhookDeadLetter:
        """Send a dead letter again (status replay_requested until the dispatcher has)

        Requires the `webhooks:admin` scope."""
        return self._client._run(_replay_webhook_dead_letter(id, letter))

    def replay_webhook_dead_letters(self, id: int) -> WebhookReplay:
        """Send every dead letter of a webhook endpoint again

        Requires the `webhooks:admin` scope."""
        return self._client._run(_replay_webhook_dead_letters(id))


class AsyncWebhookEndpoints(AsyncResource):
    """/api/v1/webhook-endpoints"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> AsyncPager[WebhookEndpoint]:
        """List webhook endpoints

        Requires the `webhooks:admin` scope."""
        return self._pages(
            lambda token: _list_webhook_endpoints(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    async def create(
        self, body: WebhookEndpointInput | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        """Create a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return await self._client._run(
            _create_webhook_endpoint(body, idempotency_key=idempotency_key)
        )

    async def get(self, id: int, *, fields: str | None = None) -> WebhookEndpoint:
        """Get a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return await self._client._run(_get_webhook_endpoint(id, fields=fields))

    async def update(
        self,
        id: int,
        body: WebhookEndpointPatch | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> WebhookEndpoint:
        """Update some fields of a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return await self._client._run(_update_webhook_endpoint(id, body, if_match=if_match))

    async def replace(
        self,
        id: int,
        body: WebhookEndpointInput | Mapping[str, Any],
        *,
        if_match: str | ApiModel | None = None,
    ) -> WebhookEndpoint:
        """Replace a webhook endpoint's writable fields

        Requires the `webhooks:admin` scope."""
        return await self._client._run(_replace_webhook_endpoint(id, body, if_match=if_match))

    async def delete(self, id: int, *, if_match: str | ApiModel | None = None) -> Done:
        """Delete a webhook endpoint

        Requires the `webhooks:admin` scope."""
        return await self._client._run(_delete_webhook_endpoint(id, if_match=if_match))

    async def rotate_secret(
        self, id: int, *, if_match: str | ApiModel | None = None, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        """Make a new signing secret, returned once in `secret`; the previous one keeps signing for
        24 hours

        Requires the `webhooks:admin` scope."""
        return await self._client._run(
            _rotate_secret_webhook_endpoint(id, if_match=if_match, idempotency_key=idempotency_key)
        )

    def list_deliveries(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> AsyncPager[WebhookDelivery]:
        """List a webhook endpoint's deliveries, newest first (filter on attempt, created_at,
        event_type, http_status, id, outcome, position, replay)

        Requires the `webhooks:admin` scope."""
        return self._pages(
            lambda token: _list_webhook_endpoint_deliveries(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def list_dead_letters(
        self,
        id: int,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> AsyncPager[WebhookDeadLetter]:
        """List a webhook endpoint's dead letters, newest first (filter on created_at, event_type,
        id, position, status)

        Requires the `webhooks:admin` scope."""
        return self._pages(
            lambda token: _list_webhook_endpoint_dead_letters(
                id,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    async def replay_webhook_dead_letter(self, id: int, letter: int) -> WebhookDeadLetter:
        """Send a dead letter again (status replay_requested until the dispatcher has)

        Requires the `webhooks:admin` scope."""
        return await self._client._run(_replay_webhook_dead_letter(id, letter))

    async def replay_webhook_dead_letters(self, id: int) -> WebhookReplay:
        """Send every dead letter of a webhook endpoint again

        Requires the `webhooks:admin` scope."""
        return await self._client._run(_replay_webhook_dead_letters(id))


class Stats(SyncResource):
    """/api/v1/stats"""

    def sales(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        granularity: Literal["day", "hour"] | None = None,
    ) -> ItemList[SalesBucket]:
        """Order count and revenue per day or hour

        Requires the `stats:read` scope."""
        return self._client._run(_sales_stats(start=start, end=end, granularity=granularity))

    def order_activity(self, *, minutes: int | None = None) -> OrderActivity:
        """Orders at a glance, as of a stream position (GraphQL orderActivity)

        Requires the `stats:read` scope."""
        return self._client._run(_order_activity(minutes=minutes))


class AsyncStats(AsyncResource):
    """/api/v1/stats"""

    async def sales(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        granularity: Literal["day", "hour"] | None = None,
    ) -> ItemList[SalesBucket]:
        """Order count and revenue per day or hour

        Requires the `stats:read` scope."""
        return await self._client._run(_sales_stats(start=start, end=end, granularity=granularity))

    async def order_activity(self, *, minutes: int | None = None) -> OrderActivity:
        """Orders at a glance, as of a stream position (GraphQL orderActivity)

        Requires the `stats:read` scope."""
        return await self._client._run(_order_activity(minutes=minutes))


class ApiKeys(SyncResource):
    """/api/v1/api-keys"""

    def create(self, body: ApiKeyInput | Mapping[str, Any]) -> NewApiKey:
        """Create an API key (the key is shown once)

        Requires the `api-keys:admin` scope."""
        return self._client._run(_create_api_key(body))

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> Pager[ApiKey]:
        """List API keys

        Requires the `api-keys:admin` scope."""
        return self._pages(
            lambda token: _list_api_keys(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def get(self, id: int) -> ApiKey:
        """Get an API key

        Requires the `api-keys:admin` scope."""
        return self._client._run(_get_api_key(id))

    def revoke(self, id: int) -> Done:
        """Revoke an API key

        Requires the `api-keys:admin` scope."""
        return self._client._run(_revoke_api_key(id))


class AsyncApiKeys(AsyncResource):
    """/api/v1/api-keys"""

    async def create(self, body: ApiKeyInput | Mapping[str, Any]) -> NewApiKey:
        """Create an API key (the key is shown once)

        Requires the `api-keys:admin` scope."""
        return await self._client._run(_create_api_key(body))

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> AsyncPager[ApiKey]:
        """List API keys

        Requires the `api-keys:admin` scope."""
        return self._pages(
            lambda token: _list_api_keys(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    async def get(self, id: int) -> ApiKey:
        """Get an API key

        Requires the `api-keys:admin` scope."""
        return await self._client._run(_get_api_key(id))

    async def revoke(self, id: int) -> Done:
        """Revoke an API key

        Requires the `api-keys:admin` scope."""
        return await self._client._run(_revoke_api_key(id))


class AuditEvents(SyncResource):
    """/api/v1/audit-events"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> Pager[AuditEvent]:
        """List audit events (newest first; filter on action, actor, id, occurred_at, request_id,
        target_id, target_type)

        Requires the `audit:read` scope."""
        return self._pages(
            lambda token: _list_audit_events(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    def get(self, id: int) -> AuditEvent:
        """Get an audit event

        Requires the `audit:read` scope."""
        return self._client._run(_get_audit_event(id))


class AsyncAuditEvents(AsyncResource):
    """/api/v1/audit-events"""

    def list(
        self,
        *,
        filter: str | Filter | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        fields: str | None = None,
    ) -> AsyncPager[AuditEvent]:
        """List audit events (newest first; filter on action, actor, id, occurred_at, request_id,
        target_id, target_type)

        Requires the `audit:read` scope."""
        return self._pages(
            lambda token: _list_audit_events(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                fields=fields,
                page_token=token,
            )
        )

    async def get(self, id: int) -> AuditEvent:
        """Get an audit event

        Requires the `audit:read` scope."""
        return await self._client._run(_get_audit_event(id))


class Realtime(SyncResource):
    """/api/v1/realtime"""

    def issue_event_ticket(self) -> IssueEventTicketResult:
        """Get a single-use stream ticket for EventSource

        Valid once, for 60 seconds, for the caller's Principal."""
        return self._client._run(_issue_event_ticket())


class AsyncRealtime(AsyncResource):
    """/api/v1/realtime"""

    async def issue_event_ticket(self) -> IssueEventTicketResult:
        """Get a single-use stream ticket for EventSource

        Valid once, for 60 seconds, for the caller's Principal."""
        return await self._client._run(_issue_event_ticket())


class SyncApi:
    """The resources, as attributes of the client."""

    orders: Orders
    customers: Customers
    products: Products
    suppliers: Suppliers
    webhook_endpoints: WebhookEndpoints
    stats: Stats
    api_keys: ApiKeys
    audit_events: AuditEvents
    realtime: Realtime

    def _attach(self, runner: SyncRunner) -> None:
        self.orders = Orders(runner)
        self.customers = Customers(runner)
        self.products = Products(runner)
        self.suppliers = Suppliers(runner)
        self.webhook_endpoints = WebhookEndpoints(runner)
        self.stats = Stats(runner)
        self.api_keys = ApiKeys(runner)
        self.audit_events = AuditEvents(runner)
        self.realtime = Realtime(runner)


class AsyncApi:
    """The resources, as attributes of the client."""

    orders: AsyncOrders
    customers: AsyncCustomers
    products: AsyncProducts
    suppliers: AsyncSuppliers
    webhook_endpoints: AsyncWebhookEndpoints
    stats: AsyncStats
    api_keys: AsyncApiKeys
    audit_events: AsyncAuditEvents
    realtime: AsyncRealtime

    def _attach(self, runner: AsyncRunner) -> None:
        self.orders = AsyncOrders(runner)
        self.customers = AsyncCustomers(runner)
        self.products = AsyncProducts(runner)
        self.suppliers = AsyncSuppliers(runner)
        self.webhook_endpoints = AsyncWebhookEndpoints(runner)
        self.stats = AsyncStats(runner)
        self.api_keys = AsyncApiKeys(runner)
        self.audit_events = AsyncAuditEvents(runner)
        self.realtime = AsyncRealtime(runner)
