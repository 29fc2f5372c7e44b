"""Lists over HTTP: keyset and offset pagination, Link headers, page tokens, filters."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from db.models import Customer
from tests.factories import assert_problem, make_product

API = "/api/v1"
NAMES = ("alpha", "bravo", "charlie", "delta")
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def parse_order(order_by: str) -> list[tuple[str, bool]]:
    keys = []
    for part in order_by.split(","):
        words = part.split()
        keys.append((words[0], len(words) > 1 and words[1] == "desc"))
    if all(name != "id" for name, _ in keys):
        keys.append(("id", keys[-1][1]))
    return keys


def sort_key(row: dict[str, Any], name: str) -> Any:
    value = row[name]
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if name.endswith("_at") else value


def expected_order(rows: list[dict[str, Any]], order_by: str) -> list[int]:
    result = list(rows)
    for name, desc in reversed(parse_order(order_by)):
        result.sort(key=lambda r, n=name: sort_key(r, n), reverse=desc)
    return [r["id"] for r in result]


def assert_sorted(rows: list[dict[str, Any]], order_by: str) -> None:
    keys = parse_order(order_by)

    def cmp_tuple(row):
        return [sort_key(row, n) for n, _ in keys]

    for a, b in itertools.pairwise(rows):
        for (_, desc), x, y in zip(keys, cmp_tuple(a), cmp_tuple(b), strict=True):
            if x != y:
                assert (x > y) if desc else (x < y), (a, b, order_by)
                break
        else:
            raise AssertionError(f"two rows with the same key: {a} {b}")


async def walk(client, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow next_page_token to the end; returns the rows and the number of pages."""
    rows: list[dict[str, Any]] = []
    token, pages = None, 0
    while True:
        query = {**params, **({"page_token": token} if token else {})}
        r = await client.get(path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        rows.extend(body["data"])
        token = body["metadata"]["pagination"]["next_page_token"]
        assert ("link" in r.headers) == bool(token)
        if not token:
            return rows, pages


@pytest.fixture
async def catalogue(tenant) -> list[dict[str, Any]]:
    """23 products with repeated names and prices, so ties need the id tie-breaker."""
    rng = random.Random(7)
    rows = []
    for i in range(23):
        rows.append(
            await make_product(
                tenant.owner,
                sku=f"CAT-{i:02d}",
                name=NAMES[i % 4],
                price_cents=rng.choice([100, 200, 300]),
                stock=i % 5,
            )
        )
    return rows


ORDERS = ["created_at desc, id", "name", "price_cents desc", "stock, name desc", "id desc"]


@pytest.mark.parametrize("order_by", ORDERS)
async def test_keyset_walk_visits_every_row_once_in_order(tenant, catalogue, order_by):
    # Round-trip through JSON so the comparison sees what the API sends.
    listed, _ = await walk(tenant.client, f"{API}/products", page_size=100)
    rows, pages = await walk(tenant.client, f"{API}/products", page_size=5, order_by=order_by)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 23
    assert pages == 5
    assert ids == expected_order(listed, order_by)
    assert_sorted(rows, order_by)


async def test_default_order_is_newest_first(tenant, catalogue):
    rows, _ = await walk(tenant.client, f"{API}/products", page_size=6)
    assert [r["id"] for r in rows] == [p["id"] for p in reversed(catalogue)]


async def test_link_header_leads_to_the_next_page(tenant, catalogue):
    c = tenant.client
    params = {"page_size": "4", "order_by": "name", "filter": "stock >= 1", "fields": "id,name"}
    r = await c.get(f"{API}/products", params=params)
    seen = [row["id"] for row in r.json()["data"]]
    hops = 0
    while "link" in r.headers:
        match = LINK.match(r.headers["link"])
        assert match, r.headers["link"]
        url = urlsplit(match["url"])
        assert url.path == f"{API}/products"
        query = parse_qs(url.query)
        assert query["page_token"] == [r.json()["metadata"]["pagination"]["next_page_token"]]
        assert {k: v for k, v in query.items() if k != "page_token"} == {
            k: [v] for k, v in params.items()
        }
        r = await c.get(match["url"])
        assert r.status_code == 200
        assert all(set(row) == {"id", "name"} for row in r.json()["data"])
        seen += [row["id"] for row in r.json()["data"]]
        hops += 1
    expected = sorted((p for p in catalogue if p["stock"] >= 1), key=lambda p: (p["name"], p["id"]))
    assert seen == [p["id"] for p in expected]
    assert hops == (len(expected) - 1) // 4


async def test_page_token_is_bound_to_filter_and_order(tenant, catalogue):
    c = tenant.client
    r = await c.get(f"{API}/products", params={"page_size": 3, "filter": "stock > 0"})
    token = r.json()["metadata"]["pagination"]["next_page_token"]
    assert token

    for params in (
        {"filter": "stock > 1"},
        {"filter": ""},
        {"filter": "stock > 0", "order_by": "name"},
    ):
        r = await c.get(f"{API}/products", params={"page_size": 3, "page_token": token, **params})
        body = assert_problem(r, 400, "INVALID_ARGUMENT")
        assert body["errors"][0]["loc"] == ["query", "page_token"]

    # The page size may change between pages; the filter and order may not.
    r = await c.get(
        f"{API}/products", params={"page_size": 10, "page_token": token, "filter": "stock > 0"}
    )
    assert r.status_code == 200
    assert len(r.json()["data"]) == 10


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_garbage_page_tokens_are_400(tenant, catalogue):
    c = tenant.client
    r = await c.get(f"{API}/products", params={"page_size": 3, "order_by": "id"})
    real = r.json()["metadata"]["pagination"]["next_page_token"]
    payload = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    tampered = [
        {**payload, "k": ["1"]},  # wrong type
        {**payload, "k": [1, 2]},  # wrong length
        {**payload, "k": 5},  # not a list
        {"k": payload["k"]},  # no fingerprint
        {**payload, "k": [2**40]},  # out of range
    ]
    tokens = [
        "garbage",
        "!!!",
        "eyJ",
        _b64(b"not json"),
        _b64(b"[1,2,3]"),
        real[:-2],
        *(_b64(json.dumps(t).encode()) for t in tampered),
    ]
    before = (await c.get(f"{API}/products", params={"page_size": 100})).json()["data"]
    for token in tokens:
        r = await c.get(f"{API}/products", params={"order_by": "id", "page_token": token})
        body = assert_problem(r, 400, "INVALID_ARGUMENT")
        assert body["errors"][0]["loc"] == ["query", "page_token"], (token, body)
    assert (await c.get(f"{API}/products", params={"page_size": 100})).json()["data"] == before


@pytest.mark.parametrize("order_by", ["created_at desc, id desc", "id", "name", "price_cents desc"])
async def test_walk_under_concurrent_inserts(tenant, order_by):
    """Rows inserted while a client pages never make it skip or repeat a pre-existing row."""
    rng = random.Random(order_by)
    owner = tenant.owner

    async def new_product() -> dict[str, Any]:
        return await make_product(
            owner, name=rng.choice(NAMES), price_cents=rng.choice([100, 200, 300, 400])
        )

    existing = {(await new_product())["id"] for _ in range(30)}
    requests: asyncio.Queue[int | None] = asyncio.Queue()
    done: asyncio.Queue[None] = asyncio.Queue()
    inserted: list[int] = []

    async def inserter() -> None:
        while (count := await requests.get()) is not None:
            for _ in range(count):
                inserted.append((await new_product())["id"])
            await done.put(None)

    task = asyncio.create_task(inserter())
    rows: list[dict[str, Any]] = []
    token = None
    try:
        while True:
            params = {"page_size": 7, "order_by": order_by}
            r = await tenant.client.get(
                f"{API}/products", params={**params, **({"page_token": token} if token else {})}
            )
            assert r.status_code == 200, r.text
            rows.extend(r.json()["data"])
            token = r.json()["metadata"]["pagination"]["next_page_token"]
            if not token:
                break
            await requests.put(3)  # another task inserts between page fetches
            await done.get()
    finally:
        await requests.put(None)
        await task

    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a row was repeated"
    assert existing <= set(ids), f"skipped {existing - set(ids)}"
    assert set(ids) <= existing | set(inserted)
    assert len(inserted) >= 12
    assert_sorted(rows, order_by)
    if order_by.startswith("created_at desc"):
        assert set(ids) == existing  # newer rows sort before the cursor
    if order_by == "id":
        assert set(ids) == existing | set(inserted)  # newer rows sort after it


# --- page sizes -------------------------------------------------------------------------


@pytest.fixture
async def many_customers(tenant) -> int:
    await Customer.bulk_create(
        [
            Customer(organization_id=tenant.id, name=f"Bulk {i:03d}", email=f"b{i}@example.com")
            for i in range(105)
        ]
    )
    return 105


async def test_page_size_default_and_clamp(tenant, many_customers):
    c = tenant.client
    r = await c.get(f"{API}/customers")
    assert len(r.json()["data"]) == 20
    assert r.json()["metadata"]["pagination"]["page_size"] == 20
    r = await c.get(f"{API}/customers", params={"page_size": 1000})
    assert len(r.json()["data"]) == 100
    assert r.json()["metadata"]["pagination"]["page_size"] == 100
    assert r.json()["metadata"]["pagination"]["next_page_token"]
    rows, pages = await walk(c, f"{API}/customers", page_size=1000)
    assert len({row["id"] for row in rows}) == 105
    assert pages == 2


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
async def test_bad_page_size(tenant, value):
    r = await tenant.client.get(f"{API}/customers", params={"page_size": value})
    if value == "":
        assert r.status_code == 200  # empty means "not given"
        return
    body = assert_problem(r, 400, "INVALID_ARGUMENT")
    assert body["errors"][0]["loc"] == ["query", "page_size"]


# --- offset pagination ------------------------------------------------------------------


async def test_offset_pagination_reports_totals(tenant, catalogue):
    c = tenant.client
    seen: list[int] = []
    for page in (1, 2, 3):
        r = await c.get(
            f"{API}/products", params={"page": page, "per_page": 10, "order_by": "name"}
        )
        assert r.status_code == 200
        meta = r.json()["metadata"]["pagination"]
        assert meta == {"page": page, "per_page": 10, "total_size": 23, "total_pages": 3}
        seen += [row["id"] for row in r.json()["data"]]
        if page < 3:
            link = LINK.match(r.headers["link"])
            assert link
            assert parse_qs(urlsplit(link["url"]).query)["page"] == [str(page + 1)]
        else:
            assert "link" not in r.headers
    assert seen == [p["id"] for p in sorted(catalogue, key=lambda p: (p["name"], p["id"]))]

    r = await c.get(f"{API}/products", params={"page": 4, "per_page": 10})
    assert r.json()["data"] == []
    assert r.json()["metadata"]["pagination"]["total_size"] == 23
    r = await c.get(f"{API}/products", params={"per_page": 5, "filter": "stock = 0"})
    meta = r.json()["metadata"]["pagination"]
    assert (meta["page"], meta["total_size"], meta["total_pages"]) == (1, 5, 1)
    r = await c.get(f"{API}/products", params={"page": 1, "per_page": 500})
    assert r.json()["metadata"]["pagination"]["per_page"] == 100


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "-1"},
        {"page": "x"},
        {"per_page": "0"},
        {"page": "1", "page_token": "abc"},
        {"page": "99999999999999999999", "per_page": "5"},
    ],
)
async def test_bad_offset_arguments(tenant, params):
    assert_problem(
        await tenant.client.get(f"{API}/products", params=params), 400, "INVALID_ARGUMENT"
    )


# --- filters ----------------------------------------------------------------------------

FILTERS = {
    "price_cents > 100 AND stock < 3": lambda p: p["price_cents"] > 100 and p["stock"] < 3,
    "price_cents = 100 OR stock = 0": lambda p: p["price_cents"] == 100 or p["stock"] == 0,
    'NOT name = "alpha"': lambda p: p["name"] != "alpha",
    '-name = "alpha" -name = "bravo"': lambda p: p["name"] not in ("alpha", "bravo"),
    '(name = "alpha" OR name = "bravo") AND price_cents >= 200': lambda p: (
        p["name"] in ("alpha", "bravo") and p["price_cents"] >= 200
    ),
    # OR binds tighter than AND: a AND (b OR c)
    'stock = 1 AND name = "alpha" OR name = "bravo"': lambda p: (
        p["stock"] == 1 and p["name"] in ("alpha", "bravo")
    ),
    'NOT (stock > 1 OR name = "delta")': lambda p: not (p["stock"] > 1 or p["name"] == "delta"),
    'name : "HAR"': lambda p: "har" in p["name"],
    'sku = "CAT-1*"': lambda p: p["sku"].startswith("CAT-1"),
    "stock != 2 price_cents != 300": lambda p: p["stock"] != 2 and p["price_cents"] != 300,
    "deleted_at = null": lambda p: True,
    'sku = "CAT-00" OR sku = "CAT-22"': lambda p: p["sku"] in ("CAT-00", "CAT-22"),
    "id < 0": lambda p: False,
}


async def test_filter_examples(tenant, catalogue):
    for text, predicate in FILTERS.items():
        rows, _ = await walk(tenant.client, f"{API}/products", filter=text, page_size=100)
        expected = {p["id"] for p in catalogue if predicate(p)}
        assert {r["id"] for r in rows} == expected, text
        assert len(rows) == len(expected), text
    # Sanity: the examples are not all trivially empty or full.
    sizes = {sum(map(predicate, catalogue)) for predicate in FILTERS.values()}
    assert len(sizes) > 5


async def test_filter_on_deleted_at_with_show_deleted(tenant, catalogue):
    c = tenant.client
    gone = catalogue[3]["id"]
    assert (await c.delete(f"{API}/products/{gone}")).status_code == 204
    rows, _ = await walk(c, f"{API}/products", filter="deleted_at != null", show_deleted="true")
    assert [r["id"] for r in rows] == [gone]
    rows, _ = await walk(c, f"{API}/products", filter="deleted_at != null")
    assert rows == []


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("price_cents >", 14),
        ('name = "x" AND', 15),
        ("nope = 1", 1),
        ("price_cents = abc", 15),
        ("(stock > 1", 11),
        ("stock > 1)", 10),
        ('name = "unterminated', 8),
        ("stock ! 3", 7),
        ("stock = 1 and stock = 2", 11),
        ('created_at > "2024-01-01T00:00:00"', 14),
        ('status = "paid"', 1),
    ],
)
async def test_filter_errors_name_the_position(tenant, text, position):
    r = await tenant.client.get(f"{API}/products", params={"filter": text})
    body = assert_problem(r, 400, "INVALID_ARGUMENT")
    assert f"position {position}" in body["detail"], body["detail"]
    assert body["detail"].startswith("filter:")
    assert body["errors"][0]["loc"] == ["query", "filter"]


async def test_filter_limits(tenant):
    c = tenant.client
    too_long = "name = " + '"' + "x" * 2000 + '"'
    assert_problem(
        await c.get(f"{API}/products", params={"filter": too_long}), 400, "INVALID_ARGUMENT"
    )
    many = " OR ".join(["stock = 1"] * 51)
    assert_problem(await c.get(f"{API}/products", params={"filter": many}), 400, "INVALID_ARGUMENT")
    deep = "(" * 21 + "stock = 1" + ")" * 21
    assert_problem(await c.get(f"{API}/products", params={"filter": deep}), 400, "INVALID_ARGUMENT")
    ok = " OR ".join(["stock = 1"] * 50)
    assert (await c.get(f"{API}/products", params={"filter": ok})).status_code == 200


@pytest.mark.parametrize(
    "order_by", ["nope", "name sideways", "name, name", "description", "name desc extra", ","]
)
async def test_bad_order_by(tenant, order_by):
    r = await tenant.client.get(f"{API}/products", params={"order_by": order_by})
    body = assert_problem(r, 400, "INVALID_ARGUMENT")
    assert body["errors"][0]["loc"] == ["query", "order_by"]
