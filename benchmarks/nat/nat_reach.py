#!/usr/bin/env python3
"""Two nodes behind two NATs (the namespaces of tests/integration/nat_test.py): how long the
first call from one to the other takes (lookup, introduction or relay, handshake: wall clock from
the CLI), the ping round trips over the session it made, against two public nodes, and the
goodput of a file sent over it (a byte stream: direct, or through the relay).

Usage (root, `ip` and `nft`): benchmarks/nat/nat_reach.py [PATH_TO_KADNET]
"""
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import cli_test  # noqa: E402
import nat_test  # noqa: E402
from cli_test import Node  # noqa: E402

cli_test.KADNET = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build", "bin", "kadnet"))

FILE_BYTES = 64 << 20


def start(n):
    return n.start()


def run(scheme, per_destination):
    net = nat_test.Topology(2, per_destination)
    scratch = tempfile.mkdtemp(prefix="kadnet-nat-reach-")
    nodes = []
    try:
        first = start(Node(scheme=scheme, host=nat_test.PUBLIC_HOSTS[0], netns=net.public)); nodes.append(first)
        for host in nat_test.PUBLIC_HOSTS[1:]:
            n = start(Node("--bootstrap", first.uri, scheme=scheme, host=host, netns=net.public)); nodes.append(n)
            n.expect_json(lambda o: o.get("event") == "joined", 20)
        homes = []
        inbox = os.path.join(scratch, "inbox")
        for i in range(2):
            extra = ["--inbox", inbox] if i == 1 else []
            h = start(Node("--bootstrap", first.uri, *extra, listen=False, netns=net.homes[i])); nodes.append(h)
            h.expect_json(lambda o: o.get("event") == "joined", 20)
            homes.append(h)
        a, b = homes
        t0 = time.monotonic()
        r = a.command(f"send {b.id} 64 hello", timeout=30)
        first_ms = (time.monotonic() - t0) * 1000
        assert r.get("ok"), r
        peer = {p["id"]: p for p in a.command("peers")["peers"]}[b.id]
        rtts = []
        for _ in range(50):
            rtts.append(a.command(f"ping {b.id}")["rtt_ms"])
        # A public node pinging another public node, for comparison.
        pub = [nodes[1].command(f"ping {nodes[2].id}")["rtt_ms"] for _ in range(50)]
        # A file over the same session: one byte stream, end to end.
        src = os.path.join(scratch, "payload.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(FILE_BYTES))
        sent = a.command(f"sendfile {b.id} {src}", timeout=120)
        assert sent.get("ok"), sent
        print(f"{scheme} per_destination={per_destination}: relayed={peer['relayed']} first call {first_ms:.1f} ms; "
              f"ping median {statistics.median(rtts):.3f} ms p90 {sorted(rtts)[44]:.3f}; "
              f"public-public median {statistics.median(pub):.3f} ms; "
              f"sendfile {FILE_BYTES >> 20} MiB {sent['mb_per_s']:.1f} MB/s")
    finally:
        for n in nodes:
            n.kill()
        net.remove()
        shutil.rmtree(scratch, ignore_errors=True)

if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("nat_reach.py: needs root (network namespaces)")
    run("udp", [False, False])  # both NATs keep one port per socket: an introduction
    run("udp", [True, False])   # A's NAT maps per destination: the punch fails, a relay follows
    run("tcp", [False, False])  # byte streams: a relay
    run("ws", [False, False])
