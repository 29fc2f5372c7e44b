#!/usr/bin/env python3
"""The relay's own ceiling: commit N change-log rows at once, time how fast it publishes them.

  relay_drain.py --dsn DSN [--events 20000] [--redis URL] [--payload 40]

One transaction INSERTs ``--events`` rows into ``events`` for the bench organization
(one statement, ``generate_series``) and commits; the gateway's relay (the process
holding the advisory lock) then numbers them ``BATCH`` at a time and publishes each
batch on Redis. An independent subscriber on the relay's channel (``RedisTap`` from
rt_client.py) notes when each arrives. Prints one JSON line: events/s from the commit
to the last one published, and the first / median / last publish time after the
commit. Writers committing one event per transaction are measured by
``rt_client.py run --publishers K`` instead (ops/bench/scale runs both).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rt_client import RedisTap, now_ns

INSERT = (
    "INSERT INTO events (organization_id, type, resource, resource_id, actor, snapshot,"
    " created_at) SELECT $1, 'order.updated', 'order', g::text, 'bench',"
    " jsonb_build_object('id', g, 'status', 'paid', 'run', $2::text, 'ts', 0, 'pad', $3::text),"
    " now() FROM generate_series(1, $4) AS g"
)


async def main(a: argparse.Namespace) -> dict[str, object]:
    import asyncpg

    run_id = uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(a.dsn)
    org = await conn.fetchval("SELECT id FROM organizations WHERE slug = $1", a.org)
    key = await conn.fetchval("SELECT key FROM installation WHERE id = 1")
    tap = RedisTap(a.redis, f"gateway:events:{key}", run_id)
    await tap.start()
    t0 = now_ns()
    async with conn.transaction():
        await conn.execute(INSERT, org, run_id, "x" * a.payload, a.events)
    t_commit = now_ns()
    deadline = asyncio.get_running_loop().time() + a.timeout
    while len(tap.lag_ns) < a.events and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the tap only counts: nothing to wait on
    await tap.stop()
    await conn.close()
    got = sorted(tap.lag_ns)  # with ts = 0 these are the receive times themselves
    span_s = (got[-1] - t_commit) / 1e9 if got else None
    return {
        "events": a.events,
        "published": len(got),
        "insert_commit_s": round((t_commit - t0) / 1e9, 3),
        "first_ms": round((got[0] - t_commit) / 1e6, 1) if got else None,
        "median_ms": round((got[len(got) // 2] - t_commit) / 1e6, 1) if got else None,
        "last_ms": round((got[-1] - t_commit) / 1e6, 1) if got else None,
        "events_per_s": round(len(got) / span_s) if span_s else None,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gateway_bench"),
    )
    ap.add_argument("--org", default="bench")
    ap.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--payload", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=120)
    print(json.dumps(asyncio.run(main(ap.parse_args()))))
