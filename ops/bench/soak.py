#!/usr/bin/env python3
"""Soak client for ``ops/bench/soak``: mixed HTTP load plus 1,000 open real-time streams.

  soak.py run   --base URL --token T --workers PID,PID --dsn DSN --minutes M [...]
  soak.py fleet ...   (internal: the real-time clients, one subprocess)
  soak.py load  ...   (internal: the HTTP load, one subprocess)

``run`` starts two subprocesses, so that neither's event loop delays the other's
timings:

- ``fleet`` opens ``--sockets`` streams (40 % JSON WebSocket ``/api/v1/realtime`` on
  ``products``, 40 % GraphQL ``productEvents`` over graphql-transport-ws, 20 % SSE
  ``/api/v1/events?topics=products,customers``) and keeps every position it receives.
- ``load`` sends, open-loop at fixed rates (a request is started on schedule whatever
  the ones before it are doing), REST reads (one order, 20 orders, one product, 10
  customers), REST writes (``PATCH /customers/{id}`` with ``name = "soak <ns>"``),
  GraphQL queries (an order with items and products; 10 orders with customers) and
  GraphQL mutations (``updateProduct`` with ``description = "soak <ns>"``). The
  nanosecond wall-clock time in the written field is taken just before the request is
  sent, so the event lag below is *write sent -> event received* (it includes the
  write's own request and commit, then the relay, Redis and delivery).

After ``--warmup`` seconds the fleet notes the head position ``P0`` and ``run`` reads
each worker's RSS (the start figure); at the end of the load, RSS again (the end
figure), then the fleet waits until every committed event is numbered and checks each
stream against the change log: every ``product`` (and, for SSE, ``customer``) event
of the organization after ``P0`` exactly once, in position order. Errors: any non-2xx
answer, any GraphQL ``errors``, any transport error or timeout, any stream closed
before the end, any missed, repeated or out-of-order position, and any request the
load could not start on time because 256 were already in flight.

Exit status 1 when a target fails: errors > 0, RSS growth of a worker >= --rss-target
(5 %), or event lag p99 >= --lag-target-ms. One JSON line is appended to --out and a
table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

try:
    import orjson

    loads: Any = orjson.loads
except ImportError:  # pragma: no cover
    loads = json.loads

MAX_IN_FLIGHT = 256


def now_ns() -> int:
    return time.time_ns()  # wall clock: the writer and the fleet are different processes


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 2)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def soak_ts(text: object) -> int | None:
    """The send time written into a field as ``soak <ns>``; None for other writes."""
    if isinstance(text, str) and text.startswith("soak "):
        with contextlib.suppress(ValueError):
            return int(text[5:])
    return None


# ----------------------------------------------------------------- fleet


class Stream:
    """One real-time connection: what it subscribed to and every position it got."""

    def __init__(self, kind: str, resources: tuple[str, ...]) -> None:
        self.kind = kind
        self.resources = resources
        self.positions: list[int] = []
        self.seen: set[int] = set()
        self.duplicates = 0
        self.out_of_order = 0
        self.closed: str | None = None
        self.opened = False
        self.settled = asyncio.Event()  # opened, or failed to

    def got(self, position: int, ts: int | None, fleet: Fleet) -> None:
        t = now_ns()
        if position in self.seen:
            self.duplicates += 1
            return
        if self.positions and position < self.positions[-1]:
            self.out_of_order += 1
        self.seen.add(position)
        self.positions.append(position)
        if fleet.p0 is not None and position > fleet.p0 and ts is not None:
            fleet.lag_ms.append((t - ts) / 1e6)


class Fleet:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.p0: int | None = None
        self.lag_ms: list[float] = []
        self.streams: list[Stream] = []
        self.stopping = False
        self.other_frames: Counter[str] = Counter()
        self.open_errors: Counter[str] = Counter()

    # -- the three transports

    async def json_ws(self, s: Stream) -> None:
        from websockets.asyncio.client import connect

        url = self.a.base.replace("http", "ws", 1) + "/api/v1/realtime"
        async with connect(url, ping_interval=None, max_queue=None, open_timeout=60) as ws:
            await ws.send(json.dumps({"type": "auth", "token": self.a.token}))
            if loads(await ws.recv()).get("type") != "authenticated":
                raise RuntimeError("auth refused")
            await ws.send('{"type":"subscribe","id":"s","topics":["products"]}')
            if loads(await ws.recv()).get("type") != "subscribed":
                raise RuntimeError("subscribe refused")
            s.opened = True
            s.settled.set()
            async for msg in ws:
                frame = loads(msg)
                if frame.get("type") == "event":
                    event = frame["event"]
                    s.got(event["position"], soak_ts(event["data"].get("description")), self)
                else:
                    self.other_frames[f"json-ws {frame.get('type')}"] += 1
            rcvd = ws.close_rcvd
            raise ConnectionError(f"closed {rcvd.code if rcvd else 'without a close frame'}")

    async def gql_ws(self, s: Stream) -> None:
        from websockets.asyncio.client import connect

        url = self.a.base.replace("http", "ws", 1) + "/graphql"
        async with connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            ping_interval=None,
            max_queue=None,
            open_timeout=60,
        ) as ws:
            init = {"Authorization": f"Bearer {self.a.token}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            if loads(await ws.recv()).get("type") != "connection_ack":
                raise RuntimeError("connection_init refused")
            query = "subscription { productEvents { position product { description } } }"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            s.opened = True
            s.settled.set()
            async for msg in ws:
                frame = loads(msg)
                kind = frame.get("type")
                if kind == "next" and "errors" not in frame["payload"]:
                    event = frame["payload"]["data"]["productEvents"]
                    product = event.get("product") or {}
                    s.got(int(event["position"]), soak_ts(product.get("description")), self)
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
                else:
                    self.other_frames[f"gql-ws {kind} {str(frame)[:80]}"] += 1
            rcvd = ws.close_rcvd
            raise ConnectionError(f"closed {rcvd.code if rcvd else 'without a close frame'}")

    async def sse(self, s: Stream) -> None:
        """SSE over a plain socket (chunked body, one event per ``id/event/data`` block)."""
        host_port = self.a.base.split("//", 1)[1].rstrip("/")
        host, _, port = host_port.partition(":")
        reader, writer = await asyncio.open_connection(host, int(port or 80), limit=1 << 20)
        try:
            writer.write(
                f"GET /api/v1/events?topics=products,customers HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {self.a.token}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            status = int((await reader.readline()).split(b" ", 2)[1])
            chunked = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                    chunked = True
            if status != 200:
                raise RuntimeError(f"SSE answered {status}")
            s.opened = True
            s.settled.set()
            buf = b""
            while True:
                if chunked:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        break
                    buf += await reader.readexactly(size)
                    await reader.readline()
                else:
                    more = await reader.read(65536)
                    if not more:
                        break
                    buf += more
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    position: int | None = None
                    kind = b""
                    data = b""
                    for line in block.split(b"\n"):
                        if line.startswith(b"id:"):
                            position = int(line[3:])
                        elif line.startswith(b"event:"):
                            kind = line[6:].strip()
                        elif line.startswith(b"data:"):
                            data = line[5:]
                    if not data:
                        continue  # a keep-alive comment
                    if kind == b"close" or position is None:
                        self.other_frames[f"sse {kind!r} {data[:80]!r}"] += 1
                        continue
                    row = loads(data)["data"]
                    s.got(position, soak_ts(row.get("description") or row.get("name")), self)
            raise ConnectionError("SSE stream ended")
        finally:
            writer.close()

    async def keep(self, s: Stream, open_one: Any) -> None:
        try:
            await open_one()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if not self.stopping:
                s.closed = f"{s.kind}: {type(e).__name__} {e}"[:160]
        finally:
            s.settled.set()

    async def main(self) -> dict[str, Any]:
        import asyncpg

        a = self.a
        n_json = int(a.sockets * 0.4)
        n_gql = int(a.sockets * 0.4)
        n_sse = a.sockets - n_json - n_gql
        tasks: list[asyncio.Task[None]] = []
        sem = asyncio.Semaphore(100)  # handshakes at a time

        async def start(kind: str, resources: tuple[str, ...]) -> None:
            s = Stream(kind, resources)
            self.streams.append(s)
            if kind == "json-ws":
                opener = lambda: self.json_ws(s)  # noqa: E731
            elif kind == "gql-ws":
                opener = lambda: self.gql_ws(s)  # noqa: E731
            else:
                opener = lambda: self.sse(s)  # noqa: E731
            async with sem:
                tasks.append(asyncio.create_task(self.keep(s, opener)))
                deadline = time.monotonic() + 60
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(s.settled.wait(), max(0.0, deadline - time.monotonic()))

        t0 = time.monotonic()
        kinds = (
            [("json-ws", ("product",))] * n_json
            + [("gql-ws", ("product",))] * n_gql
            + [("sse", ("product", "customer"))] * n_sse
        )
        random.Random(1).shuffle(kinds)
        await asyncio.gather(*(start(k, r) for k, r in kinds))
        opened = sum(1 for s in self.streams if s.opened)
        print(json.dumps({"ready": opened, "open_s": round(time.monotonic() - t0, 2)}), flush=True)

        db = await asyncpg.connect(a.dsn)
        org = await db.fetchval("SELECT id FROM organizations WHERE slug = $1", a.org)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
        while (line := (await reader.readline()).decode().strip()) != "stop":
            if line == "mark":
                self.p0 = await db.fetchval("SELECT coalesce(max(position), 0) FROM events")
                silent = sum(1 for s in self.streams if s.opened and not s.positions)
                print(json.dumps({"p0": self.p0, "silent_at_mark": silent}), flush=True)
            elif not line:
                break
        assert self.p0 is not None
        # The load has stopped: wait until every committed event is numbered and delivered.
        expected: dict[str, list[int]] = {}
        deadline = time.monotonic() + a.drain
        while True:
            pending = await db.fetchval("SELECT count(*) FROM events WHERE position IS NULL")
            rows = await db.fetch(
                "SELECT position, resource FROM events WHERE organization_id = $1"
                " AND position > $2 ORDER BY position",
                org,
                self.p0,
            )
            expected = {}
            for row in rows:
                expected.setdefault(row["resource"], []).append(row["position"])
            complete = pending == 0 and all(
                all(p in s.seen for r in s.resources for p in expected.get(r, ()))
                for s in self.streams
                if s.closed is None
            )
            if complete or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await db.close()
        closed = Counter(s.closed for s in self.streams if s.closed is not None)
        self.stopping = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        missed = dups = disorder = delivered = 0
        missed_streams = 0
        by_kind: Counter[str] = Counter()
        for s in self.streams:
            want = [p for r in s.resources for p in expected.get(r, ())]
            miss = sum(1 for p in want if p not in s.seen)
            missed += miss
            missed_streams += miss > 0
            dups += s.duplicates
            disorder += s.out_of_order
            got = sum(1 for p in s.positions if p > self.p0)
            delivered += got
            by_kind[s.kind] += 1
        return {
            "sockets": len(self.streams),
            "opened": opened,
            "by_kind": dict(by_kind),
            "p0": self.p0,
            "events_after_p0": {r: len(v) for r, v in expected.items()},
            "delivered_after_p0": delivered,
            "missed": missed,
            "streams_missing_events": missed_streams,
            "duplicates": dups,
            "out_of_order": disorder,
            "closed_unexpectedly": sum(closed.values()),
            "close_reasons": dict(closed.most_common(5)),
            "other_frames": dict(self.other_frames.most_common(5)),
            "lag_samples": len(self.lag_ms),
            "lag_p50_ms": pct(self.lag_ms, 50),
            "lag_p99_ms": pct(self.lag_ms, 99),
            "lag_max_ms": pct(self.lag_ms, 100),
        }


# ----------------------------------------------------------------- load

Q_ORDER = (
    "query Order($id: ID!) { order(id: $id) { databaseId status totalCents"
    " items { quantity product { name } } } }"
)
Q_ORDERS = (
    'query Orders { orders(first: 10, orderBy: "id desc") { nodes { databaseId status'
    " customer { name } } } }"
)
M_PRODUCT = (
    "mutation Touch($id: ID!, $d: String!) { updateProduct(id: $id, input: {description: $d})"
    " { databaseId description } }"
)


class RawHTTP:
    """A minimal HTTP/1.1 keep-alive client: httpx took ~5 ms of CPU a request here, which
    made the load generator, not the gateway, the bottleneck on a shared two-core box."""

    def __init__(self, base: str, token: str, size: int = 64) -> None:
        host_port = base.split("//", 1)[1].rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.size = size

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        while self.idle:  # an idle connection the server closed answers nothing: next one
            with contextlib.suppress(ConnectionError, IndexError):
                return await self._send(self.idle.pop(), method, path, body)
        conn = await asyncio.open_connection(self.host, self.port)
        return await self._send(conn, method, path, body)

    async def _send(
        self,
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        method: str,
        path: str,
        body: Any,
    ) -> tuple[int, bytes]:
        reader, writer = conn
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n".encode()
            + self.auth
            + (b"Content-Type: application/json\r\n" if body is not None else b"")
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
        )
        try:
            writer.write(head + data)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("closed before an answer")
            status = int(status_line.split(b" ", 2)[1])
            length = -1
            chunked = close = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            if chunked:
                parts = []
                while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
                    parts.append(await reader.readexactly(size))
                    await reader.readline()
                await reader.readline()
                payload = b"".join(parts)
            else:
                payload = await reader.readexactly(length) if length > 0 else b""
        except BaseException:
            writer.close()
            raise
        if close or len(self.idle) >= self.size:
            writer.close()
        else:
            self.idle.append(conn)
        return status, payload

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


class Load:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.lat: dict[str, list[float]] = {"rest": [], "graphql": []}
        self.by_op: dict[str, list[float]] = {}
        self.count: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.in_flight = 0
        self.measuring = False

    async def main(self) -> dict[str, Any]:
        a = self.a
        client = RawHTTP(a.base, a.token)
        ids: dict[str, list[int]] = {}
        for name in ("orders", "products", "customers"):
            status, payload = await client.request("GET", f"/api/v1/{name}?page_size=200")
            if status != 200:
                raise SystemExit(f"GET /api/v1/{name} answered {status}: {payload[:200]!r}")
            ids[name] = [row["id"] for row in loads(payload)["data"]]
        rnd = random.Random(2)

        def rest_read(i: int) -> tuple[str, str, str, Any]:
            k = i % 4
            if k == 0:
                return "rest", "GET order", f"/api/v1/orders/{rnd.choice(ids['orders'])}", None
            if k == 1:
                return (
                    "rest",
                    "GET orders?20",
                    "/api/v1/orders?page_size=20&order_by=id%20desc",
                    None,
                )
            if k == 2:
                return (
                    "rest",
                    "GET product",
                    f"/api/v1/products/{rnd.choice(ids['products'])}",
                    None,
                )
            return "rest", "GET customers?10", "/api/v1/customers?page_size=10", None

        def rest_write(i: int) -> tuple[str, str, str, Any]:
            body = {"name": f"soak {now_ns()}"}
            return (
                "rest",
                "PATCH customer",
                f"/api/v1/customers/{rnd.choice(ids['customers'])}",
                body,
            )

        def gql_query(i: int) -> tuple[str, str, str, Any]:
            if i % 2:
                return "graphql", "query Orders", "/graphql", {"query": Q_ORDERS}
            var = {"id": str(rnd.choice(ids["orders"]))}
            return "graphql", "query Order", "/graphql", {"query": Q_ORDER, "variables": var}

        def gql_mutation(i: int) -> tuple[str, str, str, Any]:
            var = {"id": str(rnd.choice(ids["products"])), "d": f"soak {now_ns()}"}
            return (
                "graphql",
                "mutation updateProduct",
                "/graphql",
                {"query": M_PRODUCT, "variables": var},
            )

        async def one(make: Any, i: int) -> None:
            group, op, path, body = make(i)
            self.in_flight += 1
            t = time.perf_counter()
            try:
                method = op.split(" ", 1)[0] if body is None or op.startswith("PATCH") else "POST"
                status, payload = await asyncio.wait_for(client.request(method, path, body), 30)
                ms = (time.perf_counter() - t) * 1e3
                if not 200 <= status < 300:
                    self.errors[f"{op} {status} {payload[:120]!r}"] += 1
                elif group == "graphql" and "errors" in loads(payload):
                    self.errors[f"{op} errors {payload[:120]!r}"] += 1
                elif self.measuring:
                    self.lat[group].append(ms)
                    self.by_op.setdefault(op, []).append(ms)
                self.count[op] += 1
            except Exception as e:
                self.errors[f"{op} {type(e).__name__} {e}"[:160]] += 1
            finally:
                self.in_flight -= 1

        async def pace(rate: float, make: Any, until: float) -> None:
            if rate <= 0:
                return
            start = time.monotonic()
            pending: set[asyncio.Task[None]] = set()
            i = 0
            while True:
                at = start + i / rate
                if at >= until:
                    break
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.in_flight >= MAX_IN_FLIGHT:
                    self.errors["client behind: request not started on time"] += 1
                else:
                    task = asyncio.create_task(one(make, i))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                i += 1
            await asyncio.gather(*pending)

        t0 = time.monotonic()
        until = t0 + a.warmup + a.seconds

        async def measure_after_warmup() -> None:
            await asyncio.sleep(a.warmup)
            self.measuring = True

        await asyncio.gather(
            measure_after_warmup(),
            pace(a.rest_read_rate, rest_read, until),
            pace(a.rest_write_rate, rest_write, until),
            pace(a.gql_query_rate, gql_query, until),
            pace(a.gql_mutation_rate, gql_mutation, until),
        )
        await client.close()
        return {
            "requests": dict(self.count),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors.most_common(5)),
            "rest_n": len(self.lat["rest"]),
            "rest_p50_ms": pct(self.lat["rest"], 50),
            "rest_p99_ms": pct(self.lat["rest"], 99),
            "graphql_n": len(self.lat["graphql"]),
            "graphql_p50_ms": pct(self.lat["graphql"], 50),
            "graphql_p99_ms": pct(self.lat["graphql"], 99),
            "by_op": {
                op: {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)}
                for op, v in sorted(self.by_op.items())
            },
        }


# ----------------------------------------------------------------- run


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


async def run(a: argparse.Namespace) -> int:
    pids = [int(p) for p in a.workers.split(",")]
    me = [sys.executable, __file__]
    common = ["--base", a.base, "--token", a.token]
    fleet = await asyncio.create_subprocess_exec(
        *me, "fleet", *common, "--dsn", a.dsn, "--org", a.org, "--sockets", str(a.sockets),
        "--drain", str(a.drain),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert fleet.stdout is not None
    assert fleet.stdin is not None
    ready = json.loads(await fleet.stdout.readline())
    print(f"fleet: {ready['ready']} of {a.sockets} streams open in {ready['open_s']} s", flush=True)
    seconds = a.minutes * 60
    load = await asyncio.create_subprocess_exec(
        *me, "load", *common, "--seconds", str(seconds), "--warmup", str(a.warmup),
        "--rest-read-rate", str(a.rest_read_rate), "--rest-write-rate", str(a.rest_write_rate),
        "--gql-query-rate", str(a.gql_query_rate),
        "--gql-mutation-rate", str(a.gql_mutation_rate),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(a.warmup)
    fleet.stdin.write(b"mark\n")
    await fleet.stdin.drain()
    mark = json.loads(await fleet.stdout.readline())
    rss_start = {p: rss_kb(p) for p in pids}
    load_start = loadavg()
    print(f"warm: RSS {rss_start} KB, load {load_start}, P0 {mark['p0']}", flush=True)
    series: list[dict[str, Any]] = []
    t0 = time.monotonic()
    load_out = asyncio.create_task(load.communicate())
    while not load_out.done():
        await asyncio.wait([load_out], timeout=a.sample)
        if not load_out.done():
            series.append({"t": round(time.monotonic() - t0), **{str(p): rss_kb(p) for p in pids}})
            print(f"  t={series[-1]['t']}s RSS {series[-1]}", flush=True)
    rss_end = {p: rss_kb(p) for p in pids}
    load_end = loadavg()
    load_res = json.loads(load_out.result()[0].decode().strip().splitlines()[-1])
    fleet.stdin.write(b"stop\n")
    await fleet.stdin.drain()
    fleet_out, _ = await fleet.communicate()
    fleet_res = json.loads(fleet_out.decode().strip().splitlines()[-1])

    growth = {str(p): round(100 * (rss_end[p] - rss_start[p]) / rss_start[p], 2) for p in pids}
    errors = (
        load_res["errors"]
        + fleet_res["missed"]
        + fleet_res["duplicates"]
        + fleet_res["out_of_order"]
        + fleet_res["closed_unexpectedly"]
        + (a.sockets - fleet_res["opened"])
    )
    failed = []
    if errors:
        failed.append(f"errors {errors}")
    if any(g >= a.rss_target for g in growth.values()):
        failed.append(f"RSS growth {growth} % (target < {a.rss_target} %)")
    lag99 = fleet_res["lag_p99_ms"]
    if lag99 is None or lag99 >= a.lag_target_ms:
        failed.append(f"event lag p99 {lag99} ms (target < {a.lag_target_ms})")
    result = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "minutes": a.minutes,
        "warmup_s": a.warmup,
        "rates": {
            "rest_read": a.rest_read_rate,
            "rest_write": a.rest_write_rate,
            "graphql_query": a.gql_query_rate,
            "graphql_mutation": a.gql_mutation_rate,
        },
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "errors": errors,
        "rss_start_kb": {str(p): v for p, v in rss_start.items()},
        "rss_end_kb": {str(p): v for p, v in rss_end.items()},
        "rss_growth_pct": growth,
        "rss_series": series,
        "load": load_res,
        "fleet": fleet_res,
        "silent_at_mark": mark["silent_at_mark"],
        "failed": failed,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as fh:  # noqa: ASYNC230 (once, at the end)
        fh.write(json.dumps(result) + "\n")
    f = fleet_res
    print(
        "\n| figure | value |\n|---|---|\n"
        f"| duration (after {a.warmup} s warm-up) | {a.minutes} min |\n"
        f"| load average start / end | {load_start} / {load_end} |\n"
        f"| requests (REST, GraphQL) measured | {load_res['rest_n']}, {load_res['graphql_n']} |\n"
        f"| errors (HTTP, missed, duplicated, out of order, closed, not opened) | **{errors}** "
        f"({load_res['errors']}, {f['missed']}, {f['duplicates']}, {f['out_of_order']}, "
        f"{f['closed_unexpectedly']}, {a.sockets - f['opened']}) |\n"
        + "".join(
            f"| RSS worker {p}: start -> end | {rss_start[p] / 1024:.1f} -> "
            f"{rss_end[p] / 1024:.1f} MB (**{growth[str(p)]:+.2f} %**) |\n"
            for p in pids
        )
        + f"| REST p50 / p99 | {load_res['rest_p50_ms']} / {load_res['rest_p99_ms']} ms |\n"
        f"| GraphQL p50 / p99 | {load_res['graphql_p50_ms']} / {load_res['graphql_p99_ms']} ms |\n"
        f"| streams {f['by_kind']} | {f['opened']} open, {f['delivered_after_p0']} events "
        f"delivered after P0 ({f['events_after_p0']}) |\n"
        f"| event lag (write sent -> received) p50 / p99 / max | {f['lag_p50_ms']} / "
        f"{f['lag_p99_ms']} / {f['lag_max_ms']} ms |\n"
    )
    for kind, n in list(load_res["error_kinds"].items()) + list(f["close_reasons"].items()):
        print(f"  {n} x {kind}")
    print("FAILED: " + "; ".join(failed) if failed else "all targets met")
    print(f"result: {a.out}")
    return 1 if failed else 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base", default="http://127.0.0.1:8000")
        p.add_argument("--token", default=os.environ.get("GATEWAY_TOKEN", ""))

    r = sub.add_parser("run")
    common(r)
    r.add_argument("--workers", required=True, help="worker pids, comma-separated")
    r.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""))
    r.add_argument("--org", default="bench")
    r.add_argument("--minutes", type=float, default=5)
    r.add_argument("--warmup", type=float, default=30)
    r.add_argument("--sockets", type=int, default=1000)
    r.add_argument("--rest-read-rate", type=float, default=60)
    r.add_argument("--rest-write-rate", type=float, default=5)
    r.add_argument("--gql-query-rate", type=float, default=30)
    r.add_argument("--gql-mutation-rate", type=float, default=2)
    r.add_argument("--rss-target", type=float, default=5.0)
    r.add_argument("--lag-target-ms", type=float, default=1000)
    r.add_argument("--sample", type=float, default=10, help="RSS sample interval (s)")
    r.add_argument("--drain", type=float, default=30, help="s to wait for the last events")
    r.add_argument("--out", default="/tmp/bench-results/soak.jsonl")  # noqa: S108

    f = sub.add_parser("fleet")
    common(f)
    f.add_argument("--dsn", required=True)
    f.add_argument("--org", default="bench")
    f.add_argument("--sockets", type=int, default=1000)
    f.add_argument("--drain", type=float, default=30)

    lo = sub.add_parser("load")
    common(lo)
    lo.add_argument("--seconds", type=float, required=True)
    lo.add_argument("--warmup", type=float, default=30)
    lo.add_argument("--rest-read-rate", type=float, default=60)
    lo.add_argument("--rest-write-rate", type=float, default=5)
    lo.add_argument("--gql-query-rate", type=float, default=30)
    lo.add_argument("--gql-mutation-rate", type=float, default=2)

    a = ap.parse_args()
    if not a.token:
        raise SystemExit("give --token or set GATEWAY_TOKEN")
    raise_nofile()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    if a.cmd == "run":
        sys.exit(asyncio.run(run(a)))
    res = asyncio.run(Fleet(a).main() if a.cmd == "fleet" else Load(a).main())
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
