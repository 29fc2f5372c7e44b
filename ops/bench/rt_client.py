#!/usr/bin/env python3
"""Fan-out benchmark client for the gateway's JSON WebSocket channel (``/api/v1/realtime``).

  rt_client.py run  --clients N --messages M [--rate R] --label L [--token T | $GATEWAY_TOKEN]
  rt_client.py idle --clients N --label L [--settle S] [--plain --stats URL]
  rt_client.py publish ...   (internal: the publisher subprocess)

``run``: opens N WebSockets (at most ``--connect-concurrency`` handshakes at a time), on
each sends ``{"type":"auth","token":...}`` / ``{"type":"subscribe","id":"s","topics":["orders"]}``
and waits for ``authenticated`` / ``subscribed``; checks that the gateway sees N connections
(``/readyz``), then starts a publisher subprocess that INSERTs M rows into the change log
(``events``) of the bench organization, one committed transaction per event, as fast as
possible (``--rate 0``) or paced at R events/s: what writes in other workers do. The
gateway's relay numbers the committed rows and publishes them through Redis; every
subscriber receives ``{"type":"event","id":"s","event":{...,"data":SNAPSHOT}}``.
Latency = receive time (CLOCK_MONOTONIC ns) - ``data.ts`` (taken just before the INSERT, so
it includes the commit, the relay and Redis). delivered/s = all deliveries / (last receive -
first insert). Server CPU = utime+stime of the gateway process (``/proc/<pid>/stat``) from
just before the publisher starts to the last delivery (or the timeout).

``idle``: reads the server's VmRSS, opens N subscribed connections, waits ``--settle``
seconds and reports KB of resident memory per connection. ``--plain`` connects without
the gateway handshake (for the reference server ``rt``, whose pid comes from ``--stats``).

One JSON line per run is appended to ``--out``; field names follow the reference
client's (``delivered_per_s``, ``p50_ms``, ``server_cpu_us_per_frame``, ``span_s``, ...)
plus ``target``, ``case``, ``repeat`` and ``cpu_us_per_frame``.
Only stdlib + websockets + asyncpg (+ orjson when present).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

try:
    import orjson

    loads = orjson.loads
except ImportError:  # pragma: no cover
    loads = json.loads

CLK_TCK = os.sysconf("SC_CLK_TCK")
EVENT_PREFIX = '{"type":"event"'
INSERT = (
    "INSERT INTO events (organization_id, type, resource, resource_id, actor, snapshot, created_at)"
    " VALUES ($1, 'order.updated', 'order', $2, 'bench', $3::jsonb, now())"
)


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)  # == time.monotonic_ns() on Linux


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(wanted, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(cpu: str | None) -> None:
    if cpu:
        os.sched_setaffinity(0, {int(c) for c in cpu.split(",")})


# ----------------------------------------------------------------- server process


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def pid_listening(port: int) -> int:
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    pids = sorted(set(re.findall(r"pid=(\d+)", out)))
    if len(pids) != 1:
        raise SystemExit(f"expected one process listening on port {port}, found {pids or 'none'}")
    return int(pids[0])


def get_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (http only)
            return json.loads(r.read())
    except urllib.error.HTTPError as e:  # /readyz answers 503 with the same body
        return json.loads(e.read())


def readyz(base: str) -> dict:
    body = get_json(base + "/readyz")
    return {"status": body.get("status"), **body.get("realtime", {}), **body.get("worker", {})}


# ----------------------------------------------------------------- publisher (subprocess)


async def publisher(a: argparse.Namespace) -> None:
    import asyncpg

    pin(a.cpu)
    conns = [await asyncpg.connect(a.dsn) for _ in range(a.connections)]
    org = await conns[0].fetchval("SELECT id FROM organizations WHERE slug = $1", a.org)
    if org is None:
        raise SystemExit(f"no organization with slug {a.org!r}")
    insert = [await c.prepare(INSERT) for c in conns]
    pad = "x" * a.payload
    interval = 1.0 / a.rate if a.rate > 0 else 0.0
    counter = iter(range(a.messages))
    first_ts: list[int] = []
    cpu0 = time.process_time()
    start = time.monotonic()
    behind = [0.0]
    commit_ns: list[int] = []  # INSERT sent -> committed (autocommit) per event

    async def worker(stmt) -> None:
        for n in counter:  # shared iterator: events go out in order n = 0, 1, ...
            if interval:
                delay = start + n * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    behind[0] = max(behind[0], -delay)
            ts = now_ns()
            if not first_ts:
                first_ts.append(ts)
            snapshot = {
                "id": n,
                "status": "paid",
                "total_cents": 100,
                "ts": ts,
                "run": a.run,
                "pad": pad,
            }
            await stmt.fetch(org, str(n), json.dumps(snapshot, separators=(",", ":")))
            commit_ns.append(now_ns() - ts)

    await asyncio.gather(*(worker(s) for s in insert))
    last_ts = now_ns()
    for c in conns:
        await c.close()
    commit_ns.sort()
    print(
        json.dumps(
            {
                "first_ts": first_ts[0] if first_ts else None,
                "last_ts": last_ts,
                "insert_p50_ms": round(commit_ns[len(commit_ns) // 2] / 1e6, 3),
                "insert_p99_ms": round(commit_ns[int(0.99 * len(commit_ns))] / 1e6, 3),
                "organization_id": org,
                "max_behind_s": round(behind[0], 4),
                "cpu_s": round(time.process_time() - cpu0, 3),
            }
        ),
        flush=True,
    )


# ----------------------------------------------------------------- clients


class RedisTap:
    """An independent subscriber on the relay's Redis channel: when each event was published.

    Splits latency into insert -> relay PUBLISH (commit, NOTIFY, numbering, Redis) and
    PUBLISH -> WebSocket delivery. Plain RESP2 over asyncio streams (no redis library).
    """

    def __init__(self, url: str, channel: str, run_id: str) -> None:
        m = re.match(r"redis://(?:[^@/]*@)?([^:/]+)(?::(\d+))?", url)
        if not m:
            raise SystemExit(f"--redis: cannot tap {url!r}")
        self.host, self.port = m.group(1), int(m.group(2) or 6379)
        self.channel = channel
        self.run_id = run_id.encode()
        self.lag_ns: list[int] = []
        self.last = 0
        self.task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(b"SUBSCRIBE %s\r\n" % self.channel.encode())
        await writer.drain()
        self.writer = writer
        self.task = asyncio.create_task(self._read(reader))
        await asyncio.wait_for(self.ready.wait(), 5)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        async def bulk() -> bytes:
            head = await reader.readline()  # $len or :int
            if head[:1] == b":":
                return head[1:].strip()
            return (await reader.readexactly(int(head[1:]) + 2))[:-2]

        while True:
            head = await reader.readline()
            if not head:
                return
            parts = [await bulk() for _ in range(int(head[1:]))]
            t = now_ns()
            if parts[0] == b"subscribe":
                self.ready.set()
            elif parts[0] == b"message" and self.run_id in parts[2]:
                event = loads(parts[2])
                self.lag_ns.append(t - event["data"]["ts"])
                self.last = t

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        self.writer.close()


class Fleet:
    """N WebSocket clients in this process and what they received."""

    def __init__(self, a: argparse.Namespace, run_id: str, expected_each: int) -> None:
        self.a = a
        self.run_id = run_id
        self.expected = a.clients * expected_each
        self.lat_ns: list[int] = []
        self.received = 0
        self.first_recv = 0
        self.last_recv = 0
        self.foreign = 0  # events not from this run (other writers in the bench org)
        self.out_of_order = 0  # a position not above the previous one on that connection
        self.gaps = 0  # a position jump > 1 between two of our events on one connection
        self.other_frames: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.connect_errors: Counter[str] = Counter()
        self.subscribed_at: list[int] = []
        self.conns: list = []
        self.tasks: list[asyncio.Task] = []
        self.done = asyncio.Event()
        self.closing = False

    async def open(self) -> float:
        from websockets.asyncio.client import connect

        a = self.a
        sem = asyncio.Semaphore(a.connect_concurrency)

        async def one() -> None:
            async with sem:
                try:
                    ws = await connect(
                        a.url,
                        ping_interval=None,
                        max_queue=None,
                        compression=None,
                        open_timeout=60,
                        close_timeout=5,
                    )
                except Exception as e:
                    self.connect_errors[type(e).__name__] += 1
                    return
                try:
                    if not a.plain:
                        await self._handshake(ws)
                except Exception as e:
                    self.connect_errors[f"handshake: {e}"[:120]] += 1
                    with contextlib.suppress(Exception):
                        await ws.close()
                    return
            self.conns.append(ws)
            self.tasks.append(asyncio.create_task(self._read(ws)))

        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(a.clients)))
        return time.monotonic() - t0

    async def _handshake(self, ws) -> None:
        await ws.send(json.dumps({"type": "auth", "token": self.a.token}))
        reply = loads(await asyncio.wait_for(ws.recv(), 30))
        if reply.get("type") != "authenticated":
            raise RuntimeError(f"auth answered {reply}")
        await ws.send('{"type":"subscribe","id":"s","topics":["orders"]}')
        reply = loads(await asyncio.wait_for(ws.recv(), 30))
        if reply.get("type") != "subscribed" or reply.get("id") != "s":
            raise RuntimeError(f"subscribe answered {reply}")
        self.subscribed_at.append(int(reply["position"]))

    async def _read(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        run_id = self.run_id
        lat = self.lat_ns
        last_pos = -1
        try:
            async for msg in ws:
                t = now_ns()
                if msg.startswith(EVENT_PREFIX):
                    event = loads(msg)["event"]
                    data = event["data"]
                    if data.get("run") != run_id:
                        self.foreign += 1
                        continue
                    pos = event["position"]
                    if pos <= last_pos:
                        self.out_of_order += 1
                    elif last_pos >= 0 and pos != last_pos + 1:
                        self.gaps += 1
                    last_pos = pos
                    lat.append(t - data["ts"])
                    if not self.first_recv:
                        self.first_recv = t
                    self.last_recv = t
                    self.received += 1
                    if self.received >= self.expected:
                        self.done.set()
                else:
                    try:
                        kind = loads(msg).get("type", "?")
                    except Exception:
                        kind = "not-json"
                    self.other_frames[str(kind)] += 1
        except ConnectionClosed:
            pass
        except Exception as e:  # pragma: no cover - recorded, not raised
            self.closes[f"reader error {type(e).__name__}"] += 1
            return
        if not self.closing:
            rcvd = ws.close_rcvd
            key = f"{rcvd.code} {rcvd.reason}" if rcvd else "no close frame"
            self.closes[key] += 1

    async def close(self) -> None:
        self.closing = True
        sem = asyncio.Semaphore(500)

        async def one(ws) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await ws.close()

        await asyncio.gather(*(one(ws) for ws in self.conns))
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def base_of(url: str) -> str:
    return re.sub(r"^ws", "http", url.split("/api/", 1)[0]).rstrip("/")


def server_pid(a: argparse.Namespace) -> int:
    if a.pid:
        return a.pid
    if a.stats:
        return int(get_json(a.stats)["pid"])
    port = int(re.search(r":(\d+)", a.url.split("//", 1)[1]).group(1))
    return pid_listening(port)


async def wait_server_sees(a: argparse.Namespace, n: int, seconds: float = 30) -> dict:
    """The gateway's own count of realtime connections (or rt's /stats clients)."""
    deadline = time.monotonic() + seconds
    while True:
        if a.stats:
            st = get_json(a.stats)
            seen = st.get("clients", 0)
        else:
            st = readyz(base_of(a.url))
            seen = st.get("connections", 0)
        if seen >= n or time.monotonic() > deadline:
            return st
        await asyncio.sleep(0.1)


def common_fields(a: argparse.Namespace, fleet: Fleet) -> dict:
    return {
        "label": a.label,
        "target": a.target,
        "case": a.case or a.label,
        "repeat": a.repeat,
        "clients": a.clients,
        "connected": len(fleet.conns),
        "connect_errors": dict(fleet.connect_errors),
    }


async def run(a: argparse.Namespace) -> dict:
    run_id = uuid.uuid4().hex[:12]
    pid = server_pid(a)
    fleet = Fleet(a, run_id, a.messages)
    connect_s = await fleet.open()
    if len(fleet.conns) < a.clients:
        print(
            f"warning: only {len(fleet.conns)} of {a.clients} clients connected: "
            f"{dict(fleet.connect_errors)}",
            file=sys.stderr,
        )
    st0 = await wait_server_sees(a, len(fleet.conns))
    if not a.plain and st0.get("relay") != "leading":
        print(
            f"warning: this gateway's relay is {st0.get('relay')!r}, not leading", file=sys.stderr
        )

    tap = None
    if a.tap and not a.plain:
        channel = a.tap
        if channel == "auto":  # the relay publishes on gateway:events:<installation key>
            import asyncpg

            conn = await asyncpg.connect(a.dsn)
            try:
                key = await conn.fetchval("SELECT key FROM installation WHERE id = 1")
            finally:
                await conn.close()
            channel = f"gateway:events:{key}"
        tap = RedisTap(a.redis, channel, run_id)
        await tap.start()
    cpu0 = proc_cpu_s(pid)
    self0 = time.process_time()
    t_start = now_ns()
    pub = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "publish",
        "--dsn",
        a.dsn,
        "--org",
        a.org,
        "--run",
        run_id,
        "--messages",
        str(a.messages),
        "--rate",
        str(a.rate),
        "--payload",
        str(a.payload),
        "--connections",
        str(a.publishers),
        *(["--cpu", a.publisher_cpu] if a.publisher_cpu else []),
        stdout=asyncio.subprocess.PIPE,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(fleet.done.wait(), timeout=a.timeout)
    cpu_server = proc_cpu_s(pid) - cpu0
    cpu_self = time.process_time() - self0
    t_end = now_ns()
    out, _ = await asyncio.wait_for(pub.communicate(), timeout=60)
    if pub.returncode != 0:
        raise SystemExit(f"publisher failed ({pub.returncode})")
    pubinfo = json.loads(out.decode().strip().splitlines()[-1])
    await asyncio.sleep(0.2)  # frames still in flight after a timeout count as lost
    st1 = readyz(base_of(a.url)) if not a.stats else get_json(a.stats)
    await fleet.close()
    relay: dict = {}
    if tap is not None:
        await tap.stop()
        lag = sorted(tap.lag_ns)
        if lag:
            relay_span = (tap.last - pubinfo["first_ts"]) / 1e9
            relay = {
                "relay_published": len(lag),
                "relay_p50_ms": round(lag[len(lag) // 2] / 1e6, 3),
                "relay_p99_ms": round(lag[min(len(lag) - 1, int(0.99 * len(lag)))] / 1e6, 3),
                "relay_max_ms": round(lag[-1] / 1e6, 3),
                "relay_span_s": round(relay_span, 3),
                "relay_events_per_s": round(len(lag) / relay_span, 1) if relay_span > 0 else None,
            }

    lat_ms = sorted(x / 1e6 for x in fleet.lat_ns)

    def pct(p: float) -> float | None:
        if not lat_ms:
            return None
        return round(lat_ms[min(len(lat_ms) - 1, int(p / 100 * len(lat_ms)))], 3)

    received = fleet.received
    first_ts = pubinfo["first_ts"]
    span_s = (fleet.last_recv - first_ts) / 1e9 if received else None
    wall_s = (t_end - t_start) / 1e9
    per_frame = round(cpu_server / received * 1e6, 2) if received else None
    return {
        **common_fields(a, fleet),
        "messages": a.messages,
        "rate": a.rate,
        "payload": a.payload,
        "publishers": a.publishers,
        "expected": fleet.expected,
        "delivered": received,
        "lost": fleet.expected - received,
        "gaps": fleet.gaps,
        "out_of_order": fleet.out_of_order,
        "foreign_events": fleet.foreign,
        "other_frames": dict(fleet.other_frames),
        "closed_by_server": dict(fleet.closes),
        "timed_out": not fleet.done.is_set(),
        "connect_s": round(connect_s, 3),
        "publish_s": round((pubinfo["last_ts"] - first_ts) / 1e9, 3),
        "publisher_max_behind_s": pubinfo["max_behind_s"],
        "publisher_cpu_s": pubinfo["cpu_s"],
        "insert_p50_ms": pubinfo["insert_p50_ms"],
        "insert_p99_ms": pubinfo["insert_p99_ms"],
        "first_delivery_ms": round((fleet.first_recv - first_ts) / 1e6, 3) if received else None,
        "span_s": round(span_s, 3) if span_s else None,
        "delivered_per_s": round(received / span_s, 1) if span_s else None,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(lat_ms[-1], 3) if lat_ms else None,
        "mean_ms": round(sum(lat_ms) / len(lat_ms), 3) if lat_ms else None,
        "server_pid": pid,
        "server_cpu_s": round(cpu_server, 3),
        "server_cpu_busy_pct": round(100 * cpu_server / wall_s, 1),
        "server_cpu_us_per_frame": per_frame,
        "cpu_us_per_frame": per_frame,
        "client_cpu_s": round(cpu_self, 3),
        **relay,
        "server_before": st0,
        "server_after": st1,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


async def idle(a: argparse.Namespace) -> dict:
    pid = server_pid(a)
    run_id = uuid.uuid4().hex[:12]
    if a.warmup:  # load what the first connection loads lazily, outside the measurement
        warm = Fleet(argparse.Namespace(**{**vars(a), "clients": a.warmup}), run_id, 0)
        await warm.open()
        await warm.close()
        await asyncio.sleep(1.0)
    rss0 = proc_rss_kb(pid)
    cpu0 = proc_cpu_s(pid)
    fleet = Fleet(a, run_id, 0)
    connect_s = await fleet.open()
    st = await wait_server_sees(a, len(fleet.conns))
    rss1 = proc_rss_kb(pid)
    cpu1 = proc_cpu_s(pid)
    samples = [rss1]
    t_settle = time.monotonic()
    while time.monotonic() - t_settle < a.settle:
        await asyncio.sleep(1.0)
        samples.append(proc_rss_kb(pid))
    cpu_settle = proc_cpu_s(pid) - cpu1
    settle_s = time.monotonic() - t_settle
    alive = sum(1 for ws in fleet.conns if ws.close_code is None)
    await fleet.close()
    n = max(1, len(fleet.conns))
    rss2 = samples[-1]
    return {
        **common_fields(a, fleet),
        "messages": 0,
        "rate": 0,
        "connect_s": round(connect_s, 3),
        "alive_after_settle": alive,
        "closed_by_server": dict(fleet.closes),
        "other_frames": dict(fleet.other_frames),
        "server_pid": pid,
        "server_seen": st.get("connections", st.get("clients")),
        "rss_before_kb": rss0,
        "rss_connected_kb": rss1,
        "rss_settled_kb": rss2,
        "rss_max_kb": max(samples),
        "settle_s": round(settle_s, 1),
        "rss_kb_per_conn": round((rss2 - rss0) / n, 2),
        "rss_kb_per_conn_connected": round((rss1 - rss0) / n, 2),
        "server_cpu_connect_s": round(cpu1 - cpu0, 3),
        "server_cpu_us_per_connect": round((cpu1 - cpu0) / n * 1e6, 1),
        "server_cpu_idle_pct": round(100 * cpu_settle / settle_s, 2),
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("publish", help="internal: the publisher subprocess")
    p.add_argument("--dsn", required=True)
    p.add_argument("--org", default="bench")
    p.add_argument("--run", required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--payload", type=int, default=40)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--cpu")

    def clients_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--url", default="ws://127.0.0.1:8000/api/v1/realtime")
        q.add_argument("--token", default=os.environ.get("GATEWAY_TOKEN", ""))
        q.add_argument(
            "--plain",
            action="store_true",
            help="no auth/subscribe handshake (the reference server rt)",
        )
        q.add_argument("--stats", help="a /stats URL giving the server pid (rt)")
        q.add_argument("--pid", type=int, help="server pid (default: the one on the URL's port)")
        q.add_argument("--clients", type=int, default=100)
        q.add_argument("--connect-concurrency", type=int, default=200)
        q.add_argument("--label", default="")
        q.add_argument("--case", default="", help="case name shared with the reference's runs")
        q.add_argument("--target", default="gw")
        q.add_argument("--repeat", type=int, default=None)
        q.add_argument("--out", default=os.environ.get("RT_OUT", "/tmp/bench-results/rt-gw.jsonl"))  # noqa: S108
        q.add_argument("--cpu", help="pin this process (and the publisher) to these CPUs")

    r = sub.add_parser("run", help="a fan-out run")
    clients_args(r)
    r.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gateway_bench"),
    )
    r.add_argument("--org", default="bench")
    r.add_argument("--messages", type=int, default=1000)
    r.add_argument("--rate", type=float, default=0, help="events/s, 0 = as fast as possible")
    r.add_argument("--payload", type=int, default=40, help="padding characters per snapshot")
    r.add_argument(
        "--publishers",
        type=int,
        default=1,
        help="publisher connections (events stay numbered in order of n)",
    )
    r.add_argument("--publisher-cpu", help="pin the publisher (default: inherit)")
    r.add_argument("--timeout", type=float, default=45, help="s after the publisher starts")
    r.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    r.add_argument(
        "--tap",
        default="auto",
        help="the relay's Redis channel, to time when each event was published"
        " (auto: read the installation key from the database)",
    )
    r.add_argument(
        "--no-tap",
        dest="tap",
        action="store_const",
        const="",
        help="do not subscribe to the relay's channel",
    )

    i = sub.add_parser("idle", help="resident memory per idle subscribed connection")
    clients_args(i)
    i.add_argument("--settle", type=float, default=5.0)
    i.add_argument("--warmup", type=int, default=10, help="connections opened and closed first")

    a = ap.parse_args()
    if a.cmd == "publish":
        asyncio.run(publisher(a))
        return
    pin(a.cpu)
    if not a.plain and not a.token:
        raise SystemExit("give --token or set GATEWAY_TOKEN")
    raise_nofile(a.clients + 1024)
    try:
        import uvloop  # the reference's client uses it when present; so do we

        uvloop.install()
    except ImportError:
        pass
    res = asyncio.run(run(a) if a.cmd == "run" else idle(a))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as fh:
        fh.write(json.dumps(res) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k not in ("server_before", "server_after")}))


if __name__ == "__main__":
    main()
