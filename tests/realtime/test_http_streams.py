"""Subscriptions and change events over plain HTTP, read by independent clients.

The npm ``graphql-sse`` client and raw multipart on ``/graphql``; the npm
``eventsource`` package (the browser's EventSource API) on ``/api/v1/events``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import orjson
import pytest

from db import events as change_log
from tests.factories import TOKENS, make_customer, make_product

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
CUSTOMER_EVENTS = """
subscription ($after: StreamPosition) {
  customerEvents(after: $after) { position type customer { name email } }
}
"""


def node_client(*args: str) -> list[str]:
    if not (CONFORMANCE / "node_modules" / "graphql-sse").exists():
        pytest.fail("run ops/scripts/install: tests/conformance/node_modules is missing")
    return ["node", str(CONFORMANCE / "sse_clients.mjs"), *args]


async def run_node(args: list[str], write, timeout: float = 20) -> list[dict]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        first = orjson.loads(await asyncio.wait_for(process.stdout.readline(), timeout))
        await write()
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
    lines = [first] + [orjson.loads(line) for line in out.splitlines() if line.strip()]
    assert lines, err
    return lines


async def test_the_npm_graphql_sse_client_receives_writes(server, tenant):
    head = await change_log.head_position()
    token = TOKENS.mint(tenant.id, "owner")

    async def write() -> None:
        await make_customer(tenant.owner, name="sse one")
        await make_customer(tenant.owner, name="sse two")

    lines = await run_node(
        node_client(
            "graphql-sse",
            f"{server.base_url}/graphql",
            token,
            CUSTOMER_EVENTS,
            "2",
            json.dumps({"after": head}),
        ),
        write,
    )
    nexts = [line["next"]["data"]["customerEvents"] for line in lines if "next" in line]
    assert [n["customer"]["name"] for n in nexts] == ["sse one", "sse two"], lines
    assert nexts[0]["position"] < nexts[1]["position"]


async def test_a_bad_subscription_over_sse_is_a_400_with_the_rest_code(server, tenant):
    response = await tenant.client.post(
        "/graphql",
        json={"query": 'subscription { orderEvents(filter: "status = lost") { position } }'},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


async def test_a_subscription_without_a_streaming_accept_is_406(server, tenant):
    response = await tenant.client.post(
        "/graphql", json={"query": "subscription { orderEvents { position } }"}
    )
    assert response.status_code == 406
    assert response.json()["code"] == "NOT_ACCEPTABLE"


async def test_multipart_subscriptions_stream_parts(server, tenant):
    head = await change_log.head_position()
    body = {"query": CUSTOMER_EVENTS, "variables": {"after": head}}
    headers = {"Accept": 'multipart/mixed;subscriptionSpec="1.0", application/json'}
    await make_customer(tenant.owner, name="multi")
    async with tenant.client.stream("POST", "/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("multipart/mixed")
        assert 'boundary="graphql"' in response.headers["content-type"]
        text = ""
        async for chunk in response.aiter_text():
            text += chunk
            if "multi" in text:
                break
    parts = [p for p in text.split("--graphql") if "Content-Type" in p]
    payload = orjson.loads(parts[0].split("\r\n\r\n", 1)[1].strip())
    assert payload["payload"]["data"]["customerEvents"]["customer"]["name"] == "multi"


async def test_the_npm_eventsource_reads_the_event_stream_with_a_ticket(server, tenant):
    ticket = (await tenant.client.post("/api/v1/events/tickets")).json()["ticket"]
    url = f"{server.base_url}/api/v1/events?topics=products&ticket={ticket}"

    async def write() -> None:
        await make_product(tenant.owner, name="from a browser")

    lines = await run_node(node_client("eventsource", url, "product.created", "1"), write)
    assert lines[0] == {"open": True}
    (event,) = [line for line in lines if "data" in line]
    assert event["data"]["data"]["name"] == "from a browser"
    assert event["id"] == str(event["data"]["position"])


STREAM_ACCEPT = {
    "graphql-sse": "text/event-stream",
    "multipart": 'multipart/mixed;subscriptionSpec="1.0"',
}


@pytest.mark.parametrize("transport", STREAM_ACCEPT)
async def test_a_stream_sends_its_headers_at_once(server, tenant, monkeypatch, transport):
    """Nothing to send yet and no heartbeat due: the status and headers still go out."""
    monkeypatch.setattr(server.app.ctx.settings, "stream_heartbeat_seconds", 3_600)
    body = {"query": CUSTOMER_EVENTS}
    headers = {"Accept": STREAM_ACCEPT[transport]}
    opening = tenant.client.stream("POST", "/graphql", json=body, headers=headers)
    response = await asyncio.wait_for(opening.__aenter__(), 30)
    try:
        assert response.status_code == 200
    finally:
        await opening.__aexit__(None, None, None)


async def _last_payloads(response, transport: str) -> list[dict]:
    """Every payload of a graphql-sse or multipart stream, to its end."""
    text = ""
    async for chunk in response.aiter_text():
        text += chunk
    if transport == "multipart":
        parts = [p.split("\r\n\r\n", 1)[1] for p in text.split("--graphql") if "Content-Type" in p]
        return [orjson.loads(p) for p in parts if p.strip() not in ("{}", "")]
    events = [block for block in text.split("\n\n") if block.startswith("event:")]
    return [{"event": b.split("\n")[0][7:], "data": b.split("data:", 1)[1].strip()} for b in events]


@pytest.mark.parametrize("transport", STREAM_ACCEPT)
async def test_an_expired_token_ends_the_stream_with_a_reason(server, tenant, clock, transport):
    token, _ = server.app.ctx.auth.tokens.issue(
        subject="user:short",
        organization_id=tenant.id,
        client_id="tests",
        scopes=["customers:read"],
        roles=["viewer"],
        ttl_seconds=60,
    )
    body = {"query": CUSTOMER_EVENTS}
    headers = {"Accept": STREAM_ACCEPT[transport], "Authorization": f"Bearer {token}"}
    async with tenant.client.stream("POST", "/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        clock.advance(120)  # past the token's expiry, on the server's clock
        payloads = await asyncio.wait_for(_last_payloads(response, transport), 30)
    if transport == "multipart":
        assert payloads[-1]["payload"] is None
        error = payloads[-1]["errors"][0]
    else:
        assert [p["event"] for p in payloads[-2:]] == ["next", "complete"]
        error = orjson.loads(payloads[-2]["data"])["errors"][0]
    assert error["extensions"] == {"code": "TOKEN_EXPIRED", "close": 4401}
    assert error["message"] == "token expired"


@pytest.mark.parametrize("transport", STREAM_ACCEPT)
async def test_a_quiet_stream_beats_every_stream_heartbeat_seconds(
    server, tenant, monkeypatch, transport
):
    """The one setting the JSON-channel SSE stream uses paces GraphQL's streams too."""
    monkeypatch.setattr(server.app.ctx.settings, "stream_heartbeat_seconds", 0.2)
    beat = b": heartbeat\n\n" if transport == "graphql-sse" else b"\r\n\r\n{}"
    body = {"query": CUSTOMER_EVENTS}
    headers = {"Accept": STREAM_ACCEPT[transport]}
    async with tenant.client.stream("POST", "/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        received = b""

        async def until_a_beat() -> None:
            nonlocal received
            async for chunk in response.aiter_raw():
                received += chunk
                if beat in received:
                    return

        # Far below the 15 s default: only the setting can make it come this soon.
        await asyncio.wait_for(until_a_beat(), 10)
