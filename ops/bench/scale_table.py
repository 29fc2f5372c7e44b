#!/usr/bin/env python3
"""Markdown tables from ``ops/bench/scale``'s JSON lines: ``scale_table.py FILE.jsonl``."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per parameter: median req/s and p99 over rounds, and the median of the per-round
    cost ratios (µs/request over the smallest parameter's in the same round)."""
    if not runs:
        return []
    smallest = min(r["param"] for r in runs)
    base = {r.get("round", 1): r["rps"] for r in runs if r["param"] == smallest}
    out = []
    for param in sorted({r["param"] for r in runs}):
        mine = [r for r in runs if r["param"] == param]
        ratios = sorted(
            base[r.get("round", 1)] / r["rps"] for r in mine if r.get("round", 1) in base
        )
        out.append(
            {
                "param": param,
                "rounds": len(mine),
                "rps": statistics.median(r["rps"] for r in mine),
                "cpu_us": statistics.median(r.get("cpu_us_per_req") or float("nan") for r in mine),
                "p99_ms": statistics.median(r["p99_ms"] for r in mine if r["p99_ms"] is not None),
                "non_2xx": sum(r["non_2xx"] for r in mine),
                "load": "-".join(sorted({r["load"] for r in mine})[:: max(1, len(mine) - 1)]),
                "cost_ratio": statistics.median(ratios) if ratios else float("nan"),
                "ratio_range": f"{ratios[0]:.2f}-{ratios[-1]:.2f}" if ratios else "-",
            }
        )
    return out


def main(path: str) -> None:
    with open(path) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    lists = summarize([r for r in rows if r.get("case") == "list"])
    if lists:
        print(
            "REST list size (`GET /api/v1/orders?page_size=N`, wrk -c16, one worker; median of"
            f" {lists[0]['rounds']} rounds):\n"
        )
        print(
            "| rows | req/s | server CPU µs/request | CPU µs/row | CPU µs per extra row "
            "| req/s cost vs 10 rows (same round) | p99 ms | non-2xx | load |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        prev = None
        for r in lists:
            us = r["cpu_us"]
            extra = (us - prev[1]) / (r["param"] - prev[0]) if prev else None
            print(
                f"| {r['param']} | {r['rps']:,.0f} | {us:,.0f} | {us / r['param']:,.1f} "
                f"| {fmt(extra)} | {r['cost_ratio']:.2f}x ({r['ratio_range']}) "
                f"| {fmt(r['p99_ms'])} | {r['non_2xx']} | {r['load']} |"
            )
            prev = (r["param"], us)
        print()
    depth = summarize([r for r in rows if r.get("case") == "depth"])
    if depth:
        names = {1: "orders", 2: "+ items", 3: "+ product", 4: "+ supplier"}
        print(
            "GraphQL nesting depth (50 orders, ~150 items; wrk -c16, one worker; median of"
            f" {depth[0]['rounds']} rounds):\n"
        )
        print(
            "| depth | selection | req/s | server CPU µs/request | CPU vs depth 1 "
            "| req/s cost vs depth 1 (same round) | p99 ms | non-2xx | load |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in depth:
            us = r["cpu_us"]
            print(
                f"| {r['param']} | {names.get(r['param'], '')} | {r['rps']:,.0f} | {us:,.0f} "
                f"| {us / depth[0]['cpu_us']:.2f}x "
                f"| {r['cost_ratio']:.2f}x ({r['ratio_range']}) | {fmt(r['p99_ms'])} "
                f"| {r['non_2xx']} | {r['load']} |"
            )
        print()
    subs = [r for r in rows if r.get("case") == "subscribers"]
    if subs:
        print("Subscribers (JSON WebSocket, 10 events at 1/s, one worker, one client process):\n")
        print(
            "| subscribers | connected | delivered / expected | relay publish p50 ms "
            "| delivery p50 / p99 / max ms | server CPU µs/frame | server CPU ms/event |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in subs:
            per_frame = r.get("server_cpu_us_per_frame")
            per_event = per_frame * r["connected"] / 1e3 if per_frame else None
            print(
                f"| {r['clients']:,} | {r['connected']:,} | {r['delivered']:,} / {r['expected']:,} "
                f"| {fmt(r.get('relay_p50_ms'))} | {fmt(r['p50_ms'])} / {fmt(r['p99_ms'])} / "
                f"{fmt(r['max_ms'])} | {fmt(per_frame)} | {fmt(per_event)} |"
            )
        print()
    writers = [r for r in rows if r.get("case") == "writers"]
    drain = [r for r in rows if r.get("case") == "drain"]
    if writers or drain:
        print("Relay, one PostgreSQL (events/s published on Redis by the relay):\n")
        print(
            "| writers | events | committed/s | published/s | insert p50 / p99 ms "
            "| commit -> published p50 / p99 / max ms |"
        )
        print("|---|---|---|---|---|---|")
        for r in writers:
            committed = r["messages"] / r["publish_s"] if r.get("publish_s") else None
            print(
                f"| {r['publishers']} connections, one event per transaction | {r['messages']:,} "
                f"| {fmt(committed, 0)} | {fmt(r.get('relay_events_per_s'), 0)} "
                f"| {fmt(r['insert_p50_ms'], 2)} / {fmt(r['insert_p99_ms'], 2)} "
                f"| {fmt(r.get('relay_p50_ms'))} / {fmt(r.get('relay_p99_ms'))} / "
                f"{fmt(r.get('relay_max_ms'))} |"
            )
        for r in drain:
            print(
                f"| one transaction (drained by the relay) | {r['events']:,} | - "
                f"| {fmt(r['events_per_s'], 0)} | commit {r['insert_commit_s']} s "
                f"| first {fmt(r['first_ms'])}, median {fmt(r['median_ms'])}, "
                f"last {fmt(r['last_ms'])} |"
            )
        print()


if __name__ == "__main__":
    main(sys.argv[1])
