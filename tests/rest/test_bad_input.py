"""Bad input over HTTP: every mistake is a 4xx problem+json and changes nothing."""

from __future__ import annotations

import asyncio
import json
import random
import string
from typing import Any
from urllib.parse import quote

import pytest

from tests.factories import assert_problem, db_state, error_locs, world

API = "/api/v1"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def seeded(tenant) -> dict[str, Any]:
    """A small world and the database state to compare against after each bad request."""
    w = await world(tenant.client)
    w["before"] = await db_state(tenant.id)
    return w


async def unchanged(tenant, seeded) -> None:
    assert await db_state(tenant.id) == seeded["before"]


def write_targets(w: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("POST", f"{API}/customers"),
        ("POST", f"{API}/products"),
        ("POST", f"{API}/orders"),
        ("PATCH", f"{API}/customers/{w['customer']['id']}"),
        ("PUT", f"{API}/customers/{w['customer']['id']}"),
        ("PATCH", f"{API}/products/{w['product']['id']}"),
        ("PUT", f"{API}/products/{w['product']['id']}"),
        ("PATCH", f"{API}/orders/{w['order']['id']}"),
        ("PUT", f"{API}/orders/{w['order']['id']}"),
    ]


# --- bodies -----------------------------------------------------------------------------


MALFORMED = [b"{", b"{'name': 'x'}", b"", b"nul", b'{"a": 1,}', b"\xff\xfe", b'{"a": NaN}']


async def test_malformed_json_is_400(tenant, seeded):
    for raw in MALFORMED:
        responses = await asyncio.gather(
            *(
                tenant.client.request(method, url, content=raw, headers=JSON)
                for method, url in write_targets(seeded)
            )
        )
        for r in responses:
            body = assert_problem(r, 400, "MALFORMED_JSON")
            assert body["title"] == "Malformed JSON body"
            assert error_locs(body) == [("body",)]
            assert body["errors"][0]["type"] == "json_invalid"
    await unchanged(tenant, seeded)


async def test_wrong_content_type_is_415(tenant, seeded):
    for ctype in (None, "text/plain", "application/x-www-form-urlencoded", "application/yaml"):
        headers = {"Content-Type": ctype} if ctype else {}
        for method, url in write_targets(seeded):
            r = await tenant.client.request(method, url, content=b'{"name": "x"}', headers=headers)
            body = assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
            assert "application/json" in body["detail"]
    await unchanged(tenant, seeded)


async def test_json_variants_of_content_type_are_accepted(tenant):
    c = tenant.client
    for i, ctype in enumerate(("application/json; charset=utf-8", "application/merge-patch+json")):
        body = json.dumps({"name": "A", "email": f"ct{i}@example.com"}).encode()
        r = await c.post(f"{API}/customers", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        (
            "customers",
            {"name": "A", "email": "a@example.com", "vip": True},
            [(("body", "vip"), "extra_forbidden")],
        ),
        (
            "customers",
            {"name": "", "email": "a@example.com"},
            [
                (("body", "name"), "string_too_short"),
            ],
        ),
        ("customers", {"name": "A", "email": "not-an-email"}, [(("body", "email"), "value_error")]),
        (
            "customers",
            {"name": 5, "email": ["x"]},
            [
                (("body", "name"), "string_type"),
                (("body", "email"), "string_type"),
            ],
        ),
        ("customers", [], [(("body",), "model_type")]),
        ("customers", "just a string", [(("body",), "model_type")]),
        (
            "products",
            {"sku": "A 1", "name": "x", "price_cents": 1},
            [
                (("body", "sku"), "string_pattern_mismatch"),
            ],
        ),
        (
            "products",
            {"sku": "A1", "name": "x", "price_cents": "cheap"},
            [
                (("body", "price_cents"), "int_type"),
            ],
        ),
        (
            "products",
            {"sku": "A1", "name": "x", "price_cents": 1.5},
            [
                (("body", "price_cents"), "int_type"),
            ],
        ),
        (
            "products",
            {"sku": "A1", "name": "x", "price_cents": -1, "stock": True},
            [
                (("body", "price_cents"), "greater_than_equal"),
                (("body", "stock"), "int_type"),
            ],
        ),
        ("products", {"sku": "A1", "name": "x"}, [(("body", "price_cents"), "missing")]),
        (
            "products",
            {"sku": "A1", "name": "x", "price_cents": 1, "description": "d" * 10_001},
            [
                (("body", "description"), "string_too_long"),
            ],
        ),
        (
            "orders",
            {"customer_id": 1, "items": [{"product_id": 1, "quantity": 0}]},
            [
                (("body", "items", 0, "quantity"), "greater_than_equal"),
            ],
        ),
        (
            "orders",
            {"customer_id": 1, "items": {"product_id": 1}},
            [
                (("body", "items"), "list_type"),
            ],
        ),
        (
            "orders",
            {"customer_id": 1, "items": [{"product_id": 1, "quantity": 1, "x": 1}]},
            [
                (("body", "items", 0, "x"), "extra_forbidden"),
            ],
        ),
        (
            "orders",
            {"customer_id": 3_000_000_000, "items": [{"product_id": 1, "quantity": 1}]},
            [
                (("body", "customer_id"), "less_than_equal"),
            ],
        ),
        (
            "orders",
            {"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}] * 101},
            [
                (("body", "items"), "too_long"),
            ],
        ),
    ],
)
async def test_invalid_bodies_are_422_with_field_errors(tenant, path, body, errors):
    before = await db_state(tenant.id)
    r = await tenant.client.post(f"{API}/{path}", json=body)
    problem = assert_problem(r, 422, "VALIDATION_ERROR")
    assert [(tuple(e["loc"]), e["type"]) for e in problem["errors"]] == errors
    assert all(isinstance(e["msg"], str) and e["msg"] for e in problem["errors"])
    assert await db_state(tenant.id) == before


async def test_patch_bodies_are_validated_too(tenant, seeded):
    c = tenant.client
    cases = [
        (f"{API}/customers/{seeded['customer']['id']}", {"id": 5}, ("body", "id")),
        (f"{API}/products/{seeded['product']['id']}", {"version": 9}, ("body", "version")),
        (f"{API}/products/{seeded['product']['id']}", {"stock": -1}, ("body", "stock")),
        (f"{API}/orders/{seeded['order']['id']}", {"total_cents": 1}, ("body", "total_cents")),
    ]
    for url, body, loc in cases:
        problem = assert_problem(await c.patch(url, json=body), 422, "VALIDATION_ERROR")
        assert error_locs(problem) == [loc]
    await unchanged(tenant, seeded)


async def test_oversized_body_is_413(tenant, seeded):
    big = json.dumps({"name": "A", "email": "a@example.com", "pad": "x" * (64 * 1024)}).encode()
    for method, url in write_targets(seeded)[:4]:
        r = await tenant.client.request(method, url, content=big, headers=JSON)
        assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    await unchanged(tenant, seeded)
    # Just under the limit is read and validated normally.
    near = json.dumps({"name": "A", "email": "a@example.com", "pad": "x" * 60_000}).encode()
    r = await tenant.client.post(f"{API}/customers", content=near, headers=JSON)
    assert_problem(r, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("customers", {"name": "a\u0000b", "email": "nul@example.com"}),
        ("products", {"sku": "NUL-1", "name": "n", "price_cents": 1, "description": "\u0000"}),
    ],
)
async def test_nul_characters_in_bodies_are_never_a_server_error(tenant, path, body):
    r = await tenant.client.post(f"{API}/{path}", json=body)
    assert_problem(r, 422, "VALIDATION_ERROR")


async def test_nul_characters_in_filters_are_never_a_server_error(tenant):
    r = await tenant.client.get(f"{API}/customers", params={"filter": 'name = "a\u0000b"'})
    assert_problem(r, 400, "INVALID_ARGUMENT")


# --- strict types ---------------------------------------------------------------------

PRODUCT = {"sku": "STRICT-1", "name": "Strict", "price_cents": 125}
LINE = {"product_id": 1, "quantity": 1}
KEY = {"name": "k", "scopes": ["products:read"]}


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        # Integers are JSON integers: no booleans, strings or floats (not even 12.0).
        ("products", {**PRODUCT, "price_cents": True}, [(("body", "price_cents"), "int_type")]),
        ("products", {**PRODUCT, "price_cents": False}, [(("body", "price_cents"), "int_type")]),
        ("products", {**PRODUCT, "price_cents": "125"}, [(("body", "price_cents"), "int_type")]),
        ("products", {**PRODUCT, "price_cents": 12.0}, [(("body", "price_cents"), "int_type")]),
        ("products", {**PRODUCT, "stock": "7"}, [(("body", "stock"), "int_type")]),
        ("products", {**PRODUCT, "stock": 1e2}, [(("body", "stock"), "int_type")]),
        ("orders", {"customer_id": "1", "items": [LINE]}, [(("body", "customer_id"), "int_type")]),
        ("orders", {"customer_id": True, "items": [LINE]}, [(("body", "customer_id"), "int_type")]),
        (
            "orders",
            {"customer_id": 1, "items": [{"product_id": 1, "quantity": 2.0}]},
            [(("body", "items", 0, "quantity"), "int_type")],
        ),
        (
            "orders",
            {"customer_id": 1, "items": [{"product_id": True, "quantity": "1"}]},
            [
                (("body", "items", 0, "product_id"), "int_type"),
                (("body", "items", 0, "quantity"), "int_type"),
            ],
        ),
        # Text is a JSON string: no numbers or booleans.
        ("products", {**PRODUCT, "sku": 12345}, [(("body", "sku"), "string_type")]),
        ("products", {**PRODUCT, "name": True}, [(("body", "name"), "string_type")]),
        ("customers", {"name": 1.5, "email": "s@example.com"}, [(("body", "name"), "string_type")]),
        (
            "orders",
            {"customer_id": 1, "items": [LINE], "note": 7},
            [(("body", "note"), "string_type")],
        ),
        ("api-keys", {**KEY, "name": 42}, [(("body", "name"), "string_type")]),
        ("api-keys", {**KEY, "scopes": [True]}, [(("body", "scopes", 0), "string_type")]),
        # Times are RFC 3339 strings with a zone: no numbers, no bare dates.
        (
            "api-keys",
            {**KEY, "expires_at": 4102444800},
            [(("body", "expires_at"), "datetime_type")],
        ),
        (
            "api-keys",
            {**KEY, "expires_at": "2100-01-01"},
            [(("body", "expires_at"), "datetime_parsing")],
        ),
        (
            "api-keys",
            {**KEY, "expires_at": "4102444800"},
            [(("body", "expires_at"), "datetime_parsing")],
        ),
        (
            "api-keys",
            {**KEY, "expires_at": "2100-02-30T00:00:00Z"},
            [(("body", "expires_at"), "datetime_parsing")],
        ),
    ],
)
async def test_json_types_are_strict(tenant, path, body, errors):
    before = await db_state(tenant.id)
    r = await tenant.client.post(f"{API}/{path}", json=body)
    problem = assert_problem(r, 422, "VALIDATION_ERROR")
    assert [(tuple(e["loc"]), e["type"]) for e in problem["errors"]] == errors
    assert await db_state(tenant.id) == before


async def test_strict_bodies_still_take_what_they_should(tenant):
    c = tenant.client
    product = (await c.post(f"{API}/products", json={**PRODUCT, "price_cents": 0})).json()["data"]
    assert product["price_cents"] == 0
    for i, when in enumerate(
        ("2100-01-01T00:00:00Z", "2100-01-01t00:00:00.123456789+02:00", "2100-01-01 00:00:00z")
    ):
        r = await c.post(f"{API}/api-keys", json={**KEY, "name": f"k{i}", "expires_at": when})
        assert r.status_code == 201, r.text
        assert r.json()["data"]["expires_at"].startswith(
            "2099-12-31T22" if "+02" in when else "2100"
        )


# --- null ---------------------------------------------------------------------------------


def null_targets(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, url, a valid body, the field to null) for every non-nullable field."""
    customer = f"{API}/customers/{w['customer']['id']}"
    product = f"{API}/products/{w['product']['id']}"
    order = f"{API}/orders/{w['order']['id']}"
    new_customer = {"name": "N", "email": "null@example.com"}
    new_product = {"sku": "NULL-1", "name": "N", "description": "d", "price_cents": 1, "stock": 1}
    new_order = {"customer_id": w["customer"]["id"], "items": [LINE], "note": "n"}
    out = []
    for method, url, body in (
        ("POST", f"{API}/customers", new_customer),
        ("PUT", customer, new_customer),
        ("PATCH", customer, new_customer),
        ("POST", f"{API}/products", new_product),
        ("PUT", product, new_product),
        ("PATCH", product, new_product),
        ("POST", f"{API}/orders", new_order),
        ("PUT", order, {"note": "n"}),
        ("PATCH", order, {"note": "n"}),
        ("POST", f"{API}/api-keys", KEY),
    ):
        out.extend((method, url, body, field) for field in body)
    return out


async def test_null_for_a_non_nullable_field_is_422(tenant, seeded):
    for method, url, body, field in null_targets(seeded):
        r = await tenant.client.request(method, url, json={**body, field: None})
        problem = assert_problem(r, 422, "VALIDATION_ERROR")
        assert [(tuple(e["loc"]), e["type"]) for e in problem["errors"]] == [
            (("body", field), "null_not_allowed")
        ], (method, url, field)
        assert "leave the field out" in problem["errors"][0]["msg"]
    r = await tenant.client.post(
        f"{API}/orders", json={"customer_id": 1, "items": [{"product_id": None, "quantity": 1}]}
    )
    assert error_locs(assert_problem(r, 422, "VALIDATION_ERROR")) == [
        ("body", "items", 0, "product_id")
    ]
    await unchanged(tenant, seeded)


async def test_nullable_fields_stay_nullable(tenant):
    r = await tenant.client.post(f"{API}/api-keys", json={**KEY, "expires_at": None})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["expires_at"] is None


# --- text rules ---------------------------------------------------------------------------

REFUSED_IN_A_LINE = [
    ("\t", "control_character"),
    ("\n", "control_character"),
    ("\r", "control_character"),
    ("\x1b", "control_character"),
    ("\x7f", "control_character"),
    ("\x85", "control_character"),  # C1: next line
    ("\u2028", "control_character"),  # line separator
    ("\u202e", "bidi_character"),  # right-to-left override
    ("\u202a", "bidi_character"),
    ("\u2066", "bidi_character"),  # left-to-right isolate
    ("\u2069", "bidi_character"),
    ("\u200e", "bidi_character"),  # left-to-right mark
    ("\u200f", "bidi_character"),
    ("\u061c", "bidi_character"),  # Arabic letter mark
    ("\u200b", "invisible_character"),  # zero width space
    ("\u2060", "invisible_character"),  # word joiner
    ("\ufeff", "invisible_character"),  # byte order mark
    ("\u00ad", "invisible_character"),  # soft hyphen
    ("\u3164", "invisible_character"),  # Hangul filler
    ("\U000e0041", "invisible_character"),  # tag letter A ("ASCII smuggling")
]
ALLOWED_IN_A_LINE = [
    "Zo\u00eb Ba\u00f1os",
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian with a ZWNJ
    "\u0915\u094d\u200d\u0937",  # Devanagari with a ZWJ
    "\U0001f469\u200d\U0001f4bb Studio",  # an emoji ZWJ sequence
    "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f Cymru",  # Wales flag
    "\u05e9\u05dc\u05d5\u05dd Shalom",  # right-to-left letters need no controls
]


def line_fields(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, url, a valid body, a one-line text field in it)."""
    customer = f"{API}/customers/{w['customer']['id']}"
    product = f"{API}/products/{w['product']['id']}"
    return [
        ("POST", f"{API}/customers", {"name": "A", "email": "text@example.com"}, "name"),
        ("PATCH", customer, {"name": "A"}, "name"),
        ("PUT", customer, {"name": "A", "email": "text@example.com"}, "name"),
        ("PATCH", customer, {"email": "text@example.com"}, "email"),
        ("POST", f"{API}/products", {"sku": "T-1", "name": "A", "price_cents": 1}, "name"),
        ("PATCH", product, {"name": "A"}, "name"),
        ("PATCH", product, {"sku": "A"}, "sku"),
        ("POST", f"{API}/api-keys", dict(KEY), "name"),
    ]


@pytest.mark.parametrize(
    ("char", "kind"), REFUSED_IN_A_LINE, ids=[repr(c) for c, _ in REFUSED_IN_A_LINE]
)
async def test_one_line_text_refuses_control_bidi_and_invisible_characters(
    tenant, seeded, char, kind
):
    for method, url, body, field in line_fields(seeded):
        for text in (f"Ab{char}c", f"{char}Abc", f"Abc{char}"):
            value = text if field != "email" else f"{text}@example.com"
            r = await tenant.client.request(method, url, json={**body, field: value})
            problem = assert_problem(r, 422, "VALIDATION_ERROR")
            assert [(tuple(e["loc"]), e["type"]) for e in problem["errors"]] == [
                (("body", field), kind)
            ], (method, url, field, text, problem)
            assert f"U+{ord(char):04X}" in problem["errors"][0]["msg"]
    await unchanged(tenant, seeded)


async def test_one_line_text_keeps_joiners_flags_and_other_scripts(tenant):
    c = tenant.client
    for i, name in enumerate(ALLOWED_IN_A_LINE):
        r = await c.post(f"{API}/customers", json={"name": name, "email": f"ok{i}@example.com"})
        assert r.status_code == 201, r.text
        assert r.json()["data"]["name"] == name


async def test_multi_line_text_allows_newlines_and_tabs_only(tenant, seeded):
    c = tenant.client
    order = f"{API}/orders/{seeded['order']['id']}"
    product = f"{API}/products/{seeded['product']['id']}"
    note = "Ring twice\n\tthen wait\nThanks \u00ad\u200d"
    r = await c.patch(order, json={"note": note})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["note"] == note
    r = await c.patch(product, json={"description": "Line 1\nLine 2\n\tindented"})
    assert r.status_code == 200, r.text
    before = await db_state(tenant.id)
    refused = [
        ("\r", "control_character"),
        ("\x0b", "control_character"),
        ("\x00", "control_character"),
        ("\x9b", "control_character"),
        ("\u2029", "control_character"),
        ("\u202e", "bidi_character"),
        ("\u2067", "bidi_character"),
        ("\u200b", "invisible_character"),
        ("\ufeff", "invisible_character"),
    ]
    for char, kind in refused:
        for method, url, field in (
            ("PATCH", order, "note"),
            ("PUT", order, "note"),
            ("PATCH", product, "description"),
        ):
            r = await c.request(method, url, json={field: f"one\n{char}two"})
            problem = assert_problem(r, 422, "VALIDATION_ERROR")
            assert [(tuple(e["loc"]), e["type"]) for e in problem["errors"]] == [
                (("body", field), kind)
            ], (char, method, field)
        r = await c.post(
            f"{API}/orders",
            json={"customer_id": seeded["customer"]["id"], "items": [LINE], "note": f"a{char}"},
        )
        assert error_locs(assert_problem(r, 422, "VALIDATION_ERROR")) == [("body", "note")]
    assert await db_state(tenant.id) == before


# --- updates that change nothing ------------------------------------------------------------


def no_op_writes(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    customer, product, order = w["customer"], w["product"], w["order"]
    same_product = {k: product[k] for k in ("sku", "name", "description", "price_cents", "stock")}
    return [
        ("PATCH", f"{API}/customers/{customer['id']}", {}),
        ("PATCH", f"{API}/customers/{customer['id']}", {"name": customer["name"]}),
        (
            "PUT",
            f"{API}/customers/{customer['id']}",
            {"name": customer["name"], "email": customer["email"]},
        ),
        ("PATCH", f"{API}/products/{product['id']}", {}),
        ("PATCH", f"{API}/products/{product['id']}", {"stock": product["stock"]}),
        ("PUT", f"{API}/products/{product['id']}", same_product),
        ("PATCH", f"{API}/orders/{order['id']}", {}),
        ("PATCH", f"{API}/orders/{order['id']}", {"note": order["note"]}),
        ("PUT", f"{API}/orders/{order['id']}", {"note": order["note"]}),
    ]


async def test_an_update_that_changes_nothing_keeps_the_version_and_records_no_event(
    tenant, seeded
):
    c = tenant.client
    seeded["product"] = (await c.get(f"{API}/products/{seeded['product']['id']}")).json()["data"]
    seeded["before"] = await db_state(tenant.id)
    for method, url, body in no_op_writes(seeded):
        current = await c.get(url)
        for if_match in (None, current.headers["etag"]):
            headers = {"If-Match": if_match} if if_match else {}
            r = await c.request(method, url, json=body, headers=headers)
            assert r.status_code == 200, (method, url, body, r.text)
            assert r.headers["etag"] == current.headers["etag"], (method, url, body)
            assert r.json()["data"] == current.json()["data"], (method, url, body)
        # If-Match is still checked: a stale ETag is 412 even when nothing would change.
        version = int(current.headers["etag"][2:-1])
        r = await c.request(method, url, json=body, headers={"If-Match": f'"v{version + 1}"'})
        assert_problem(r, 412, "PRECONDITION_FAILED")
    await unchanged(tenant, seeded)
    # A change among unchanged values is a change, with a new version and one event.
    r = await c.put(
        f"{API}/customers/{seeded['customer']['id']}",
        json={"name": "Renamed", "email": seeded["customer"]["email"]},
    )
    assert r.headers["etag"] == '"v2"'
    assert (await db_state(tenant.id))["events"] == seeded["before"]["events"] + 1


async def test_a_no_op_on_a_deleted_or_missing_row_is_still_refused(tenant, seeded):
    c = tenant.client
    product = f"{API}/products/{seeded['product']['id']}"
    assert (await c.delete(product)).status_code == 204
    assert_problem(await c.patch(product, json={}), 409, "CONFLICT")
    assert_problem(await c.patch(f"{API}/customers/999999", json={}), 404, "NOT_FOUND")


# --- ids, routes, methods ---------------------------------------------------------------


BAD_IDS = [
    ("abc", 400, "INVALID_ARGUMENT"),
    ("-1", 400, "INVALID_ARGUMENT"),
    ("1.0", 400, "INVALID_ARGUMENT"),
    ("%C2%B2", 400, "INVALID_ARGUMENT"),  # superscript two: a digit, but not ASCII
    ("0", 404, "NOT_FOUND"),
    ("99999999999", 404, "NOT_FOUND"),
    ("2147483648", 404, "NOT_FOUND"),
    ("2147483647", 404, "NOT_FOUND"),
]


PUT_BODIES: dict[str, dict[str, Any]] = {
    "customers": {"name": "A", "email": "a@example.com"},
    "products": {"sku": "S-1", "name": "S", "price_cents": 1},
    "orders": {"note": "n"},
}


@pytest.mark.parametrize("collection", ["customers", "products", "orders"])
async def test_bad_ids(tenant, seeded, collection):
    c = tenant.client
    for ident, status, code in BAD_IDS:
        url = f"{API}/{collection}/{ident}"
        put = PUT_BODIES[collection]
        requests = [c.get(url), c.patch(url, json={}), c.put(url, json=put), c.delete(url)]
        if collection == "orders":
            requests += [c.post(f"{url}:{action}") for action in ("pay", "ship", "deliver")]
            requests.append(c.post(f"{url}:cancel"))
        if collection == "products":
            requests.append(c.post(f"{url}:undelete"))
        if collection == "customers":
            requests.append(c.get(f"{url}/orders"))
        for r in await asyncio.gather(*requests):
            body = assert_problem(r, status, code)
            if status == 400:
                assert error_locs(body) == [("path", "id")]
    await unchanged(tenant, seeded)


async def test_unknown_route_is_404_problem(tenant):
    for path in (
        "/api/v1/nope",
        "/api/v2/customers",
        "/nope",
        "/api/v1/customers/1/2",
        "/api/v1/orders:x",
        "/api/v1/orders/1:refund",
        "/api/v1/customers/1:pay",
    ):
        for method in ("GET", "POST"):
            r = await tenant.client.request(method, path)
            body = assert_problem(r, 404, "NOT_FOUND")
            assert "openapi" in body["detail"]


WRONG_METHODS = [
    ("DELETE", "/api/v1/customers", {"GET", "POST"}),
    ("PUT", "/api/v1/products", {"GET", "POST"}),
    ("POST", "/api/v1/customers/1", {"GET", "PUT", "PATCH", "DELETE"}),
    ("GET", "/api/v1/orders/1:pay", {"POST"}),
    ("DELETE", "/api/v1/products/1:undelete", {"POST"}),
    ("POST", "/api/v1/customers/1/orders", {"GET"}),
    ("POST", "/api/v1/stats/sales", {"GET"}),
    ("POST", "/api/v1/orders:batchGet", {"GET"}),
]


async def test_wrong_method_is_405_with_allow(tenant, seeded):
    for method, path, expected in WRONG_METHODS:
        r = await tenant.client.request(method, path)
        assert_problem(r, 405, "METHOD_NOT_ALLOWED")
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        assert expected <= allowed, (method, path, allowed)
        assert method not in allowed
    await unchanged(tenant, seeded)


# --- query parameters ---------------------------------------------------------------------


BAD_QUERIES = [
    ("customers", {"filter": "name ="}, "filter"),
    ("customers", {"filter": "password = 1"}, "filter"),
    ("customers", {"filter": "id = 2147483648"}, "filter"),
    ("orders", {"filter": "total_cents > -9223372036854775809"}, "filter"),
    ("orders", {"filter": "status = lost"}, "filter"),
    ("orders", {"filter": "status > paid"}, "filter"),
    ("products", {"order_by": "secret"}, "order_by"),
    ("products", {"order_by": "name upward"}, "order_by"),
    ("products", {"page_size": "0"}, "page_size"),
    ("products", {"page_size": "ten"}, "page_size"),
    ("products", {"page_token": "%%%"}, "page_token"),
    ("products", {"show_deleted": "maybe"}, None),
    ("customers", {"fields": "id,ssn"}, "fields"),
    ("stats/sales", {"granularity": "minute"}, None),
    ("stats/sales", {"start": "not-a-date"}, "start"),
    ("stats/sales", {"end": "2024-13-01T00:00:00Z"}, "end"),
    ("stats/sales", {"start": "0001-01-01T00:00:00Z"}, "start"),
    ("stats/sales", {"start": "0001-01-01T00:00:00+01:00"}, "start"),
    ("stats/sales", {"end": "0001-01-02T00:00:00Z"}, "end"),
    ("stats/sales", {"end": "9999-12-31T23:59:59Z"}, "end"),
    ("stats/sales", {"start": "9999-12-31T00:00:00Z", "end": "9999-12-31T23:00:00Z"}, "end"),
]


async def test_bad_query_parameters_are_400(tenant, seeded):
    for path, params, loc in BAD_QUERIES:
        r = await tenant.client.get(f"{API}/{path}", params=params)
        body = assert_problem(r, 400, "INVALID_ARGUMENT")
        if loc is not None:
            assert ("query", loc) in error_locs(body), (path, params, body)
    await unchanged(tenant, seeded)


# --- fuzz -------------------------------------------------------------------------------

JUNK_CHARS = string.printable + "\x00éü€✓😀\u202e\ufeff"
PARAMS = (
    "filter",
    "order_by",
    "page_size",
    "page_token",
    "page",
    "per_page",
    "fields",
    "ids",
    "start",
    "end",
    "granularity",
    "show_deleted",
)
FIELDS = (
    "name",
    "email",
    "sku",
    "price_cents",
    "stock",
    "customer_id",
    "items",
    "note",
    "description",
    "product_id",
    "quantity",
    "status",
    "id",
)


def junk_text(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(
            [
                "",
                "null",
                "-1",
                "0",
                "2147483648",
                "9" * 30,
                "1e9",
                "true",
                "*",
                "id",
                "name",
                'name = "x"',
                "status = paid OR",
                "((",
                "created_at > 2024",
                "1,2,3",
                "a" * 3000,
                "2024-01-01T00:00:00Z",
                "desc",
                "id desc, name",
            ]
        )
    return "".join(rng.choice(JUNK_CHARS) for _ in range(rng.randint(0, 40)))


def junk_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**40), rng.randint(-1000, 10**6)])
    if kind == 2:
        return rng.choice([0.5, -1.0, 1e300])
    if kind in (3, 4):
        return junk_text(rng)
    if kind == 5:
        return [junk_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = (*FIELDS, "extra")
    return {rng.choice(keys): junk_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def junk_body(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    roll = rng.random()
    if roll < 0.6:
        body = json.dumps(junk_value(rng), ensure_ascii=rng.random() < 0.5).encode()
    elif roll < 0.8:
        body = bytes(rng.randint(1, 255) for _ in range(rng.randint(0, 64)))
    else:
        body = junk_text(rng).encode()
    ctype = rng.choice(["application/json"] * 6 + ["text/plain", "application/x+json", ""])
    return body, ({"Content-Type": ctype} if ctype else {})


def junk_path(rng: random.Random, w: dict[str, Any]) -> str:
    ident = rng.choice(
        [
            str(w["customer"]["id"]),
            str(w["product"]["id"]),
            str(w["order"]["id"]),
            "0",
            "-5",
            "abc",
            "99999999999",
            "1e3",
            "%20",
            "..",
            quote(junk_text(rng), safe="") or "x",
        ]
    )
    return rng.choice(
        [
            f"{API}/customers",
            f"{API}/products",
            f"{API}/orders",
            f"{API}/customers/{ident}",
            f"{API}/products/{ident}",
            f"{API}/orders/{ident}",
            f"{API}/customers/{ident}/orders",
            f"{API}/orders/{ident}:pay",
            f"{API}/orders/{ident}:cancel",
            f"{API}/products/{ident}:undelete",
            f"{API}/orders:batchGet",
            f"{API}/stats/sales",
            f"{API}/{ident}",
        ]
    )


async def test_fuzz_never_5xx(tenant):
    w = await world(tenant.client)
    rng = random.Random(20251122)
    c = tenant.client
    seen: set[int] = set()

    async def one(i: int) -> None:
        method = rng.choice(["GET", "GET", "POST", "PATCH", "PUT", "DELETE"])
        path = junk_path(rng, w)
        params = {rng.choice(PARAMS): junk_text(rng) for _ in range(rng.randint(0, 3))}
        body, headers = junk_body(rng) if method in ("POST", "PATCH", "PUT") else (b"", {})
        if rng.random() < 0.1:
            headers["If-Match"] = "".join(ch for ch in junk_text(rng) if ch.isprintable())
        if rng.random() < 0.1:
            headers["Idempotency-Key"] = f"fuzz-{rng.randint(0, 5)}"
        r = await c.request(
            method,
            path,
            params=params,
            content=body,
            headers={k: v.encode() for k, v in headers.items()},
        )
        seen.add(r.status_code)
        assert r.status_code < 500, (i, method, path, params, body[:200], r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", r.text
            problem = r.json()
            assert problem["status"] == r.status_code
            assert problem["code"]
            assert problem["request_id"]

    for start in range(0, 300, 20):
        await asyncio.gather(*(one(i) for i in range(start, start + 20)))
    assert {400, 404, 422} <= seen
