"""Content negotiation on REST: JSON by default, XML on request (reads, writes, bodies,
problems), CSV exports of whole lists, 406 for anything else, 415 for bodies we do
not read. The XML mapping is ``rest.xml``'s; the CSV format is ``rest.csv_export``'s."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import orjson
import pytest

from rest import xml
from rest.csv_export import cell
from rest.negotiation import choose
from tests.factories import assert_problem, list_all, make_product, post_customer, world

API = "/api/v1"
XML = {"Accept": "application/xml"}
XML_BODY = {"Content-Type": "application/xml", "Accept": "application/xml"}
CSV = {"Accept": "text/csv"}


def xml_data(reply: Any) -> Any:
    assert reply.headers["content-type"].startswith(("application/xml", "text/xml")), reply.text
    assert reply.headers["vary"].lower().count("accept") >= 1
    return xml.loads(reply.content)["data"]


def xml_problem(reply: Any, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+xml"), reply.headers
    assert b'<problem xmlns="urn:ietf:rfc:7807"' in reply.content
    body: dict[str, Any] = xml.loads(reply.content)
    assert (body["code"], body["status"]) == (code, status), body
    assert body["request_id"] == reply.headers["x-request-id"]
    return body


def csv_rows(reply: Any) -> list[dict[str, str]]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv"), reply.headers
    return list(csv.DictReader(io.StringIO(reply.content.decode(), newline="")))


# --- choosing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "lists", "chosen"),
    [
        ("", False, "application/json"),
        ("*/*", False, "application/json"),
        ("application/*", False, "application/json"),
        ("application/xml", False, "application/xml"),
        ("text/xml", False, "text/xml"),
        ("text/*", False, "text/xml"),
        ("application/json;q=0.5, application/xml", False, "application/xml"),
        ("application/xml;q=0.4, application/json;q=0.8", False, "application/json"),
        ("application/json;q=0, */*", False, "application/xml"),  # most specific range decides
        ("application/problem+json", False, "application/json"),
        ("APPLICATION/XML; charset=utf-8", False, "application/xml"),
        ("text/csv", False, None),
        ("text/csv", True, "text/csv"),
        ("text/csv, application/json;q=0.1", False, "application/json"),
        ("text/csv;q=1, */*;q=0.1", True, "text/csv"),
        ("image/png", True, None),
        ("application/json;q=zero", False, None),
        ("application/json;q=0, application/xml;q=0, text/*;q=0", False, None),
    ],
)
def test_choice_follows_q_values_and_specificity(accept, lists, chosen):
    assert choose(accept, lists) == chosen


def test_the_choice_is_cached_and_bounded():
    choose.cache_clear()
    for n in range(1_000):
        choose(f"application/x-{n}")
    assert choose.cache_info().currsize <= 256
    assert choose("text/plain, " * 500 + "application/json") == "application/json"


@pytest.mark.parametrize(
    "accept",
    [None, "application/json", "*/*", "application/*", "text/html, application/json;q=0.5"],
)
async def test_json_is_the_default(tenant, accept):
    headers = {} if accept is None else {"Accept": accept}
    reply = await tenant.client.get(f"{API}/products", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert "Accept" in reply.headers["vary"]


@pytest.mark.parametrize(
    "accept", ["image/png", "text/html", "application/json;q=0", "text/plain, image/*"]
)
async def test_anything_else_is_406_listing_what_is_served(tenant, accept):
    reply = await tenant.client.get(f"{API}/products", headers={"Accept": accept})
    problem = assert_problem(reply, 406, "NOT_ACCEPTABLE")
    for media in ("application/json", "application/xml", "text/xml", "text/csv"):
        assert media in problem["detail"]
    # writes too, before anything is written
    made = await tenant.client.post(
        f"{API}/customers",
        json={"name": "Never", "email": "never@example.com"},
        headers={"Accept": accept},
    )
    assert_problem(made, 406, "NOT_ACCEPTABLE")
    listed = await tenant.client.get(f"{API}/customers", params={"filter": 'name = "Never"'})
    assert listed.json()["data"] == []


async def test_csv_of_a_single_resource_is_406(tenant):
    customer = await post_customer(tenant.client)
    reply = await tenant.client.get(f"{API}/customers/{customer['id']}", headers=CSV)
    problem = assert_problem(reply, 406, "NOT_ACCEPTABLE")
    assert "text/csv" not in problem["detail"]


# --- bodies we do not read -------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_in_another_type_is_415(tenant, ctype):
    headers = {} if ctype is None else {"Content-Type": ctype}
    reply = await tenant.client.post(f"{API}/customers", content=b"name=X", headers=headers)
    problem = assert_problem(reply, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/xml" in problem["detail"]


async def test_415_is_xml_for_an_xml_client(tenant):
    reply = await tenant.client.post(
        f"{API}/customers", content=b"x", headers={"Content-Type": "text/plain", **XML}
    )
    xml_problem(reply, 415, "UNSUPPORTED_MEDIA_TYPE")


# --- XML round trips -------------------------------------------------------------------


async def _same_as_json(tenant, path: str, accept: str = "application/xml") -> Any:
    as_json = (await tenant.client.get(path)).json()["data"]
    as_xml = await tenant.client.get(path, headers={"Accept": accept})
    assert as_xml.status_code == 200, as_xml.text
    assert xml_data(as_xml) == as_json
    return as_json


async def test_products_round_trip_through_xml(tenant):
    body = (
        b"<product><sku>XML-1</sku><name>Caf\xc3\xa9 &amp; <![CDATA[<more>]]></name>"
        b"<description>two\nlines</description><price_cents>1299</price_cents>"
        b"<stock type='integer'>7</stock></product>"
    )
    made = await tenant.client.post(f"{API}/products", content=body, headers=XML_BODY)
    assert made.status_code == 201, made.text
    product = xml_data(made)
    assert made.headers["location"] == f"{API}/products/{product['id']}"
    assert (product["sku"], product["name"], product["description"]) == (
        "XML-1",
        "Café & <more>",
        "two\nlines",
    )
    assert (product["price_cents"], product["stock"]) == (1299, 7)
    path = f"{API}/products/{product['id']}"
    assert await _same_as_json(tenant, path) == product
    await _same_as_json(tenant, path, "text/xml")

    # ETags: another representation, another tag; both revalidate and both fit If-Match.
    as_xml = await tenant.client.get(path, headers=XML)
    tag = as_xml.headers["etag"]
    assert tag.endswith('-xml"')
    assert tag != (await tenant.client.get(path)).headers["etag"]
    again = await tenant.client.get(path, headers={**XML, "If-None-Match": tag})
    assert again.status_code == 304
    patched = await tenant.client.patch(
        path, content=b"<patch><stock>9</stock></patch>", headers={**XML_BODY, "If-Match": tag}
    )
    assert patched.status_code == 200, patched.text
    assert xml_data(patched)["stock"] == 9
    stale = await tenant.client.patch(
        path, content=b"<patch><stock>1</stock></patch>", headers={**XML_BODY, "If-Match": tag}
    )
    xml_problem(stale, 412, "PRECONDITION_FAILED")

    listed = await tenant.client.get(f"{API}/products", params={"filter": 'sku = "XML-1"'})
    as_xml = await tenant.client.get(
        f"{API}/products", params={"filter": 'sku = "XML-1"'}, headers=XML
    )
    assert xml.loads(as_xml.content) | {"metadata": None} == listed.json() | {"metadata": None}
    assert (
        xml.loads(as_xml.content)["metadata"]["pagination"]
        == listed.json()["metadata"]["pagination"]
    )


async def test_customers_round_trip_through_xml(tenant):
    made = await tenant.client.post(
        f"{API}/customers",
        content=b"<customer><name>Ada</name><email>ada@example.com</email></customer>",
        headers=XML_BODY,
    )
    assert made.status_code == 201, made.text
    customer = xml_data(made)
    path = f"{API}/customers/{customer['id']}"
    assert await _same_as_json(tenant, path) == customer
    replaced = await tenant.client.put(
        path,
        content=b"<customer><name>Ada L.</name><email>ada@example.org</email></customer>",
        headers=XML_BODY,
    )
    assert replaced.status_code == 200, replaced.text
    assert xml_data(replaced)["name"] == "Ada L."
    await _same_as_json(tenant, path)


async def test_orders_round_trip_through_xml_with_nested_items(tenant):
    w = await world(tenant.client)
    other = (
        await tenant.client.post(
            f"{API}/products", json={"sku": "XML-ORD", "name": "P", "price_cents": 5, "stock": 9}
        )
    ).json()["data"]
    body = (
        f"<order><customer_id>{w['customer']['id']}</customer_id><items>"
        f"<i><product_id>{w['product']['id']}</product_id><quantity>2</quantity></i>"
        f"<i><product_id type='integer'>{other['id']}</product_id><quantity>1</quantity></i>"
        f"</items><note>rush</note></order>"
    ).encode()
    made = await tenant.client.post(f"{API}/orders", content=body, headers=XML_BODY)
    assert made.status_code == 201, made.text
    order = xml_data(made)
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [
        (w["product"]["id"], 2),
        (other["id"], 1),
    ]
    path = f"{API}/orders/{order['id']}"
    assert await _same_as_json(tenant, path) == order
    paid = await tenant.client.post(f"{path}:pay", headers=XML)
    assert xml_data(paid)["status"] == "paid"
    await _same_as_json(tenant, f"{API}/orders:batchGet?ids={order['id']}")
    await _same_as_json(tenant, f"{API}/orders?view=full")


async def test_api_keys_round_trip_through_xml(tenant):
    made = await tenant.client.post(
        f"{API}/api-keys",
        content=(
            b"<key><name>ci</name><scopes><i>products:read</i><i>orders:read</i></scopes>"
            b'<expires_at xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>'
            b"</key>"
        ),
        headers=XML_BODY,
    )
    assert made.status_code == 201, made.text
    key = xml_data(made)
    assert key["scopes"] == ["orders:read", "products:read"]
    assert key["expires_at"] is None
    assert key["key"].startswith("gwk_")
    path = f"{API}/api-keys/{key['id']}"
    shown = await _same_as_json(tenant, path)
    assert {k: v for k, v in key.items() if k != "key"} == shown


async def test_hand_written_xml_needs_no_attributes(tenant):
    made = await tenant.client.post(
        f"{API}/products",
        content=(
            b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<new:product xmlns:new="urn:x">\n'
            b"  <sku>  123  </sku>\n  <name>Caf\xe9</name>\n  <price_cents> 250 </price_cents>\n"
            b"</new:product>\n"
        ),
        headers={"Content-Type": "text/xml; charset=iso-8859-1"},
    )
    assert made.status_code == 201, made.text
    product = made.json()["data"]  # JSON back: Accept was not sent
    assert (product["sku"], product["name"], product["price_cents"]) == ("123", "Café", 250)
    patched = await tenant.client.patch(
        f"{API}/products/{product['id']}",
        content=b'<p><description nil="true"/></p>',
        headers={"Content-Type": "application/xml"},
    )
    problem = assert_problem(patched, 422, "VALIDATION_ERROR")  # not nullable: strict as JSON
    assert problem["errors"][0]["type"] == "null_not_allowed"
    wrong = await tenant.client.post(
        f"{API}/products",
        content=b"<p><sku>S</sku><name>N</name><price_cents>12.5</price_cents></p>",
        headers={"Content-Type": "application/xml"},
    )
    problem = assert_problem(wrong, 422, "VALIDATION_ERROR")
    assert [e["loc"] for e in problem["errors"]] == [["body", "price_cents"]]


async def test_xml_null_numbers_and_booleans_round_trip_exactly():
    value = {
        "a": None,
        "b": 0,
        "c": -12,
        "d": 1.5,
        "e": True,
        "f": False,
        "g": "",
        "h": [],
        "i": {},
        "j": [None, 1, "x", [2], {"k": "v"}],
        "l": "  spaced  ",
        "odd key": "&<>\"'",
        "n": "line\nbreak\ttab",
    }
    assert xml.loads(xml.dumps({"data": value})) == {"data": value}


# --- XML problems ----------------------------------------------------------------------


async def test_problems_are_xml_for_xml_clients(tenant):
    missing = await tenant.client.get(f"{API}/products/999999", headers=XML)
    xml_problem(missing, 404, "NOT_FOUND")
    no_route = await tenant.client.get(f"{API}/nothing-here", headers={"Accept": "text/xml"})
    xml_problem(no_route, 404, "NOT_FOUND")
    invalid = await tenant.client.post(
        f"{API}/products",
        content=b"<p><sku>S</sku><name>N</name><price_cents>ten</price_cents></p>",
        headers=XML_BODY,
    )
    body = xml_problem(invalid, 422, "VALIDATION_ERROR")
    assert ["body", "price_cents"] in [e["loc"] for e in body["errors"]]
    json_client = await tenant.client.get(f"{API}/products/999999")
    assert_problem(json_client, 404, "NOT_FOUND")


# --- hostile and malformed XML -----------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<customer><name>&lol9;</name><email>a@example.com</email></customer>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE customer [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<customer><name>&xxe;</name><email>a@example.com</email></customer>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE customer SYSTEM "http://127.0.0.1:9/evil.dtd">
<customer><name>x</name><email>a@example.com</email></customer>"""
MANY = b"<c>" + b"<i/>" * 10_001 + b"</c>"
DEEP = b"<a>" * 9_000 + b"</a>" * 9_000  # under MAX_BODY_BYTES (64 KiB here)


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [
        (BILLION_LAUGHS, "xml_dtd_forbidden", 400),
        (XXE, "xml_dtd_forbidden", 400),
        (EXTERNAL_DTD, "xml_dtd_forbidden", 400),
        (DEEP, "xml_too_deep", 400),
        (MANY, "xml_too_large", 400),
        (b"<customer><name>x</name>", "xml_syntax", 400),
        (b"<customer><name>&nbsp;</name></customer>", "xml_syntax", 400),
        (b"", "xml_syntax", 400),
        (b"<c><name>x<b/></name></c>", "xml_structure", 400),
        (b"<c><name>a</name><name>b</name></c>", "xml_structure", 400),
        (b"<c><name type='integer'>abc</name></c>", "xml_value", 400),
        (b"<c><name type='date'>x</name></c>", "xml_value", 400),
    ],
)
async def test_hostile_or_malformed_xml_is_refused_quickly(tenant, body, kind, status):
    started = time.monotonic()
    reply = await tenant.client.post(f"{API}/customers", content=body, headers=XML_BODY)
    assert time.monotonic() - started < 2
    problem = xml_problem(reply, status, "MALFORMED_XML")
    assert [e["type"] for e in problem["errors"]] == [kind]
    assert b"root:" not in reply.content  # /etc/passwd never read
    json_reply = await tenant.client.post(
        f"{API}/customers", content=body, headers={"Content-Type": "application/xml"}
    )
    assert_problem(json_reply, status, "MALFORMED_XML")
    listed = await tenant.client.get(f"{API}/customers")
    assert listed.json()["data"] == []


# --- CSV exports -----------------------------------------------------------------------


@pytest.fixture
async def catalogue(tenant):
    """250 products (more than two pages of PAGE_SIZE_MAX=100), with repeated prices so
    the order needs its tie-breaker."""
    principal = tenant.owner
    for n in range(250):
        await make_product(principal, sku=f"CSV-{n:03d}", price_cents=100 + n % 7, stock=n)
    return principal


async def test_csv_exports_every_page_in_the_json_order(tenant, catalogue):
    params = {"filter": "stock >= 5", "order_by": "price_cents desc"}
    expected = await list_all(tenant.client, f"{API}/products", **params)
    assert len(expected) == 245
    reply = await tenant.client.get(
        f"{API}/products", params={**params, "page_size": 3, "page_token": "ignored"}, headers=CSV
    )
    assert reply.headers["content-disposition"] == 'attachment; filename="products.csv"'
    assert reply.headers["cache-control"] == "private, no-cache"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert "content-encoding" not in reply.headers
    assert "content-length" not in reply.headers  # streamed, page by page
    assert reply.headers["transfer-encoding"] == "chunked"
    rows = csv_rows(reply)
    assert list(rows[0]) == list(expected[0])  # header: the JSON fields, in order
    assert [int(r["id"]) for r in rows] == [p["id"] for p in expected]  # no skip, no repeat
    assert rows == [{k: "" if v is None else str(v) for k, v in p.items()} for p in expected]
    assert reply.content.startswith(b'"id","sku",')
    assert reply.content.count(b"\r\n") == len(expected) + 1


async def test_csv_follows_the_field_mask_and_head(tenant, catalogue):
    reply = await tenant.client.get(
        f"{API}/products", params={"fields": "sku,id", "order_by": "sku"}, headers=CSV
    )
    rows = csv_rows(reply)
    assert list(rows[0]) == ["id", "sku"]
    assert [r["sku"] for r in rows] == [f"CSV-{n:03d}" for n in range(250)]
    head = await tenant.client.head(f"{API}/products", headers=CSV)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/csv")
    assert head.content == b""


async def test_csv_errors_are_problems_before_anything_is_sent(tenant):
    reply = await tenant.client.get(f"{API}/products", params={"filter": "nope = 1"}, headers=CSV)
    assert_problem(reply, 400, "INVALID_ARGUMENT")


async def test_csv_cells_are_escaped_against_formula_injection(tenant):
    names = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "a,b", 'say "hi"', "ok"]
    for n, name in enumerate(names):
        made = await tenant.client.post(
            f"{API}/products",
            json={"sku": f"INJ-{n}", "name": name, "price_cents": 1, "description": "-x\nline"},
        )
        assert made.status_code == 201, made.text
    rows = csv_rows(await tenant.client.get(f"{API}/products?order_by=sku", headers=CSV))
    assert [r["name"] for r in rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-2+3",
        "'@SUM(A1)",
        "a,b",
        'say "hi"',
        "ok",
    ]
    assert {r["description"] for r in rows} == {"'-x\nline"}
    assert rows[0]["price_cents"] == "1"


async def test_csv_flattens_nested_items_as_json(tenant):
    w = await world(tenant.client)
    params = {"view": "full"}
    reply = await tenant.client.get(f"{API}/orders", params=params, headers=CSV)
    [row] = csv_rows(reply)
    [order] = (await tenant.client.get(f"{API}/orders", params=params)).json()["data"]
    assert orjson.loads(row["items"]) == order["items"]
    assert int(row["customer_id"]) == w["customer"]["id"]
    basic = csv_rows(await tenant.client.get(f"{API}/orders", headers=CSV))
    assert "items" not in basic[0]
    empty = await tenant.client.get(f"{API}/orders?filter=id = 0", headers=CSV)
    assert empty.content.decode().splitlines()[0].split(",")[0] == '"id"'
    assert '"items"' not in empty.content.decode()


async def test_csv_of_api_keys_writes_scopes_as_json(tenant):
    made = await tenant.client.post(
        f"{API}/api-keys", json={"name": "=evil", "scopes": ["products:read"]}
    )
    assert made.status_code == 201, made.text
    [row] = csv_rows(await tenant.client.get(f"{API}/api-keys", headers=CSV))
    assert row["name"] == "'=evil"
    assert orjson.loads(row["scopes"]) == ["products:read"]
    assert "key" not in row


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("=1+1", "'=1+1"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("\uff1d1", "'\uff1d1"),
        ("a=1", "a=1"),
        ("", ""),
        (None, ""),
        (-5, "-5"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
        ([1, "a"], '[1,"a"]'),
        ({"k": None}, '{"k":null}'),
    ],
)
def test_cell_values(value, text):
    assert cell(value) == text


async def test_an_idempotent_replay_answers_in_the_representation_asked_for(tenant):
    body = b"<c><name>Once</name><email>once@example.com</email></c>"
    headers = {**XML_BODY, "Idempotency-Key": "xml-once"}
    first = await tenant.client.post(f"{API}/customers", content=body, headers=headers)
    again = await tenant.client.post(f"{API}/customers", content=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert xml_data(again) == xml_data(first)
    as_json = await tenant.client.post(
        f"{API}/customers", content=body, headers={**headers, "Accept": "application/json"}
    )
    assert as_json.json()["data"] == xml_data(first)
