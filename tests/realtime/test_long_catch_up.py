"""Resuming after a long disconnect: the catch-up is paged from the log, on every transport.

A dashboard that was offline while thousands of events were written
resumes from its last position and gets every one of them, in order, then the
live ones, with no gap and no repeat, on the JSON channel, SSE, both GraphQL
WebSocket protocols, graphql-sse and multipart. The server reads the log a page
at a time and only once the connection has taken the previous page, so what it
holds per connection stays bounded however far behind the client is
(``Mailbox`` high-water mark and the process's peak RSS are both checked).
Catch-up events do not count against the slow-consumer limit; live ones do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import websockets
from graphql.execution.collect_fields import CollectedFields
from tortoise import connections

from db import events as change_log
from realtime import hub as hub_module
from realtime.close_codes import RESYNC
from realtime.hub import Mailbox, StreamEvent
from tests import realtime_clients as rt
from tests.factories import TOKENS, make_customer

# Twenty full pages (the last page is full: the empty read after it ends the catch-up),
# ten times the slow-consumer limit, and far past the live writes made after the
# first 1,000. What is held stays bounded by a page (HIGH_WATER) whatever the count,
# so a larger one proves no more and costs a minute per run.
MISSED = 20 * hub_module.CATCH_UP_BATCH
LIVE = 3
# What a connection may hold at once while catching up: a page, plus live frames.
HIGH_WATER = hub_module.CATCH_UP_BATCH + 100
# Peak RSS growth allowed while one client replays MISSED events: the events take
# over 2 KB each when queued whole (over 20 MB here); a paged replay grows the
# peak by about 2 MB.
RSS_GROWTH_MB = 12


async def seed(tenant, count: int) -> tuple[int, int]:
    """``count`` numbered customer events for ``tenant``, copies of one real write.

    Returns (the position to resume after, the position of the last seeded event).
    """
    await make_customer(tenant.owner, name="template")
    db = connections.get("default")
    rows = await db.execute_query_dict(
        f"SELECT max(id) AS id FROM events WHERE organization_id = {tenant.id}"
    )
    await numbered_up_to(0, unnumbered_left=True)
    after = await change_log.head_position()
    await db.execute_script(
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"
        " INSERT INTO events (organization_id, type, resource, resource_id, actor, snapshot,"
        " created_at) SELECT e.organization_id, e.type, e.resource, e.resource_id, e.actor,"
        f" e.snapshot, e.created_at FROM events e, n WHERE e.id = {rows[0]['id']} ORDER BY n.i"
    )
    last = after + count
    await numbered_up_to(last)
    return after, last


async def numbered_up_to(position: int, *, unnumbered_left: bool = False) -> None:
    """Wait (on the relay's own progress, not a clock) until ``position`` is numbered
    (with ``unnumbered_left``, until no committed event is left unnumbered)."""
    db = connections.get("default")
    for _ in range(6_000):
        if unnumbered_left:
            rows = await db.execute_query_dict(
                "SELECT count(*) AS n FROM events WHERE position IS NULL"
            )
            if not rows[0]["n"]:
                return
        elif await change_log.head_position() >= position:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the relay did not number up to {position}")


@pytest.fixture
def high_water(monkeypatch) -> dict[str, int]:
    """The most items any mailbox held at once."""
    seen = {"items": 0}
    push = Mailbox.push

    def counting(self: Mailbox, *args: Any, **kwargs: Any) -> None:
        push(self, *args, **kwargs)
        if len(self.items) > seen["items"]:
            seen["items"] = len(self.items)

    monkeypatch.setattr(Mailbox, "push", counting)
    return seen


# -- one reader per transport: each returns the positions it received, in order --

Reader = Callable[[Any, Any, int, int, Callable[[], Awaitable[None]]], Awaitable[list[int]]]


async def read_json_channel(server, tenant, after, want, halfway) -> list[int]:
    got: list[int] = []
    async with rt.realtime(server.base_url, TOKENS.mint(tenant.id, "owner")) as ws:
        await rt.subscribe(ws, "s", ["customers"], after=after)
        while len(got) < want:
            message = await rt.frame(ws, 60)
            assert message["type"] == "event", message
            got.append(message["event"]["position"])
            if len(got) == 1_000:
                await halfway()
    return got


async def read_sse(server, tenant, after, want, halfway) -> list[int]:
    got: list[int] = []
    headers = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'owner')}"}
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=60, headers=headers) as client,
        rt.sse(client, {"topics": "customers"}, {"Last-Event-ID": str(after)}) as stream,
    ):
        assert stream.response.status_code == 200
        while len(got) < want:
            event = await stream.next(60)
            assert event["event"] != "close", event
            got.append(int(event["id"]))
            if len(got) == 1_000:
                await halfway()
    return got


CHANGES = "subscription ($after: StreamPosition) { changes(after: $after) { position } }"


async def read_graphql_ws(server, tenant, after, want, halfway, legacy=False) -> list[int]:
    got: list[int] = []
    protocol = "graphql-ws" if legacy else "graphql-transport-ws"
    url = rt.ws_url(server.base_url, "/graphql")
    async with websockets.connect(url, subprotocols=[protocol], max_size=None) as ws:  # type: ignore[list-item]
        token = TOKENS.mint(tenant.id, "owner")
        await rt.send(ws, type="connection_init", payload={"Authorization": f"Bearer {token}"})
        assert (await rt.frame(ws))["type"] == "connection_ack"
        payload = {"query": CHANGES, "variables": {"after": after}}
        await rt.send(ws, type="start" if legacy else "subscribe", id="1", payload=payload)
        while len(got) < want:
            message = await rt.frame(ws, 60)
            if message["type"] == "ka":
                continue
            assert message["type"] == ("data" if legacy else "next"), message
            assert "errors" not in message["payload"], message
            got.append(message["payload"]["data"]["changes"]["position"])
            if len(got) == 1_000:
                await halfway()
    return got


async def read_legacy_graphql_ws(server, tenant, after, want, halfway) -> list[int]:
    return await read_graphql_ws(server, tenant, after, want, halfway, legacy=True)


@contextlib.asynccontextmanager
async def graphql_stream(server, tenant, accept: str, after: int) -> AsyncIterator[httpx.Response]:
    headers = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'owner')}", "Accept": accept}
    body = {"query": CHANGES, "variables": {"after": after}}
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=60, headers=headers) as client,
        client.stream("POST", "/graphql", json=body) as response,
    ):
        assert response.status_code == 200
        yield response


async def read_graphql_sse(server, tenant, after, want, halfway) -> list[int]:
    got: list[int] = []
    async with graphql_stream(server, tenant, "text/event-stream", after) as response:
        stream = rt.SSE(response, response.aiter_lines())
        while len(got) < want:
            event = await stream.next(60)
            assert event["event"] == "next", event
            assert "errors" not in event["data"], event
            got.append(event["data"]["data"]["changes"]["position"])
            if len(got) == 1_000:
                await halfway()
    return got


async def multipart_parts(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON bodies of a ``multipart/mixed; boundary="graphql"`` response."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        *parts, buffer = buffer.split(b"\r\n--graphql")
        for part in parts:
            _, _, body = part.partition(b"\r\n\r\n")
            if body.strip():
                yield orjson.loads(body)


async def read_multipart(server, tenant, after, want, halfway) -> list[int]:
    got: list[int] = []
    accept = 'multipart/mixed;subscriptionSpec="1.0"'
    async with graphql_stream(server, tenant, accept, after) as response:
        async for part in multipart_parts(response):
            if not part:
                continue  # a heartbeat
            assert part.get("payload"), part
            assert "errors" not in part["payload"], part
            got.append(part["payload"]["data"]["changes"]["position"])
            if len(got) == 1_000:
                await halfway()
            if len(got) == want:
                break
    return got


TRANSPORTS: dict[str, Reader] = {
    "json channel": read_json_channel,
    "sse": read_sse,
    "graphql-transport-ws": read_graphql_ws,
    "graphql-ws (legacy)": read_legacy_graphql_ws,
    "graphql-sse": read_graphql_sse,
    "multipart": read_multipart,
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_a_resume_far_behind_replays_everything_on_every_transport(
    server, tenant, high_water
):
    assert server.app.ctx.hub.mailbox_limit * 10 <= MISSED  # the limit is not for catch-ups
    after, last = await seed(tenant, MISSED)
    live: list[int] = []  # live writes so far, each transport adds LIVE
    for name, read in TRANSPORTS.items():

        async def halfway() -> None:
            # Live writes while the catch-up is still going: they come after it.
            for _ in range(LIVE):
                await make_customer(tenant.owner, name="written during a catch-up")

        high_water["items"] = 0
        peak_before = peak_rss_mb()
        got = await read(server, tenant, after, MISSED + len(live) + LIVE, halfway)
        growth = peak_rss_mb() - peak_before
        live = [
            e["position"] for e in await change_log.events_after(last, organization_id=tenant.id)
        ]
        want = list(range(after + 1, last + 1)) + live
        assert live, name
        assert len(live) % LIVE == 0, name
        if got != want:
            where = next(
                i for i, pair in enumerate(zip(got, want, strict=False)) if len(set(pair)) > 1
            )
            raise AssertionError(f"{name}: got {len(got)} of {len(want)}, first wrong at {where}")
        assert high_water["items"] <= HIGH_WATER, (name, high_water["items"])
        assert growth < RSS_GROWTH_MB, (name, growth)


async def wait_for(check: Callable[[], bool], what: str) -> None:
    for _ in range(3_000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def prune_before_page(monkeypatch, tenant, page: int, below: int) -> None:
    """The retention job cuts the log below ``below`` just before catch-up page ``page``."""
    read = hub_module.events_after
    calls = {"pages": 0}

    async def reading(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if kwargs.get("organization_id") == tenant.id:
            calls["pages"] += 1
            if calls["pages"] == page:
                await connections.get("default").execute_script(
                    f"DELETE FROM events WHERE position < {below}"
                )
        return await read(*args, **kwargs)

    monkeypatch.setattr(hub_module, "events_after", reading)


async def test_live_events_dropped_while_catching_up_are_read_from_the_log(
    server, tenant, monkeypatch
):
    """More live events than a mailbox's limit arrive while the client is not reading."""
    monkeypatch.setattr(hub_module, "CATCH_UP_BATCH", 50)
    hub = server.app.ctx.hub
    after, _ = await seed(tenant, 300)
    mailbox = hub.mailbox(tenant.owner)
    mailbox.limit = 5
    try:
        subscriber = await hub.subscribe(mailbox, {"customers": None}, after=after)
        await wait_for(lambda: len(mailbox.items) == 50, "the first page")
        for _ in range(12):  # more than the limit: some are dropped from the side list
            await make_customer(tenant.owner, name="while behind")
        head = await change_log.head_position()
        await wait_for(lambda: hub.head >= head, "the hub to see the live writes")
        assert subscriber.overflowed
        assert len(mailbox.items) == 50  # nothing more until the client takes the page
        got: list[int] = []
        while len(got) < 312:
            items = await asyncio.wait_for(mailbox.get(), 30)
            got += [e.position for _, e in items if isinstance(e, StreamEvent)]
        events = await change_log.events_after(after, organization_id=tenant.id, limit=1_000)
        assert got == [e["position"] for e in events]
        assert mailbox.closed is None
        await wait_for(lambda: subscriber.pending is None, "live delivery")
        await make_customer(tenant.owner, name="live again")
        items = await asyncio.wait_for(mailbox.get(), 30)
        assert [e.data["name"] for _, e in items if isinstance(e, StreamEvent)] == ["live again"]
    finally:
        mailbox.close(1000, "done")


async def test_a_prune_racing_a_catch_up_ends_it_with_resync(server, tenant, monkeypatch):
    monkeypatch.setattr(hub_module, "CATCH_UP_BATCH", 50)
    hub = server.app.ctx.hub
    after, _ = await seed(tenant, 200)
    prune_before_page(monkeypatch, tenant, page=2, below=after + 120)
    mailbox = hub.mailbox(tenant.owner)
    try:
        await hub.subscribe(mailbox, {"customers": None}, after=after)
        items = await asyncio.wait_for(mailbox.get(), 30)
        assert [e.position for _, e in items] == list(range(after + 1, after + 51))  # type: ignore[union-attr]
        await wait_for(lambda: mailbox.closed is not None, "the stream to end")
        assert mailbox.closed == RESYNC
    finally:
        mailbox.close(1000, "done")


async def test_a_prune_racing_a_json_channel_catch_up_is_an_error_for_that_stream(
    server, tenant, monkeypatch
):
    monkeypatch.setattr(hub_module, "CATCH_UP_BATCH", 50)
    after, _ = await seed(tenant, 200)
    prune_before_page(monkeypatch, tenant, page=2, below=after + 120)
    async with rt.realtime(server.base_url, TOKENS.mint(tenant.id, "owner")) as ws:
        await rt.subscribe(ws, "live", ["customers"])
        await rt.send(ws, type="subscribe", id="old", topics=["customers"], after=after)
        frames = [await rt.frame(ws, 30) for _ in range(52)]
        assert frames[0] == {"type": "subscribed", "id": "old", "position": after}
        assert [f["event"]["position"] for f in frames[1:51]] == list(range(after + 1, after + 51))
        assert frames[51]["type"] == "error", frames[51]
        assert frames[51]["id"] == "old", frames[51]
        assert frames[51]["code"] == "RESYNC_REQUIRED"
        # The other stream on the socket goes on.
        await make_customer(tenant.owner, name="still live")
        message = await rt.frame(ws, 30)
        assert message["type"] == "event", message
        assert message["id"] == "live", message


async def test_a_prune_racing_an_sse_catch_up_closes_the_stream_with_resync(
    server, tenant, monkeypatch
):
    monkeypatch.setattr(hub_module, "CATCH_UP_BATCH", 50)
    after, _ = await seed(tenant, 200)
    prune_before_page(monkeypatch, tenant, page=2, below=after + 120)
    headers = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'owner')}"}
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=30, headers=headers) as client,
        rt.sse(client, {"topics": "customers", "after": after}) as stream,
    ):
        got = [int(e["id"]) for e in await stream.events(50)]
        assert got == list(range(after + 1, after + 51))
        close = await stream.next()
        assert close["event"] == "close"
        assert close["data"] == {"code": RESYNC[0], "reason": RESYNC[1]}


async def test_a_catch_up_that_cannot_read_the_log_ends_with_a_reason(server, tenant, monkeypatch):
    hub = server.app.ctx.hub
    after, _ = await seed(tenant, 10)

    async def broken(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise OSError("connection refused")

    monkeypatch.setattr(hub_module, "events_after", broken)
    mailbox = hub.mailbox(tenant.owner)
    try:
        await hub.subscribe(mailbox, {"customers": None}, after=after)
        await wait_for(lambda: mailbox.closed is not None, "the stream to end")
        assert mailbox.closed == hub_module.LOG_UNAVAILABLE
    finally:
        mailbox.close(1000, "done")


def alive(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


async def test_a_long_lived_graphql_subscription_holds_nothing_per_event(server, tenant):
    """graphql-core's per-event executors shared a memo that grew with every event."""
    after, _ = await seed(tenant, 2_000)
    before = alive(CollectedFields)
    url = rt.ws_url(server.base_url, "/graphql")
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        token = TOKENS.mint(tenant.id, "owner")
        await rt.send(ws, type="connection_init", payload={"Authorization": f"Bearer {token}"})
        assert (await rt.frame(ws))["type"] == "connection_ack"
        query = (
            "subscription ($after: StreamPosition)"
            " { changes(after: $after) { position customer { name } } }"
        )
        await rt.send(
            ws, type="subscribe", id="1", payload={"query": query, "variables": {"after": after}}
        )
        for _ in range(2_000):
            message = await rt.frame(ws, 60)
            assert message["type"] == "next", message
        # The subscription is still open: whatever it keeps per event is alive now.
        kept = alive(CollectedFields) - before
        assert kept < 100, kept
