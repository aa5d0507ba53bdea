#!/usr/bin/env python3
"""Prints kadnet's and OpenDHT's swarm results side by side, with kadnet's ratios against the
issue's targets. Used by `./run.sh bench swarm --vs opendht`.

usage: compare.py KADNET_JSON OPENDHT_JSON [--json]

Each file holds the one JSON line that `kadnet swarm --json` or `kadnet_bench_opendht --json`
printed for the same number of nodes and operations. With --json, prints both objects and then
one object with the ratios.
"""
import json
import sys

# (label, field, unit) of the rows printed for both systems.
ROWS = [
    ("time to settle", "settle_s", "s"),
    ("puts stored", "put_success_pct", "%"),
    ("put median", "put_median_ms", "ms"),
    ("put p99", "put_p99_ms", "ms"),
    ("puts/s (64 in flight)", "put_ops_per_s", ""),
    ("gets found", "get_success_pct", "%"),
    ("get median (64 in flight)", "get_median_ms", "ms"),
    ("get p99 (64 in flight)", "get_p99_ms", "ms"),
    ("gets/s (64 in flight)", "get_ops_per_s", ""),
    ("CPU per get (64 in flight)", "get_cpu_us", "us"),
    ("CPU per put (64 in flight)", "put_cpu_us", "us"),
    ("get median, one at a time", "get_one_at_a_time_median_ms", "ms"),
    ("get p99, one at a time", "get_one_at_a_time_p99_ms", "ms"),
    ("RSS per node", "rss_per_node_kib", "KiB"),
    ("gets found after churn", "get_after_churn_success_pct", "%"),
    ("get median after churn", "get_after_churn_median_ms", "ms"),
]

# kadnet's ratios and the targets for them: (name, field, goal, is the goal met?).
RATIOS = [
    ("ops/s (gets, 64 in flight)", "get_ops_per_s", ">= 5x", lambda r: r >= 5),
    ("get latency (median, one at a time)", "get_one_at_a_time_median_ms", "<= 0.5x", lambda r: r <= 0.5),
    ("memory per node", "rss_per_node_kib", "<= 0.5x", lambda r: r <= 0.5),
    ("CPU per get", "get_cpu_us", "none", None),
    ("puts/s (64 in flight)", "put_ops_per_s", "none", None),
    ("put latency (median)", "put_median_ms", "none", None),
]


def load(path):
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    if len(lines) != 1:
        return {"error": f"expected one JSON line in its output, got {len(lines)}"}
    try:
        return json.loads(lines[0])
    except json.JSONDecodeError as e:
        return {"error": f"unreadable output ({e})"}


def ratio(k, o, field):
    if field not in k or field not in o or not o[field]:
        return None
    return k[field] / o[field]


def comparison(k, o):
    out = {"bench": "swarm_vs", "nodes": k.get("nodes"), "kadnet_transport": k.get("transport"),
           "other": "opendht"}
    if "error" in o:
        out["opendht_error"] = o["error"]
        return out
    for name, field, goal, met in RATIOS:
        r = ratio(k, o, field)
        out[field + "_ratio"] = r
        if met is not None and r is not None:
            out[field + "_target_met"] = met(r)
    out["kadnet_get_success_pct"] = k.get("get_success_pct")
    out["opendht_get_success_pct"] = o.get("get_success_pct")
    out["found_target_met"] = k.get("get_success_pct") == 100.0
    return out


def cell(v, unit):
    if v is None:
        return "-"
    return f"{v:,.2f} {unit}".rstrip()


def print_text(k, o):
    print(f"swarm: {k.get('nodes')} nodes, {k.get('puts')} puts then gets of fresh keys from random nodes, "
          f"one process each, same run (kadnet over {k.get('transport')}, OpenDHT over udp)")
    if "error" in k:
        print(f"  kadnet: {k['error']}")
        return
    unreached = o.get("error")
    print(f"  {'':28}{'kadnet':>16}{'opendht':>16}")
    for label, field, unit in ROWS:
        ov = None if unreached else o.get(field)
        print(f"  {label:28}{cell(k.get(field), unit):>16}{cell(ov, unit):>16}")
    if unreached:
        print(f"  OpenDHT did not run at this size: {unreached}")
        return
    print("  kadnet / OpenDHT:")
    c = comparison(k, o)
    for name, field, goal, met in RATIOS:
        r = c.get(field + "_ratio")
        verdict = "" if met is None or r is None else (" (met)" if met(r) else " (not met)")
        target = "" if goal == "none" else f", target {goal}{verdict}"
        print(f"    {name:37}{'-' if r is None else f'{r:.2f}x'}{target}")
    found = "met" if c["found_target_met"] else "not met"
    print(f"    {'gets found':37}{k.get('get_success_pct'):.2f} % vs {o.get('get_success_pct'):.2f} %, "
          f"target 100 % ({found})")


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 2:
        sys.exit(__doc__)
    k, o = load(args[0]), load(args[1])
    if "--json" in sys.argv[1:]:
        print(json.dumps(k))
        print(json.dumps(o))
        print(json.dumps(comparison(k, o)))
    else:
        print_text(k, o)


if __name__ == "__main__":
    main()
