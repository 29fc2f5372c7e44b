"""Order rules in the data layer: placing, stock, the status machine, and its events."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from db import orders
from db.errors import (
    Conflict,
    InsufficientStock,
    InvalidArgument,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ValidationFailed,
)
from db.events import to_snapshot
from db.models import Order, OrderItem, OrderStatus
from tests.factories import (
    PATH_TO,
    db_state,
    events_of,
    make_customer,
    make_order,
    make_order_in,
    make_product,
    order_input,
    stock_of,
)

ACTIONS: tuple[orders.Action, ...] = ("pay", "ship", "deliver", "cancel")
ALLOWED = {
    ("pending", "pay"): "paid",
    ("paid", "ship"): "shipped",
    ("shipped", "deliver"): "delivered",
    ("pending", "cancel"): "cancelled",
    ("paid", "cancel"): "cancelled",
}
MATRIX = [(s.value, a) for s in OrderStatus for a in ACTIONS]


def event_types(events: list[Any]) -> Counter[str]:
    return Counter(e.type for e in events)


# --- placing ----------------------------------------------------------------------------


async def test_place_order_computes_total_from_current_prices_and_reserves_stock(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    cheap = await make_product(p, price_cents=250, stock=10)
    dear = await make_product(p, price_cents=1999, stock=5)

    row = await make_order(p, customer["id"], [(cheap["id"], 3), (dear["id"], 2)], note="gift")

    assert row["status"] == "pending"
    assert row["customer_id"] == customer["id"]
    assert row["note"] == "gift"
    assert row["version"] == 1
    assert row["total_cents"] == 3 * 250 + 2 * 1999
    items = {i["product_id"]: i for i in row["items"]}
    assert {k: (v["quantity"], v["unit_price_cents"]) for k, v in items.items()} == {
        cheap["id"]: (3, 250),
        dear["id"]: (2, 1999),
    }
    assert await stock_of(cheap["id"]) == 7
    assert await stock_of(dear["id"]) == 3
    assert await orders.get_order(p, row["id"]) == row


async def test_price_change_after_placing_does_not_change_the_order(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    product = await make_product(p, price_cents=500)
    first = await make_order(p, customer["id"], [(product["id"], 2)])

    from db.products import ProductPatch, update_product

    await update_product(p, product["id"], ProductPatch(price_cents=700))
    second = await make_order(p, customer["id"], [(product["id"], 2)])

    assert (await orders.get_order(p, first["id"]))["total_cents"] == 1000
    assert first["items"][0]["unit_price_cents"] == 500
    assert second["total_cents"] == 1400
    assert second["items"][0]["unit_price_cents"] == 700


async def test_duplicate_product_lines_are_merged(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    a = await make_product(p, price_cents=100, stock=10)
    b = await make_product(p, price_cents=10, stock=10)

    row = await make_order(p, customer["id"], [(b["id"], 1), (a["id"], 2), (b["id"], 4)])

    assert [(i["product_id"], i["quantity"]) for i in row["items"]] == sorted(
        [(a["id"], 2), (b["id"], 5)]
    )
    assert row["total_cents"] == 2 * 100 + 5 * 10
    assert await OrderItem.filter(order_id=row["id"]).count() == 2
    assert await stock_of(a["id"]) == 8
    assert await stock_of(b["id"]) == 5


async def test_place_order_records_created_event_and_stock_events(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    a = await make_product(p, stock=4)
    b = await make_product(p, stock=4)
    before = await events_of(tenant.id)

    row = await make_order(p, customer["id"], [(a["id"], 1), (b["id"], 2)])

    new = await events_of(tenant.id, after=before[-1].id)
    assert event_types(new) == {"order.created": 1, "product.updated": 2}
    created = next(e for e in new if e.type == "order.created")
    assert created.resource == "order"
    assert created.resource_id == str(row["id"])
    assert created.actor == p.subject
    assert created.organization_id == tenant.id  # type: ignore[attr-defined]
    assert created.snapshot == to_snapshot(row)
    stock_events = {e.resource_id: e.snapshot for e in new if e.type == "product.updated"}
    assert stock_events[str(a["id"])]["stock"] == 3
    assert stock_events[str(b["id"])]["stock"] == 2


# --- rejected orders change nothing ------------------------------------------------------


async def test_unknown_customer_is_a_validation_error_on_customer_id(tenant, other_tenant):
    p = tenant.owner
    product = await make_product(p)
    foreign = await make_customer(other_tenant.owner)
    before = await db_state(tenant.id)

    for customer_id in (999_999, foreign["id"]):
        with pytest.raises(ValidationFailed) as exc:
            await make_order(p, customer_id, [(product["id"], 1)])
        assert exc.value.code == "VALIDATION_ERROR"
        assert [e.loc for e in exc.value.errors] == [("body", "customer_id")]
        assert exc.value.errors[0].type == "not_found"

    assert await db_state(tenant.id) == before


async def test_deleted_unknown_or_foreign_products_are_validation_errors_per_line(
    tenant, other_tenant
):
    from db.products import delete_product

    p = tenant.owner
    customer = await make_customer(p)
    good = await make_product(p, stock=5)
    deleted = await make_product(p, stock=5)
    await delete_product(p, deleted["id"])
    foreign = await make_product(other_tenant.owner, stock=5)
    before = await db_state(tenant.id)
    foreign_before = await db_state(other_tenant.id)

    with pytest.raises(ValidationFailed) as exc:
        await make_order(
            p,
            customer["id"],
            [(good["id"], 1), (deleted["id"], 1), (888_888, 1), (foreign["id"], 1)],
        )

    assert [e.loc for e in exc.value.errors] == [
        ("body", "items", 1, "product_id"),
        ("body", "items", 2, "product_id"),
        ("body", "items", 3, "product_id"),
    ]
    assert {e.type for e in exc.value.errors} == {"not_found"}
    assert await db_state(tenant.id) == before
    assert await db_state(other_tenant.id) == foreign_before


async def test_insufficient_stock_changes_nothing(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    plenty = await make_product(p, stock=5)  # reserved first (lower id) ...
    scarce = await make_product(p, stock=1)  # ... then this line fails
    before = await db_state(tenant.id)

    with pytest.raises(InsufficientStock) as exc:
        await make_order(p, customer["id"], [(plenty["id"], 2), (scarce["id"], 2)])

    assert exc.value.code == "INSUFFICIENT_STOCK"
    assert isinstance(exc.value, Conflict)
    assert str(scarce["id"]) in exc.value.detail
    after = await db_state(tenant.id)
    assert after == before
    assert await stock_of(plenty["id"]) == 5
    assert await stock_of(scarce["id"]) == 1
    assert after["orders"] == []
    assert after["items"] == []


async def test_total_beyond_the_column_range_is_a_validation_error(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    dear = await make_product(p, price_cents=100_000_000, stock=100)
    before = await db_state(tenant.id)
    with pytest.raises(ValidationFailed) as exc:
        await make_order(p, customer["id"], [(dear["id"], 22)])  # 2.2e9 > 2**31 - 1
    assert [e.loc for e in exc.value.errors] == [("body", "items")]
    assert await db_state(tenant.id) == before
    row = await make_order(p, customer["id"], [(dear["id"], 21)])  # 2.1e9 fits
    assert row["total_cents"] == 2_100_000_000


async def test_exact_stock_can_be_ordered_and_then_none_is_left(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    product = await make_product(p, stock=3)
    await make_order(p, customer["id"], [(product["id"], 3)])
    assert await stock_of(product["id"]) == 0
    with pytest.raises(InsufficientStock):
        await make_order(p, customer["id"], [(product["id"], 1)])


async def test_merged_lines_are_checked_against_stock_as_one(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    product = await make_product(p, stock=3)
    with pytest.raises(InsufficientStock):
        await make_order(p, customer["id"], [(product["id"], 2), (product["id"], 2)])
    assert await stock_of(product["id"]) == 3


async def test_oversell_race_places_exactly_the_stock(tenant):
    """50 concurrent orders of 1 unit against a stock of 10: exactly 10 win."""
    p = tenant.owner
    customer = await make_customer(p)
    product = await make_product(p, stock=10, price_cents=300)
    data = order_input(customer["id"], [(product["id"], 1)])

    results = await asyncio.gather(
        *(orders.place_order(p, data) for _ in range(50)), return_exceptions=True
    )

    placed = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, InsufficientStock)]
    unexpected = [r for r in results if not isinstance(r, dict | InsufficientStock)]
    assert unexpected == []
    assert len(placed) == 10
    assert len(refused) == 40
    assert await stock_of(product["id"]) == 0
    assert await Order.filter(organization_id=tenant.id).count() == 10
    assert len({r["id"] for r in placed}) == 10
    assert all(r["total_cents"] == 300 for r in placed)
    events = await events_of(tenant.id)
    assert event_types(events)["order.created"] == 10


# --- the status machine -------------------------------------------------------------------


async def test_happy_path_pending_paid_shipped_delivered(tenant):
    p = tenant.owner
    row = await make_order_in(p, "pending")
    start = (await events_of(tenant.id))[-1].id
    for action, status in (("pay", "paid"), ("ship", "shipped"), ("deliver", "delivered")):
        version = row["version"]
        row = await orders.transition_order(p, row["id"], action)
        assert row["status"] == status
        assert row["version"] == version + 1
    new = await events_of(tenant.id, after=start)
    assert [e.type for e in new] == ["order.paid", "order.shipped", "order.delivered"]
    assert [e.snapshot["status"] for e in new] == ["paid", "shipped", "delivered"]
    assert all(e.actor == p.subject and e.resource_id == str(row["id"]) for e in new)
    assert new[-1].snapshot == to_snapshot(row)


@pytest.mark.parametrize(("from_status", "action"), MATRIX)
async def test_transition_matrix(tenant, from_status, action):
    p = tenant.owner
    row = await make_order_in(p, from_status, quantity=2)
    product_id = row["items"][0]["product_id"]
    stock = await stock_of(product_id)
    start = (await events_of(tenant.id))[-1].id

    target = ALLOWED.get((from_status, action))
    if target is None:
        with pytest.raises(InvalidTransition) as exc:
            await orders.transition_order(p, row["id"], action)
        assert exc.value.code == "INVALID_TRANSITION"
        assert exc.value.status == 409
        assert from_status in exc.value.detail
        assert await orders.get_order(p, row["id"]) == row
        assert await events_of(tenant.id, after=start) == []
        assert await stock_of(product_id) == stock
        return

    moved = await orders.transition_order(p, row["id"], action)
    assert moved["status"] == target
    assert moved["version"] == row["version"] + 1
    new = await events_of(tenant.id, after=start)
    expected = {f"order.{target}": 1}
    if action == "cancel":
        expected["product.updated"] = 1
    assert event_types(new) == expected
    assert await stock_of(product_id) == stock + (2 if action == "cancel" else 0)


def test_matrix_covers_every_status_and_action():
    assert len(MATRIX) == len(OrderStatus) * len(ACTIONS) == 20
    assert set(PATH_TO) == {s.value for s in OrderStatus}
    assert {(s, a) for s, a in MATRIX if (s, a) in ALLOWED} == set(ALLOWED)


@pytest.mark.parametrize("from_status", ["pending", "paid"])
async def test_cancel_returns_stock_of_every_line(tenant, from_status):
    p = tenant.owner
    customer = await make_customer(p)
    a = await make_product(p, stock=10)
    b = await make_product(p, stock=10)
    row = await make_order(p, customer["id"], [(a["id"], 3), (b["id"], 4)])
    if from_status == "paid":
        row = await orders.transition_order(p, row["id"], "pay")
    assert (await stock_of(a["id"]), await stock_of(b["id"])) == (7, 6)
    start = (await events_of(tenant.id))[-1].id

    cancelled = await orders.transition_order(p, row["id"], "cancel")

    assert cancelled["status"] == "cancelled"
    assert (await stock_of(a["id"]), await stock_of(b["id"])) == (10, 10)
    new = await events_of(tenant.id, after=start)
    assert event_types(new) == {"order.cancelled": 1, "product.updated": 2}
    cancel_event = next(e for e in new if e.type == "order.cancelled")
    assert cancel_event.snapshot == to_snapshot(cancelled)
    assert cancel_event.actor == p.subject


async def test_cancel_from_shipped_is_an_invalid_transition_and_keeps_stock(tenant):
    p = tenant.owner
    row = await make_order_in(p, "shipped", quantity=3)
    product_id = row["items"][0]["product_id"]
    stock = await stock_of(product_id)
    with pytest.raises(InvalidTransition) as exc:
        await orders.transition_order(p, row["id"], "cancel")
    assert exc.value.code == "INVALID_TRANSITION"
    assert await stock_of(product_id) == stock
    assert (await orders.get_order(p, row["id"]))["status"] == "shipped"


async def test_cancelling_twice_returns_stock_once(tenant):
    p = tenant.owner
    row = await make_order_in(p, "pending", quantity=4)
    product_id = row["items"][0]["product_id"]
    await orders.transition_order(p, row["id"], "cancel")
    stock = await stock_of(product_id)
    with pytest.raises(InvalidTransition):
        await orders.transition_order(p, row["id"], "cancel")
    assert await stock_of(product_id) == stock


async def test_concurrent_cancels_return_stock_once(tenant):
    p = tenant.owner
    row = await make_order_in(p, "pending", quantity=4)
    product_id = row["items"][0]["product_id"]
    stock = await stock_of(product_id)
    results = await asyncio.gather(
        *(orders.transition_order(p, row["id"], "cancel") for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, InvalidTransition) for r in results) == 4
    assert await stock_of(product_id) == stock + 4


async def test_transition_checks_expected_version(tenant):
    p = tenant.owner
    row = await make_order_in(p, "pending")
    with pytest.raises(PreconditionFailed):
        await orders.transition_order(p, row["id"], "pay", expected_versions=[row["version"] + 1])
    assert (await orders.get_order(p, row["id"]))["status"] == "pending"
    paid = await orders.transition_order(p, row["id"], "pay", expected_versions=[row["version"]])
    assert paid["status"] == "paid"


async def test_unknown_action_and_unknown_order(tenant):
    p = tenant.owner
    row = await make_order_in(p, "pending")
    with pytest.raises(InvalidArgument):
        await orders.transition_order(p, row["id"], "refund")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await orders.transition_order(p, 999_999, "pay")


# --- update and delete ------------------------------------------------------------------


async def test_update_note_records_event_and_bumps_version(tenant):
    p = tenant.owner
    row = await make_order_in(p, "pending")
    start = (await events_of(tenant.id))[-1].id
    updated = await orders.update_order(p, row["id"], orders.OrderPatch(note="leave at door"))
    assert updated["note"] == "leave at door"
    assert updated["version"] == row["version"] + 1
    assert updated["status"] == "pending"
    new = await events_of(tenant.id, after=start)
    assert [(e.type, e.snapshot) for e in new] == [("order.updated", to_snapshot(updated))]


async def test_only_cancelled_orders_can_be_deleted(tenant):
    p = tenant.owner
    row = await make_order_in(p, "paid")
    start = (await events_of(tenant.id))[-1].id
    with pytest.raises(Conflict) as exc:
        await orders.delete_order(p, row["id"])
    assert exc.value.code == "CONFLICT"
    assert await events_of(tenant.id, after=start) == []

    cancelled = await orders.transition_order(p, row["id"], "cancel")
    start = (await events_of(tenant.id))[-1].id
    await orders.delete_order(p, row["id"])
    with pytest.raises(NotFound):
        await orders.get_order(p, row["id"])
    assert await OrderItem.filter(order_id=row["id"]).count() == 0
    new = await events_of(tenant.id, after=start)
    assert [(e.type, e.snapshot) for e in new] == [("order.deleted", to_snapshot(cancelled))]


# --- permissions ------------------------------------------------------------------------


async def test_viewer_cannot_write_orders_and_nothing_is_recorded(tenant):
    owner = tenant.owner
    viewer = tenant.principal("viewer")
    row = await make_order_in(owner, "pending")
    customer_id = row["customer_id"]
    product_id = row["items"][0]["product_id"]
    before = await db_state(tenant.id)

    writes = [
        orders.place_order(viewer, order_input(customer_id, [(product_id, 1)])),
        orders.transition_order(viewer, row["id"], "pay"),
        orders.transition_order(viewer, row["id"], "cancel"),
        orders.update_order(viewer, row["id"], orders.OrderPatch(note="x")),
        orders.delete_order(viewer, row["id"]),
    ]
    for write in writes:
        with pytest.raises(PermissionDenied) as exc:
            await write
        assert exc.value.code == "PERMISSION_DENIED"
        assert "orders:write" in exc.value.detail

    assert await db_state(tenant.id) == before
    assert await orders.get_order(viewer, row["id"]) == row


async def test_scopes_narrow_roles(tenant):
    row = await make_order_in(tenant.owner, "pending")
    read_only_admin = tenant.principal("admin", scopes=frozenset({"orders:read"}))
    assert (await orders.get_order(read_only_admin, row["id"]))["id"] == row["id"]
    with pytest.raises(PermissionDenied):
        await orders.transition_order(read_only_admin, row["id"], "pay")
    scoped_viewer = tenant.principal("viewer", scopes=frozenset({"orders:write"}))
    with pytest.raises(PermissionDenied):
        await orders.transition_order(scoped_viewer, row["id"], "pay")
    staff = tenant.principal("staff")
    assert (await orders.transition_order(staff, row["id"], "pay"))["status"] == "paid"


# --- batch get --------------------------------------------------------------------------


async def test_batch_get_keeps_order_and_is_all_or_nothing(tenant, other_tenant):
    p = tenant.owner
    a = await make_order_in(p, "pending")
    b = await make_order_in(p, "paid")
    foreign = await make_order_in(other_tenant.owner, "pending")

    rows = await orders.batch_get_orders(p, [b["id"], a["id"], b["id"]])
    assert [r["id"] for r in rows] == [b["id"], a["id"], b["id"]]
    assert rows[0]["items"] == b["items"]

    with pytest.raises(NotFound) as exc:
        await orders.batch_get_orders(p, [a["id"], foreign["id"]])
    assert str(foreign["id"]) in exc.value.detail
    with pytest.raises(InvalidArgument):
        await orders.batch_get_orders(p, [])
    with pytest.raises(InvalidArgument):
        await orders.batch_get_orders(p, [a["id"]] * (orders.MAX_BATCH_GET + 1))
