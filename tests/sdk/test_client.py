"""The SDK against a live gateway: typed calls, errors, If-Match, request ids, both clients."""

from __future__ import annotations

import uuid

import pytest
from gateway_client import (
    AsyncClient,
    Client,
    Conflict,
    Done,
    InvalidArgument,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from gateway_client.models import Customer, CustomerInput, Order, OrderStatus, Product

from tests.sdk.live import LiveGateway


def client(gw: LiveGateway, **kw: object) -> Client:
    return Client(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret, **kw)  # type: ignore[arg-type]


def _email() -> str:
    return f"{uuid.uuid4().hex[:10]}@example.com"


def test_crud_and_actions_are_typed_and_carry_request_ids(gw: LiveGateway) -> None:
    with client(gw) as sdk:
        made = sdk.customers.create(CustomerInput(name="Ada", email=_email()))
        assert isinstance(made, Customer)
        assert made.meta.status == 201
        assert made.meta.request_id
        fetched = sdk.customers.get(made.id)
        assert fetched == made
        assert fetched.meta.request_id
        assert fetched.meta.request_id != made.meta.request_id
        assert fetched.meta.etag == f'"v{made.version}"'

        product = sdk.products.create(
            {"sku": f"SKU-{uuid.uuid4().hex[:8]}", "name": "Pen", "price_cents": 250, "stock": 10}
        )
        assert isinstance(product, Product)
        order = sdk.orders.create(
            {"customer_id": made.id, "items": [{"product_id": product.id, "quantity": 2}]}
        )
        assert isinstance(order, Order)
        assert order.status is OrderStatus.PENDING
        assert order.total_cents == 500
        paid = sdk.orders.pay(order.id)
        assert paid.status is OrderStatus.PAID
        assert paid.meta.request_id
        with pytest.raises(InvalidTransition) as failed:
            sdk.orders.pay(order.id)
        assert isinstance(failed.value, Conflict)
        assert failed.value.code == "INVALID_TRANSITION"
        assert failed.value.request_id

        listed = sdk.customers.list_orders(made.id)
        assert [o.id for o in listed] == [order.id]
        batch = sdk.orders.batch_get(ids=str(order.id))
        assert [o.id for o in batch] == [order.id]
        assert batch.meta.request_id

        assert sdk.orders.cancel(order.id).status is OrderStatus.CANCELLED
        deleted = sdk.orders.delete(order.id)
        assert isinstance(deleted, Done)
        assert deleted.meta.status == 204
        assert deleted.meta.request_id
        with pytest.raises(NotFound) as missing:
            sdk.orders.get(order.id)
        assert missing.value.status == 404
        assert missing.value.request_id


def test_if_match_refuses_a_stale_update_with_a_typed_error(gw: LiveGateway) -> None:
    with client(gw) as sdk:
        first = sdk.customers.create({"name": "Grace", "email": _email()})
        changed = sdk.customers.update(first.id, {"name": "Grace H."}, if_match=first)
        assert changed.version == first.version + 1
        with pytest.raises(PreconditionFailed) as stale:
            sdk.customers.update(first.id, {"name": "Lost update"}, if_match=first)
        assert stale.value.code == "PRECONDITION_FAILED"
        assert stale.value.status == 412
        assert stale.value.request_id
        # An ETag string works too, and the current one goes through.
        again = sdk.customers.replace(
            first.id, {"name": "Grace Hopper", "email": first.email}, if_match=changed.meta.etag
        )
        assert again.name == "Grace Hopper"
        assert sdk.customers.get(first.id).name == "Grace Hopper"


def test_errors_carry_code_field_errors_and_request_id(gw: LiveGateway) -> None:
    with client(gw) as sdk:
        email = _email()
        sdk.customers.create({"name": "One", "email": email})
        with pytest.raises(Conflict) as duplicate:
            sdk.customers.create({"name": "Two", "email": email})
        assert duplicate.value.code == "CONFLICT"
        with pytest.raises(InvalidArgument) as bad:
            list(sdk.customers.list(filter="nosuchfield = 1"))
        assert bad.value.code == "INVALID_ARGUMENT"
        assert bad.value.errors
        assert bad.value.errors[0].loc == ("query", "filter")
        assert bad.value.request_id
        # A body the client's model accepts (no e-mail check here) and the gateway refuses.
        with pytest.raises(ValidationFailed) as invalid:
            sdk.customers.create({"name": "x", "email": "not-an-email"})
        assert invalid.value.code == "VALIDATION_ERROR"
        assert [issue.loc[-1] for issue in invalid.value.errors] == ["email"]


async def test_the_async_client_makes_the_same_calls(gw: LiveGateway) -> None:
    async with AsyncClient(
        gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret
    ) as sdk:
        made = await sdk.customers.create({"name": "Async", "email": _email()})
        assert made.meta.request_id
        got = await sdk.customers.get(made.id)
        assert got == made
        with pytest.raises(PreconditionFailed):
            await sdk.customers.update(made.id, {"name": "x"}, if_match='"v999"')
        names = [c.name async for c in sdk.customers.list(filter=f'email = "{made.email}"')]
        assert names == ["Async"]


def test_a_resource_added_later_is_there_with_no_hand_edits(gw: LiveGateway) -> None:
    """Webhook endpoints came after the SDK: generated from the document alone."""
    hooks = gw.hooks
    with Client(gw.url, client_id=hooks.client_id, client_secret=hooks.client_secret) as sdk:
        made = sdk.webhook_endpoints.create(
            {"url": "http://127.0.0.1:9/hook", "topics": ["orders"], "filter": "status = paid"}
        )
        assert made.secret is not None
        assert made.secret.startswith("whsec_")
        assert made.meta.request_id
        rotated = sdk.webhook_endpoints.rotate_secret(made.id, if_match=made)
        assert rotated.secret not in (None, made.secret)
        listed = [e for e in sdk.webhook_endpoints.list() if e.id == made.id]
        assert [e.secret for e in listed] == [None]
        with pytest.raises(PreconditionFailed):
            sdk.webhook_endpoints.update(made.id, {"enabled": False}, if_match=made)
        assert sdk.webhook_endpoints.delete(made.id).meta.status == 204
