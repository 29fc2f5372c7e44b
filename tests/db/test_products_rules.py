"""Product and customer rules in the data layer: uniqueness, soft delete, permissions, events."""

from __future__ import annotations

import pytest

from db import customers, products
from db.errors import Conflict, NotFound, PermissionDenied, PreconditionFailed
from db.events import to_snapshot
from db.listing import ListQuery
from tests.factories import db_state, events_of, make_customer, make_order, make_product


async def listed_ids(principal, **kwargs) -> list[int]:
    page = await products.list_products(principal, ListQuery(page_size=200), **kwargs)
    return [row["id"] for row in page.items]


# --- uniqueness ---------------------------------------------------------------------------


async def test_sku_is_unique_per_organization(tenant, other_tenant):
    p = tenant.owner
    await make_product(p, sku="MUG-1")
    before = await db_state(tenant.id)

    with pytest.raises(Conflict) as exc:
        await make_product(p, sku="MUG-1")
    assert exc.value.code == "CONFLICT"
    assert "MUG-1" in exc.value.detail
    assert await db_state(tenant.id) == before

    elsewhere = await make_product(other_tenant.owner, sku="MUG-1")
    assert elsewhere["sku"] == "MUG-1"


async def test_renaming_sku_onto_another_is_a_conflict(tenant):
    p = tenant.owner
    await make_product(p, sku="A-1")
    b = await make_product(p, sku="B-1")
    before = await db_state(tenant.id)
    with pytest.raises(Conflict):
        await products.update_product(p, b["id"], products.ProductPatch(sku="A-1"))
    assert await db_state(tenant.id) == before


async def test_email_is_unique_per_organization(tenant, other_tenant):
    p = tenant.owner
    await make_customer(p, email="ada@example.com")
    before = await db_state(tenant.id)
    with pytest.raises(Conflict) as exc:
        await make_customer(p, email="ada@example.com")
    assert "ada@example.com" in exc.value.detail
    assert await db_state(tenant.id) == before
    assert (await make_customer(other_tenant.owner, email="ada@example.com"))["id"]


# --- events -----------------------------------------------------------------------------


async def test_every_product_write_records_one_event(tenant):
    p = tenant.owner
    steps = []
    created = await make_product(p, price_cents=10)
    steps.append(("product.created", created))
    updated = await products.update_product(p, created["id"], products.ProductPatch(name="New"))
    steps.append(("product.updated", updated))
    replaced = await products.update_product(
        p,
        created["id"],
        products.ProductInput(sku=created["sku"], name="Whole", price_cents=20, stock=3),
    )
    steps.append(("product.updated", replaced))
    deleted = await products.delete_product(p, created["id"])
    steps.append(("product.deleted", deleted))
    undeleted = await products.undelete_product(p, created["id"])
    steps.append(("product.undeleted", undeleted))

    events = await events_of(tenant.id)
    assert [(e.type, e.snapshot) for e in events] == [
        (kind, to_snapshot(row)) for kind, row in steps
    ]
    assert {(e.resource, e.resource_id, e.actor) for e in events} == {
        ("product", str(created["id"]), p.subject)
    }
    assert [row["version"] for _, row in steps] == [1, 2, 3, 4, 5]
    assert replaced["description"] == ""  # PUT resets what it does not send


async def test_every_customer_write_records_one_event(tenant):
    p = tenant.owner
    created = await make_customer(p)
    updated = await customers.update_customer(
        p, created["id"], customers.CustomerPatch(name="Grace")
    )
    await customers.delete_customer(p, created["id"])
    events = await events_of(tenant.id)
    assert [(e.type, e.snapshot) for e in events] == [
        ("customer.created", to_snapshot(created)),
        ("customer.updated", to_snapshot(updated)),
        ("customer.deleted", to_snapshot(updated)),
    ]
    assert all(e.actor == p.subject for e in events)
    with pytest.raises(NotFound):
        await customers.get_customer(p, created["id"])


async def test_customer_with_orders_cannot_be_deleted(tenant):
    p = tenant.owner
    customer = await make_customer(p)
    product = await make_product(p)
    await make_order(p, customer["id"], [(product["id"], 1)])
    before = await db_state(tenant.id)
    with pytest.raises(Conflict):
        await customers.delete_customer(p, customer["id"])
    assert await db_state(tenant.id) == before


async def test_stale_version_is_precondition_failed_and_changes_nothing(tenant):
    p = tenant.owner
    product = await make_product(p)
    before = await db_state(tenant.id)
    with pytest.raises(PreconditionFailed) as exc:
        await products.update_product(
            p, product["id"], products.ProductPatch(name="x"), expected_versions=[2]
        )
    assert exc.value.code == "PRECONDITION_FAILED"
    assert await db_state(tenant.id) == before
    ok = await products.update_product(
        p, product["id"], products.ProductPatch(name="x"), expected_versions=[1]
    )
    assert ok["name"] == "x"


# --- soft delete ------------------------------------------------------------------------


async def test_soft_delete_hides_from_list_but_get_still_returns_it(tenant):
    p = tenant.owner
    keep = await make_product(p)
    gone = await make_product(p)

    deleted = await products.delete_product(p, gone["id"])

    assert deleted["deleted_at"] is not None
    assert await listed_ids(p) == [keep["id"]]
    assert sorted(await listed_ids(p, show_deleted=True)) == sorted([keep["id"], gone["id"]])
    fetched = await products.get_product(p, gone["id"])
    assert fetched["deleted_at"] == deleted["deleted_at"]
    assert fetched["name"] == gone["name"]


async def test_deleting_twice_is_a_no_op(tenant):
    p = tenant.owner
    product = await make_product(p)
    first = await products.delete_product(p, product["id"])
    count = len(await events_of(tenant.id))
    again = await products.delete_product(p, product["id"])
    assert again == first
    assert len(await events_of(tenant.id)) == count


async def test_undelete_restores_it_to_lists(tenant):
    p = tenant.owner
    product = await make_product(p)
    await products.delete_product(p, product["id"])
    restored = await products.undelete_product(p, product["id"])
    assert restored["deleted_at"] is None
    assert await listed_ids(p) == [product["id"]]


async def test_undelete_of_a_live_product_is_a_conflict(tenant):
    p = tenant.owner
    product = await make_product(p)
    before = await db_state(tenant.id)
    with pytest.raises(Conflict):
        await products.undelete_product(p, product["id"])
    assert await db_state(tenant.id) == before


async def test_updating_a_deleted_product_is_a_conflict(tenant):
    p = tenant.owner
    product = await make_product(p)
    await products.delete_product(p, product["id"])
    before = await db_state(tenant.id)
    for change in (
        products.ProductPatch(name="x"),
        products.ProductInput(sku="NEW-1", name="x", price_cents=1),
    ):
        with pytest.raises(Conflict) as exc:
            await products.update_product(p, product["id"], change)
        assert "deleted" in exc.value.detail
    assert await db_state(tenant.id) == before


async def test_missing_products_are_not_found(tenant):
    p = tenant.owner
    for call in (
        products.get_product(p, 424242),
        products.update_product(p, 424242, products.ProductPatch(name="x")),
        products.delete_product(p, 424242),
        products.undelete_product(p, 424242),
    ):
        with pytest.raises(NotFound):
            await call


# --- permissions ------------------------------------------------------------------------


async def test_viewer_cannot_write_products_or_customers(tenant):
    owner = tenant.owner
    viewer = tenant.principal("viewer")
    product = await make_product(owner)
    customer = await make_customer(owner)
    await products.delete_product(owner, (await make_product(owner))["id"])
    deleted_id = (await listed_ids(owner, show_deleted=True))[-1]
    before = await db_state(tenant.id)

    writes = [
        products.create_product(viewer, products.ProductInput(sku="V-1", name="v", price_cents=1)),
        products.update_product(viewer, product["id"], products.ProductPatch(name="v")),
        products.delete_product(viewer, product["id"]),
        products.undelete_product(viewer, deleted_id),
        customers.create_customer(viewer, customers.CustomerInput(name="v", email="v@example.com")),
        customers.update_customer(viewer, customer["id"], customers.CustomerPatch(name="v")),
        customers.delete_customer(viewer, customer["id"]),
    ]
    for write in writes:
        with pytest.raises(PermissionDenied) as exc:
            await write
        assert exc.value.status == 403

    assert await db_state(tenant.id) == before
    assert (await products.get_product(viewer, product["id"]))["id"] == product["id"]
    assert (await customers.get_customer(viewer, customer["id"]))["id"] == customer["id"]


async def test_unknown_role_and_empty_scopes_can_do_nothing(tenant):
    product = await make_product(tenant.owner)
    for principal in (
        tenant.principal("intern"),
        tenant.principal("owner", scopes=frozenset()),
    ):
        with pytest.raises(PermissionDenied):
            await products.get_product(principal, product["id"])
        with pytest.raises(PermissionDenied):
            await products.list_products(principal, ListQuery())
