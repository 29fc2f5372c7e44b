#!/usr/bin/env python3
"""One table for the gateway's fan-out runs beside the reference server's.

  rt_table.py RESULTS.jsonl [...] [--md OUT.md]
  rt_table.py tag REF.jsonl --target rt --case burst-100 --repeat 2   (stdout: tagged lines)

Reads the JSON lines of ops/bench/rt_client.py (target "gw") and of the reference's
rt_fanout_bench.py (tagged with ``tag`` by ops/bench/realtime; untagged lines count as
target "rt", case = label without a "gw-" prefix). Per case: medians over repeats with
min-max, the gateway/reference ratio of delivered/s per repeat, each side's p50/p99,
server CPU us per delivered frame and losses, and for idle cases the resident memory per
connection. The last column checks the absolute targets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

# Absolute targets for the gateway (see the brief in ops/bench/realtime).
P99_TARGET_MS = {"paced-100@100": 25.0, "paced-1000@10": 100.0}
RSS_TARGET_KB = 40.0


def tag(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="rt_table.py tag")
    ap.add_argument("file")
    ap.add_argument("--target", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--repeat", type=int)
    a = ap.parse_args(argv)
    for line in Path(a.file).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            row.update(target=a.target, case=a.case, repeat=a.repeat)
            row.setdefault("cpu_us_per_frame", row.get("server_cpu_us_per_frame"))
            print(json.dumps(row))


def target_of(row: dict) -> str:
    return row.get("target") or ("gw" if str(row.get("label", "")).startswith("gw-") else "rt")


def case_of(row: dict) -> str:
    label = str(row.get("label", ""))
    return row.get("case") or (label[3:] if label.startswith("gw-") else label)


def fmt(vals: list, spec: str) -> str:
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    med = format(statistics.median(vals), spec)
    if len(vals) == 1:
        return med
    return f"{med} ({format(min(vals), spec)}-{format(max(vals), spec)})"


def ratios(gw: list[dict], rt: list[dict], key: str) -> list[float]:
    by_repeat = {r.get("repeat"): r.get(key) for r in rt}
    out = []
    for g in gw:
        ref = by_repeat.get(g.get("repeat"))
        if g.get(key) and ref:
            out.append(g[key] / ref)
    if not out and gw and rt:  # no repeat to pair on: ratio of medians
        gv = [g[key] for g in gw if g.get(key)]
        rv = [r[key] for r in rt if r.get(key)]
        if gv and rv:
            out.append(statistics.median(gv) / statistics.median(rv))
    return out


def notes(rows: list[dict]) -> str:
    out = []
    closes: dict[str, int] = {}
    for r in rows:
        for k, v in (r.get("closed_by_server") or {}).items():
            closes[k] = closes.get(k, 0) + v
    if closes:
        out.append("closed " + ", ".join(f"{k}x{v}" for k, v in closes.items()))
    for key in ("gaps", "out_of_order"):
        n = sum(r.get(key) or 0 for r in rows)
        if n:
            out.append(f"{key} {n}")
    errs = sum(sum((r.get("connect_errors") or {}).values()) for r in rows)
    if errs:
        out.append(f"connect errors {errs}")
    short = [r for r in rows if r.get("connected") is not None and r["connected"] < r["clients"]]
    if short:
        out.append(f"{len(short)} run(s) short of clients")
    if any(r.get("timed_out") for r in rows):
        out.append("timed out")
    relay = [r for r in rows if r.get("relay_p50_ms") is not None]
    if relay:
        out.append(
            f"insert->relay PUBLISH p50 {fmt([r['relay_p50_ms'] for r in relay], ',.1f')} "
            f"p99 {fmt([r['relay_p99_ms'] for r in relay], ',.1f')} ms"
        )
    inserts = [r for r in rows if r.get("insert_p50_ms") is not None]
    if inserts:
        out.append(f"INSERT commit p50 {fmt([r['insert_p50_ms'] for r in inserts], '.1f')} ms")
    bound = [
        r
        for r in rows
        if not r.get("rate") and r.get("span_s") and r.get("publish_s", 0) >= 0.9 * r["span_s"]
    ]
    if bound:
        out.append(
            f"{len(bound)} burst run(s) paced by the INSERTs (publish_s ~ span_s;"
            " try RT_CLIENT_ARGS=--publishers 4)"
        )
    return "; ".join(out)


def check(case: str, gw: list[dict]) -> str:
    if not gw:
        return ""
    verdicts = []
    if any("rss_kb_per_conn" in r for r in gw):
        worst = max(r["rss_kb_per_conn"] for r in gw)
        verdicts.append(
            f"{'ok' if worst < RSS_TARGET_KB else 'FAIL'}: {worst:.1f} KB/conn "
            f"(< {RSS_TARGET_KB:.0f})"
        )
        return "; ".join(verdicts)
    lost = sum(r.get("lost") or 0 for r in gw)
    verdicts.append("lost 0" if lost == 0 else f"FAIL: lost {lost}")
    limit = P99_TARGET_MS.get(case)
    if limit is not None:
        p99s = [r.get("p99_ms") for r in gw]
        if None in p99s:
            verdicts.append("FAIL: no p99")
        else:
            worst = max(p99s)
            verdict = "ok" if worst < limit else "FAIL"
            verdicts.append(f"{verdict}: p99 {worst:.1f} ms (< {limit:.0f})")
    return "; ".join(verdicts)


def size(rows: list[dict]) -> str:
    r = rows[0]
    if "rss_kb_per_conn" in r:
        return f"{r['clients']:,} idle"
    rate = r.get("rate") or 0
    return f"{r['clients']:,} x {r['messages']:,} @ {'max' if not rate else f'{rate:g}/s'}"


def table(files: list[str]) -> str:
    rows = []
    for f in files:
        rows += [json.loads(line) for line in Path(f).read_text().splitlines() if line.strip()]
    cases: list[str] = []
    for r in rows:
        if case_of(r) not in cases:
            cases.append(case_of(r))
    head = (
        "| case | size gw (ref) | runs gw/ref | delivered/s gw | delivered/s ref | gw/ref | "
        "p50 ms gw | p50 ms ref | p99 ms gw | p99 ms ref | CPU us/frame gw | "
        "CPU us/frame ref | lost gw/ref | RSS KB/conn gw | RSS KB/conn ref | target | "
        "gateway notes |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for case in cases:
        gw = [r for r in rows if case_of(r) == case and target_of(r) == "gw"]
        rt = [r for r in rows if case_of(r) == case and target_of(r) != "gw"]
        sz = size(gw or rt)
        if gw and rt and size(rt) != sz:
            sz += f" ({size(rt)})"
        ratio = ratios(gw, rt, "delivered_per_s")
        lost = (
            f"{sum(r.get('lost') or 0 for r in gw) if gw else '-'}/"
            f"{sum(r.get('lost') or 0 for r in rt) if rt else '-'}"
        )
        idle = any("rss_kb_per_conn" in r for r in gw + rt)
        col = lambda rs, k, s: fmt([r.get(k) for r in rs], s)  # noqa: E731
        lines.append(
            f"| {case} | {sz} | {len(gw)}/{len(rt)} | "
            f"{col(gw, 'delivered_per_s', ',.0f')} | {col(rt, 'delivered_per_s', ',.0f')} | "
            f"{fmt(ratio, '.2f')} | "
            f"{col(gw, 'p50_ms', ',.1f')} | {col(rt, 'p50_ms', ',.1f')} | "
            f"{col(gw, 'p99_ms', ',.1f')} | {col(rt, 'p99_ms', ',.1f')} | "
            f"{col(gw, 'server_cpu_us_per_frame', '.1f')} | "
            f"{col(rt, 'server_cpu_us_per_frame', '.1f')} | "
            f"{'-' if idle else lost} | "
            f"{col(gw, 'rss_kb_per_conn', '.1f')} | {col(rt, 'rss_kb_per_conn', '.1f')} | "
            f"{check(case, gw)} | {notes(gw)} |"
        )
    lines.append("")
    lines.append(
        "Burst latencies are backlog drain times, not per-event latency. Gateway latency "
        "starts before its INSERT (commit + relay + Redis + fan-out); the reference's "
        "before its Redis PUBLISH. CPU us/frame: the server process's utime+stime over "
        "the run / frames delivered (the gateway's includes its relay's work)."
    )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "tag":
        tag(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("files", nargs="+")
    ap.add_argument("--md", help="also write the table to this file")
    a = ap.parse_args()
    text = table(a.files)
    print(text)
    if a.md:
        Path(a.md).write_text(text + "\n")


if __name__ == "__main__":
    main()
