"""Seeding: a small demo organization, and large deterministic data sets for load tests.

Seeding is a bulk import, not a stream of business writes: it inserts rows
directly and records no change events (the change log starts after it).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from db.accounts import create_client, create_user
from db.catalog import ALL_SCOPES
from db.errors import Conflict, InvalidArgument
from db.models import (
    Customer,
    OAuthClient,
    Order,
    OrderItem,
    OrderStatus,
    Organization,
    Product,
    Supplier,
)
from db.organizations import check_name, check_slug

STATUSES = [s.value for s in OrderStatus]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
BATCH = 2_000
# The demo's orders cover this many days up to the moment it is seeded.
DEMO_DAYS = 90
DEMO_ORDERS = 360

Progress = Callable[[str, int], None]


# The most rows of each kind one seed inserts (all in one transaction, built in memory).
LIMITS = {"customers": 1_000_000, "products": 1_000_000, "orders": 1_000_000}


def check_counts(**counts: int) -> None:
    """Each count a whole number from 1 to its ``LIMITS``; ``InvalidArgument`` otherwise."""
    for label, count in counts.items():
        high = LIMITS[label]
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= high:
            raise InvalidArgument(f"{label}: a whole number from 1 to {high:,}, not {count!r}")


async def seed_dataset(
    *,
    slug: str,
    name: str,
    customers: int,
    products: int,
    orders: int,
    progress: Progress | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Insert a deterministic data set into organization ``slug`` (created if missing).

    All or nothing: the organization (when it is new) and every row are written in
    one transaction, so a failure leaves the database as it was. An organization
    that already holds customers, products or orders is refused (``Conflict``).

    Rows are dated from 2024-01-01 on (the same data set every time, for
    benchmarks); with ``until``, orders are spread evenly over the ``DEMO_DAYS``
    before it instead, customers and products just before them, so the demo's
    charts are full whenever it is seeded.
    """
    check_counts(customers=customers, products=products, orders=orders)
    check_slug(slug)
    async with in_transaction():
        org = await Organization.filter(slug=slug).first()
        if org is None:
            org = await Organization.create(slug=slug, name=check_name(name))
        held = [
            label
            for label, model in (("customers", Customer), ("products", Product), ("orders", Order))
            if await model.filter(organization_id=org.id).exists()
        ]
        if held:
            raise Conflict(
                f"organization {slug!r} already has {', '.join(held)}: seed a new or empty "
                f"organization, or delete this one first (gateway delete-org {slug} --force)"
            )
        return await _seed(
            org_id=int(org.id),
            customers=customers,
            products=products,
            orders=orders,
            progress=progress,
            until=until,
        )


async def _seed(
    *,
    org_id: int,
    customers: int,
    products: int,
    orders: int,
    progress: Progress | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The rows of ``seed_dataset``, in the caller's transaction.

    The arithmetic follows the benchmark yardstick's seed (statuses cycle, 1 to 5
    items per order, products spread by a multiplicative hash), so the same
    counts give comparable rows.
    """
    report = progress or (lambda _label, _n: None)
    if until is None:
        origin = EPOCH

        def order_time(g: int) -> datetime:
            return EPOCH + timedelta(minutes=g * 17)
    else:
        first = until - timedelta(days=DEMO_DAYS)
        origin = first - timedelta(days=60)  # customers and products exist before
        step = timedelta(days=DEMO_DAYS) / orders

        def order_time(g: int) -> datetime:
            return first + step * (g - 1) + step / 2

    async def insert(model: Any, rows: list[Any], label: str) -> None:
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            async with in_transaction():
                await model.bulk_create(chunk)
            report(label, len(chunk))

    await insert(
        Customer,
        [
            Customer(
                organization_id=org_id,
                name=f"Customer {g}",
                email=f"customer{g}@example.com",
                created_at=origin + timedelta(minutes=g),
                updated_at=origin + timedelta(minutes=g),
            )
            for g in range(1, customers + 1)
        ],
        "customers",
    )
    customer_ids = list(
        await Customer.filter(organization_id=org_id).order_by("id").values_list("id", flat=True)
    )
    prices = {g: 100 + (g * 7919) % 9900 for g in range(1, products + 1)}
    await insert(
        Product,
        [
            Product(
                organization_id=org_id,
                sku=f"SKU-{g:05d}",
                name=f"Product {g}",
                price_cents=prices[g],
                stock=1_000 + (g * 31) % 500,
                created_at=origin + timedelta(hours=g),
                updated_at=origin + timedelta(hours=g),
            )
            for g in range(1, products + 1)
        ],
        "products",
    )
    product_ids = list(
        await Product.filter(organization_id=org_id).order_by("id").values_list("id", flat=True)
    )
    if until is not None:  # the demo: products come from a few suppliers
        await _demo_suppliers(org_id, product_ids, origin)
    order_rows: list[Order] = []
    order_lines: list[dict[int, tuple[int, int]]] = []
    for g in range(1, orders + 1):
        lines: dict[int, tuple[int, int]] = {}
        for i in range(1, 2 + (g * 37) % 5):
            index = (g * 13 + i * 101) % len(product_ids)
            lines.setdefault(index, (1 + (g + i) % 3, prices[index + 1]))
        order_lines.append(lines)
        when = order_time(g)
        order_rows.append(
            Order(
                organization_id=org_id,
                customer_id=customer_ids[(g * 7919) % len(customer_ids)],
                status=STATUSES[g % 5],
                total_cents=sum(q * p for q, p in lines.values()),
                created_at=when,
                updated_at=when,
            )
        )
    await insert(Order, order_rows, "orders")
    # bulk_create sets no ids: read them back (this organization had no orders before).
    placed = await Order.filter(organization_id=org_id).order_by("id").values_list("id", flat=True)
    item_rows = [
        OrderItem(order_id=order_id, product_id=product_ids[index], quantity=q, unit_price_cents=p)
        for order_id, lines in zip(placed, order_lines, strict=True)
        for index, (q, p) in lines.items()
    ]
    await insert(OrderItem, item_rows, "items")
    return {
        "organization_id": org_id,
        "customers": customers,
        "products": products,
        "orders": orders,
        "items": len(item_rows),
    }


DEMO_SUPPLIERS = (
    ("Northwind Traders", "DE"),
    ("Contoso Wholesale", "US"),
    ("Fabrikam Supplies", "FR"),
)


async def _demo_suppliers(org_id: int, product_ids: list[Any], origin: datetime) -> None:
    """A few suppliers, each product from one of them (round robin)."""
    async with in_transaction():
        made = [
            await Supplier.create(
                organization_id=org_id,
                name=name,
                country=country,
                email=f"orders@{name.split()[0].lower()}.example",
                created_at=origin,
                updated_at=origin,
            )
            for name, country in DEMO_SUPPLIERS
        ]
        for n, supplier in enumerate(made):
            await Product.filter(id__in=product_ids[n :: len(made)]).update(supplier_id=supplier.id)


DEMO_CLIENT_ID = "demo-cli"
# A public client (no secret, PKCE): Swagger UI's "Authorize" at /docs signs in with it.
DEMO_DOCS_CLIENT_ID = "demo-docs"
# A public client (code + PKCE) for the live dashboard at /dashboard: reads only.
DEMO_DASHBOARD_CLIENT_ID = "demo-dashboard"
DEMO_DASHBOARD_SCOPES = ["customers:read", "orders:read", "stats:read"]
DEMO_USER = "demo@example.com"


async def seed_demo(
    *,
    now: datetime | None = None,
    docs_redirect_uris: list[str] | None = None,
    dashboard_redirect_uris: list[str] | None = None,
) -> dict[str, str] | None:
    """Seed the ``demo`` organization once; None when it already exists.

    Besides data it registers a confidential client ``demo-cli`` (client
    credentials, every scope), a public client ``demo-docs`` for the API docs'
    authorization code + PKCE flow (when given the docs' redirect URIs) and an owner
    ``demo@example.com`` to sign in as, and returns their secrets (shown nowhere
    else). ``now`` dates the orders (the 90 days before it). The dashboard's public
    client ``demo-dashboard`` (when given its redirect URIs) is also added to a demo
    seeded before it existed.
    """
    if await Organization.filter(slug="demo").exists():
        await _demo_dashboard_client(dashboard_redirect_uris)
        return None
    await seed_dataset(
        slug="demo",
        name="Demo Organization",
        customers=20,
        products=30,
        orders=DEMO_ORDERS,
        until=now or datetime.now(UTC),
    )
    org = await Organization.get(slug="demo")
    scopes = sorted(ALL_SCOPES)
    client = await create_client(
        org.id,
        "Demo CLI",
        grant_types=["client_credentials"],
        scopes=scopes,
        role="owner",
        client_id=DEMO_CLIENT_ID,
    )
    if docs_redirect_uris:
        await create_client(
            org.id,
            "Demo API docs",
            grant_types=["authorization_code", "refresh_token"],
            scopes=scopes,
            redirect_uris=docs_redirect_uris,
            role="owner",
            public=True,
            client_id=DEMO_DOCS_CLIENT_ID,
        )
    await _demo_dashboard_client(dashboard_redirect_uris)
    password = secrets.token_urlsafe(12)
    await create_user(org.id, DEMO_USER, password, "owner")
    return {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": client.secret or "",
        "user": DEMO_USER,
        "password": password,
    }


async def _demo_dashboard_client(redirect_uris: list[str] | None) -> None:
    """``demo-dashboard``: signs the demo user in to ``/dashboard`` (code + PKCE, no
    secret), to read orders and statistics only; once, when given redirect URIs."""
    org = await Organization.filter(slug="demo").first()
    if not redirect_uris or org is None:
        return
    if await OAuthClient.filter(client_id=DEMO_DASHBOARD_CLIENT_ID).exists():
        return
    await create_client(
        org.id,
        "Live dashboard",
        grant_types=["authorization_code", "refresh_token"],
        scopes=DEMO_DASHBOARD_SCOPES,
        redirect_uris=redirect_uris,
        role="staff",
        public=True,
        client_id=DEMO_DASHBOARD_CLIENT_ID,
    )
