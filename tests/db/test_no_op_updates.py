"""An update that changes nothing writes nothing: same version, same ``updated_at``, no event.

``If-Match`` (``expected_versions``) and the rules on the current row (a deleted
product, a missing row) are still checked, so a no-op answers exactly like the
write would have, only without writing.
"""

from __future__ import annotations

import pytest

from db import customers, orders, products
from db.errors import Conflict, NotFound, PreconditionFailed
from tests.factories import db_state, make_customer, make_order_in, make_product


async def test_customer_patch_and_put_with_the_current_values(tenant):
    p = tenant.owner
    row = await make_customer(p)
    before = await db_state(tenant.id)
    for changes in (
        customers.CustomerPatch(),
        customers.CustomerPatch(name=row["name"]),
        customers.CustomerPatch(name=f"  {row['name']} "),  # stripped: the same name
        customers.CustomerInput(name=row["name"], email=row["email"]),
    ):
        assert await customers.update_customer(p, row["id"], changes) == row
        assert await customers.update_customer(p, row["id"], changes, expected_versions=[1]) == row
        with pytest.raises(PreconditionFailed):
            await customers.update_customer(p, row["id"], changes, expected_versions=[2])
    assert await db_state(tenant.id) == before


async def test_product_patch_and_put_with_the_current_values(tenant):
    p = tenant.owner
    row = await make_product(p, description="two\nlines")
    before = await db_state(tenant.id)
    same = {k: row[k] for k in ("sku", "name", "description", "price_cents", "stock")}
    for changes in (
        products.ProductPatch(),
        products.ProductPatch(stock=row["stock"], price_cents=row["price_cents"]),
        products.ProductInput(**same),
    ):
        assert await products.update_product(p, row["id"], changes) == row
        with pytest.raises(PreconditionFailed):
            await products.update_product(p, row["id"], changes, expected_versions=[7])
    assert await db_state(tenant.id) == before
    # A PUT that leaves out a field with a default resets it: that is a change.
    changed = await products.update_product(
        p, row["id"], products.ProductInput(**{**same, "description": ""})
    )
    assert changed["version"] == 2
    assert (await db_state(tenant.id))["events"] == before["events"] + 1


async def test_order_note_with_the_current_value(tenant):
    p = tenant.owner
    row = await make_order_in(p, "paid")
    before = await db_state(tenant.id)
    for changes in (orders.OrderPatch(), orders.OrderPatch(note=""), orders.OrderUpdate(note="")):
        assert await orders.update_order(p, row["id"], changes) == row
    assert await db_state(tenant.id) == before


async def test_rules_on_the_current_row_still_apply(tenant):
    p = tenant.owner
    product = await make_product(p)
    await products.delete_product(p, product["id"])
    before = await db_state(tenant.id)
    with pytest.raises(Conflict, match="undelete it"):
        await products.update_product(p, product["id"], products.ProductPatch())
    with pytest.raises(NotFound):
        await customers.update_customer(p, 2_000_000_000, customers.CustomerPatch())
    with pytest.raises(NotFound):
        await orders.update_order(p, 2_000_000_000, orders.OrderPatch())
    await products.undelete_product(p, product["id"])
    with pytest.raises(Conflict, match="is not deleted"):
        await products.undelete_product(p, product["id"])
    assert (await db_state(tenant.id))["events"] == before["events"] + 1


async def test_another_organizations_row_is_not_found_even_for_a_no_op(tenant, other_tenant):
    theirs = await make_customer(other_tenant.owner)
    with pytest.raises(NotFound):
        await customers.update_customer(tenant.owner, theirs["id"], customers.CustomerPatch())
