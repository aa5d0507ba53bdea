#!/usr/bin/env python3
"""A node behind a real Linux NAT (nftables masquerade in network namespaces) joins the DHT,
stores and finds values, and is reached over its own outbound sessions — over tcp, udp and ws
(DESIGN.md: NAT tests; PROTOCOL.md 8.3: nodes that cannot accept connections).

Usage: nat_test.py PATH_TO_KADNET [unittest arguments...]   (root, `ip` and `nft` needed)

    public namespace                     nat namespace                  home namespace
    P0..P3 on 198.18.1.1 .. 198.18.4.1 ── 198.18.100.1 | 198.19.0.1 ── H on 198.19.0.2 (no listener)
                                          masquerade out of the public side

The public side has no route to 198.19.0.0/24: whatever reaches H went through the NAT.
Only addresses in 198.18.0.0/15, only inside namespaces this test makes and removes.
"""
import os
import shutil
import subprocess
import sys
import unittest

import cli_test
from cli_test import Node

SKIP_MESSAGE = "skipped: needs root, ip netns and nft"
PUBLIC_HOSTS = ["198.18.1.1", "198.18.2.1", "198.18.3.1", "198.18.4.1"]  # one /24 each
NAT_PUBLIC, NAT_PRIVATE, HOME = "198.18.100.1", "198.19.0.1", "198.19.0.2"


def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Topology:
    """Three namespaces joined by two veth pairs, the middle one masquerading."""

    def __init__(self):
        tag = str(os.getpid() % 100000)
        self.public, self.nat, self.home = f"knpub{tag}", f"knnat{tag}", f"knhome{tag}"
        self.namespaces = []
        try:
            for ns in (self.public, self.nat, self.home):
                sh("ip", "netns", "add", ns)
                self.namespaces.append(ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            self.veth(f"kp{tag}a", self.public, f"kp{tag}b", self.nat)
            self.veth(f"kp{tag}c", self.nat, f"kp{tag}d", self.home)
            for host in PUBLIC_HOSTS:
                sh("ip", "-n", self.public, "addr", "add", f"{host}/16", "dev", f"kp{tag}a")
            sh("ip", "-n", self.nat, "addr", "add", f"{NAT_PUBLIC}/16", "dev", f"kp{tag}b")
            sh("ip", "-n", self.nat, "addr", "add", f"{NAT_PRIVATE}/24", "dev", f"kp{tag}c")
            sh("ip", "-n", self.home, "addr", "add", f"{HOME}/24", "dev", f"kp{tag}d")
            sh("ip", "-n", self.home, "route", "add", "default", "via", NAT_PRIVATE)
            sh("ip", "netns", "exec", self.nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            nft = ["ip", "netns", "exec", self.nat, "nft"]
            sh(*nft, "add", "table", "ip", "nat")
            sh(*nft, "add chain ip nat post { type nat hook postrouting priority 100 ; }")
            sh(*nft, "add", "rule", "ip", "nat", "post", "oifname", f"kp{tag}b", "masquerade")
        except BaseException:
            self.remove()
            raise

    def veth(self, a, ns_a, b, ns_b):
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "netns", ns_a)
        sh("ip", "link", "set", b, "netns", ns_b)
        sh("ip", "-n", ns_a, "link", "set", a, "up")
        sh("ip", "-n", ns_b, "link", "set", b, "up")

    def remove(self):
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.namespaces = []


class BehindNatTest(cli_test.KadnetTestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
            raise unittest.SkipTest(SKIP_MESSAGE)
        cls.net = Topology()

    @classmethod
    def tearDownClass(cls):
        cls.net.remove()

    def public_swarm(self, scheme):
        first = self.node(scheme=scheme, host=PUBLIC_HOSTS[0], netns=self.net.public)
        swarm = [first]
        for host in PUBLIC_HOSTS[1:]:
            swarm.append(self.joined("--bootstrap", first.uri, scheme=scheme, host=host, netns=self.net.public))
        return swarm

    def check_home_node(self, scheme):
        public = self.public_swarm(scheme)
        home = self.joined("--bootstrap", public[0].uri, listen=False, netns=self.net.home)
        # The public nodes told it how they see it: as the NAT (STUN-like, PROTOCOL.md 5.13).
        observed = home.command("id").get("observed", "")
        self.assertTrue(observed.startswith(NAT_PUBLIC + ":"), observed)

        # It stores and finds, through sessions it dialed out of the NAT.
        r = home.command(f"put nat/{scheme}/from-home written behind a NAT")
        self.assertTrue(r.get("ok"), r)
        r = public[2].command(f"get nat/{scheme}/from-home")
        self.assertEqual((r.get("ok"), r.get("value")), (True, "written behind a NAT"), r)
        r = public[3].command(f"put nat/{scheme}/to-home read behind a NAT")
        self.assertTrue(r.get("ok"), r)
        r = home.command(f"get nat/{scheme}/to-home")
        self.assertEqual((r.get("ok"), r.get("value")), (True, "read behind a NAT"), r)

        # The node it bootstrapped through reaches it by NodeId over its inbound session...
        peers = {p["id"]: p for p in public[0].command("peers")["peers"]}
        self.assertIn(home.id, peers)
        self.assertTrue(peers[home.id]["inbound"])
        self.assert_send(public[0], home.id, "reaching home through its own session")
        # ...and nobody hands it out as an address to dial: it has none.
        for p in public:
            r = p.command(f"find {home.id}")
            self.assertTrue(r.get("ok"), r)
            for contact in r["nodes"]:
                self.assertFalse([a for a in contact["addresses"] if HOME in a or NAT_PUBLIC in a], r)
                if contact["id"] == home.id:
                    self.assertEqual(contact["addresses"], [], r)

    def test_tcp(self):
        self.check_home_node("tcp")

    def test_udp(self):
        self.check_home_node("udp")

    def test_ws(self):
        self.check_home_node("ws")


def main():
    if len(sys.argv) < 2:
        print("usage: nat_test.py PATH_TO_KADNET [unittest args]", file=sys.stderr)
        return 2
    cli_test.KADNET = os.path.abspath(sys.argv[1])
    program = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False, verbosity=2)
    if program.result.skipped and not program.result.testsRun - len(program.result.skipped):
        print(SKIP_MESSAGE)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
