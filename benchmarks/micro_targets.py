#!/usr/bin/env python3
"""Reads Google Benchmark JSON from kadnet_bench_micro and prints the foundation's targets as
ratios measured in that same run (docs/BENCHMARKS.md)."""
import json
import sys

# With --benchmark_repetitions the median of the repetitions is used (it resists the odd slow
# run on a shared machine); otherwise the single run.
benchmarks = json.load(open(sys.argv[1]))["benchmarks"]
runs = {b["name"]: b for b in benchmarks if b.get("run_type") != "aggregate"}
runs.update({b["run_name"]: b for b in benchmarks
             if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median"})


def cpu(name):
    return runs[name]["cpu_time"] if name in runs else None


def rate(name, key):
    return runs[name].get(key) if name in runs else None


rows = []
hs, prim = cpu("BM_responder_handshake"), cpu("BM_handshake_primitives")
if hs and prim:
    rows.append(("responder handshake / sum of its libsodium primitives", hs / prim, "<= 1.20", hs / prim <= 1.2))
for op in ("seal", "open"):
    ours, raw = rate(f"BM_{op}_64k", "bytes_per_second"), rate(f"BM_raw_aead_{op}_64k", "bytes_per_second")
    if ours and raw:
        rows.append((f"{op} 64 KiB: kadnet / raw libsodium AEAD", ours / raw, ">= 0.90", ours / raw >= 0.9))
pings = rate("BM_ping_round_trips_tcp/64/real_time", "items_per_second")
if pings:
    rows.append(("PING round trips/s over TCP loopback, 64 in flight", pings, ">= 100000", pings >= 100000))

print()
print(f"{'target':58} {'measured':>12} {'goal':>10}  met")
for name, value, goal, met in rows:
    shown = f"{value:,.0f}" if value > 100 else f"{value:.3f}"
    print(f"{name:58} {shown:>12} {goal:>10}  {'yes' if met else 'NO'}")
json.dump([{"bench": "micro", "target": n, "measured": v, "goal": g, "met": m} for n, v, g, m in rows],
          open(sys.argv[1] + ".targets.json", "w"), indent=1)
