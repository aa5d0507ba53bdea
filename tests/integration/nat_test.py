#!/usr/bin/env python3
"""Nodes behind real Linux NATs (nftables masquerade in network namespaces).

BehindNatTest: a node behind a NAT joins the DHT, stores and finds values, and is reached over
its own outbound sessions — over tcp, udp and ws (PROTOCOL.md 8.3: nodes that cannot accept
connections). HolePunchingTest: two nodes behind two NATs meet directly over UDP through an
introduction (PROTOCOL.md 5.14), and through a relay over tcp and ws (5.15). PunchingFailsTest:
where a router that maps per destination defeats the punch, the relay takes over.

Usage: nat_test.py PATH_TO_KADNET [unittest arguments...]   (root, `ip` and `nft` needed)

    public namespace (bridge)            nat namespace i                home namespace i
    P0..P3 on 198.18.1.1 .. 198.18.4.1 ── 198.18.(100+i).1 | 198.19.i.1 ── H on 198.19.i.2 (no listener)
                                          masquerade out of the public side (optionally with a
                                          random port per destination); new connections to the
                                          router itself from there are dropped

The public side has no route to 198.19.0.0/16: whatever reaches a home node went through a NAT.
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


def nat_public(i):
    return f"198.18.{100 + i}.1"


def nat_private(i):
    return f"198.19.{i}.1"


def home_host(i):
    return f"198.19.{i}.2"


def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Topology:
    """A public namespace (the public hosts on a bridge) and, behind it, `homes` NAT routers with
    one home namespace each. A router masquerades what leaves by its public side and, like a home
    router's firewall, drops new connections to itself from there."""

    def __init__(self, homes=1, per_destination=None):
        """`per_destination[i]`: router i maps each destination to a port of its own ("symmetric")."""
        per_destination = per_destination or [False] * homes
        tag = str(os.getpid() % 100000)
        self.public = f"knpub{tag}"
        self.nats = [f"knnat{tag}n{i}" for i in range(homes)]
        self.homes = [f"knhome{tag}n{i}" for i in range(homes)]
        self.namespaces = []
        try:
            for ns in [self.public] + self.nats + self.homes:
                sh("ip", "netns", "add", ns)
                self.namespaces.append(ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            bridge = f"kb{tag}"
            sh("ip", "-n", self.public, "link", "add", bridge, "type", "bridge")
            sh("ip", "-n", self.public, "link", "set", bridge, "up")
            for host in PUBLIC_HOSTS:
                sh("ip", "-n", self.public, "addr", "add", f"{host}/16", "dev", bridge)
            for i, (nat, home) in enumerate(zip(self.nats, self.homes)):
                outside, inside = f"kp{tag}o{i}", f"kp{tag}i{i}"
                self.veth(f"kp{tag}b{i}", self.public, outside, nat)
                sh("ip", "-n", self.public, "link", "set", f"kp{tag}b{i}", "master", bridge)
                self.veth(inside, nat, f"kp{tag}h{i}", home)
                sh("ip", "-n", nat, "addr", "add", f"{nat_public(i)}/16", "dev", outside)
                sh("ip", "-n", nat, "addr", "add", f"{nat_private(i)}/24", "dev", inside)
                sh("ip", "-n", home, "addr", "add", f"{home_host(i)}/24", "dev", f"kp{tag}h{i}")
                sh("ip", "-n", home, "route", "add", "default", "via", nat_private(i))
                sh("ip", "netns", "exec", nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
                nft = ["ip", "netns", "exec", nat, "nft"]
                sh(*nft, "add", "table", "ip", "nat")
                sh(*nft, "add chain ip nat post { type nat hook postrouting priority 100 ; }")
                sh(*nft, "add", "rule", "ip", "nat", "post", "oifname", outside, "masquerade",
                   *(["fully-random"] if per_destination[i] else []))
                sh(*nft, "add", "table", "ip", "filter")
                sh(*nft, "add chain ip filter input { type filter hook input priority 0 ; }")
                sh(*nft, "add", "rule", "ip", "filter", "input", "iifname", outside, "ct", "state", "new", "drop")
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


class NatTestCase(cli_test.KadnetTestCase):
    HOMES = 1
    PER_DESTINATION = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
            raise unittest.SkipTest(SKIP_MESSAGE)
        cls.net = Topology(cls.HOMES, cls.PER_DESTINATION)

    @classmethod
    def tearDownClass(cls):
        cls.net.remove()

    def public_swarm(self, scheme):
        first = self.node(scheme=scheme, host=PUBLIC_HOSTS[0], netns=self.net.public)
        swarm = [first]
        for host in PUBLIC_HOSTS[1:]:
            swarm.append(self.joined("--bootstrap", first.uri, scheme=scheme, host=host, netns=self.net.public))
        return swarm

    def home_node(self, i, public, *extra):
        return self.joined("--bootstrap", public[0].uri, *extra, listen=False, netns=self.net.homes[i])


class BehindNatTest(NatTestCase):
    def check_home_node(self, scheme):
        public = self.public_swarm(scheme)
        home = self.home_node(0, public)
        # The public nodes told it how they see it: as the NAT (STUN-like, PROTOCOL.md 5.13).
        observed = home.command("id").get("observed", "")
        self.assertTrue(observed.startswith(nat_public(0) + ":"), observed)

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
                self.assertFalse([a for a in contact["addresses"] if home_host(0) in a or nat_public(0) in a], r)
                if contact["id"] == home.id:
                    self.assertEqual(contact["addresses"], [], r)

    def test_tcp(self):
        self.check_home_node("tcp")

    def test_udp(self):
        self.check_home_node("udp")

    def test_ws(self):
        self.check_home_node("ws")


def peers_of(node):
    return {p["id"]: p for p in node.command("peers")["peers"]}


class HolePunchingTest(NatTestCase):
    """Two nodes behind two NATs meet: directly over UDP, where a public node both have a session
    with introduces them and the target punches its NAT open (PROTOCOL.md 5.14); through that
    public node as a relay over TCP and WebSocket (5.15)."""
    HOMES = 2

    def test_udp_nodes_behind_two_nats_meet_directly(self):
        public = self.public_swarm("udp")
        a, b = self.home_node(0, public), self.home_node(1, public)
        r = a.command(f"whisper {b.id} through two NATs")
        self.assertEqual((r.get("ok"), r.get("to")), (True, b.id), r)
        ev = b.expect_json(lambda o: o.get("event") == "whisper")
        self.assertEqual((ev["sender"], ev["text"]), (a.id, "through two NATs"))

        # A dialed B's NAT; B sees A's: a direct session, through no public node.
        to_b = peers_of(a)[b.id]
        self.assertEqual((to_b["inbound"], to_b["relayed"]), (False, False), to_b)
        self.assertTrue(to_b["address"].startswith(nat_public(1) + ":"), to_b)
        to_a = peers_of(b)[a.id]
        self.assertEqual((to_a["inbound"], to_a["relayed"]), (True, False), to_a)
        self.assertTrue(to_a["address"].startswith(nat_public(0) + ":"), to_a)
        self.assertEqual(b.stats()["punches_wanted"], 1)
        self.assertEqual(sum(p.stats()["introductions"] for p in public), 1)
        self.assertEqual(sum(p.stats()["circuits_relayed"] for p in public), 0)

        # The session works both ways, by NodeId.
        self.assert_send(b, a.id, "and back")

    def check_relayed(self, scheme):
        # No hole punching for byte streams: a public node carries the session, sealed end to end.
        public = self.public_swarm(scheme)
        inbox = os.path.join(self.tmp.name, "inbox")
        a, b = self.home_node(0, public), self.home_node(1, public, "--inbox", inbox)
        self.assert_send(a, b.id, f"relayed over {scheme}")
        to_b = peers_of(a)[b.id]
        self.assertEqual((to_b["inbound"], to_b["relayed"]), (False, True), to_b)
        self.assertEqual(peers_of(b)[a.id]["relayed"], True)
        self.assertEqual(sum(p.stats()["circuits_relayed"] for p in public), 1)
        self.assertEqual(b.stats()["relayed_sessions_accepted"], 1)
        self.assert_send(b, a.id, "and back")

        # A file goes over the relayed session too, on a byte stream (PROTOCOL.md 9.6, 9.7).
        data = os.urandom(1024 * 1024 + 3)
        src = os.path.join(self.tmp.name, "through-the-relay.bin")
        with open(src, "wb") as f:
            f.write(data)
        r = a.command(f"sendfile {b.id} {src}")
        self.assertIs(r.get("ok"), True, r)
        done = b.expect_json(lambda o: o.get("event") in ("file_received", "file_refused"))
        self.assertIs(done.get("ok"), True, done)
        with open(os.path.join(inbox, "through-the-relay.bin"), "rb") as f:
            self.assertTrue(f.read() == data, "the file differs after the relay")
        self.assertEqual(sum(p.stats()["circuits_relayed"] for p in public), 1)  # the same circuit

    def test_tcp_nodes_behind_two_nats_meet_through_a_relay(self):
        self.check_relayed("tcp")

    def test_ws_nodes_behind_two_nats_meet_through_a_relay(self):
        self.check_relayed("ws")


class PunchingFailsTest(NatTestCase):
    """A's router maps each destination to a random port of its own: the address C saw is not
    the one A's hello to B leaves from, so B punched the wrong port and the introduction cannot
    work (PROTOCOL.md 5.14). The relay takes over (5.15)."""
    HOMES = 2
    PER_DESTINATION = [True, False]

    def test_udp_falls_back_to_a_relay(self):
        public = self.public_swarm("udp")
        a, b = self.home_node(0, public), self.home_node(1, public)
        r = a.command(f"send {b.id} 64 after the punch failed", timeout=cli_test.COMMAND_TIMEOUT + 10)
        self.assertEqual((r.get("ok"), r.get("reply")), (True, "after the punch failed"), r)
        self.assertEqual(b.stats()["punches_wanted"], 1)
        self.assertEqual(peers_of(a)[b.id]["relayed"], True)
        self.assertEqual(sum(p.stats()["circuits_relayed"] for p in public), 1)


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
