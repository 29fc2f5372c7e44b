"""``Accept`` on REST: JSON when the client admits it, else 406 problem+json; a body
in a type we do not read is 415."""

from __future__ import annotations

import pytest

from rest.negotiation import accepts_json
from tests.factories import assert_problem

PATH = "/api/v1/products"


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "*/*",
        "application/*",
        "text/html, application/json;q=0.5",
        "application/xml;q=0.9, */*;q=0.1",
        "APPLICATION/JSON; charset=utf-8",
    ],
)
async def test_json_is_served_when_the_client_admits_it(tenant, accept):
    headers = {} if accept is None else {"Accept": accept}
    reply = await tenant.client.get(PATH, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "accept",
    [
        "application/xml",
        "text/csv",
        "image/png, text/html",
        "application/json;q=0, text/html",
        "application/json;q=0, */*",  # the most specific range decides
        "application/*;q=0.5, application/json;q=0",
        "application/json;q=zero",
    ],
)
async def test_anything_else_is_406_with_a_problem(tenant, accept):
    reply = await tenant.client.get(PATH, headers={"Accept": accept})
    problem = assert_problem(reply, 406, "NOT_ACCEPTABLE")
    assert "application/json" in problem["detail"]
    # writes too, before anything is written
    made = await tenant.client.post(
        "/api/v1/customers", json={"name": "Never", "email": "never@example.com"},
        headers={"Accept": accept},
    )  # fmt: skip
    assert_problem(made, 406, "NOT_ACCEPTABLE")
    listed = await tenant.client.get("/api/v1/customers", params={"filter": 'name = "Never"'})
    assert listed.json()["data"] == []


async def test_a_body_we_do_not_read_is_415(tenant):
    reply = await tenant.client.post(
        "/api/v1/customers",
        content=b"<customer><name>X</name></customer>",
        headers={"Content-Type": "application/xml"},
    )
    assert_problem(reply, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_the_parse_is_cached_and_bounded():
    accepts_json.cache_clear()
    for n in range(1_000):
        accepts_json(f"application/x-{n}")
    assert accepts_json.cache_info().currsize <= 256
    assert accepts_json("text/plain, " * 500 + "application/json") is True
