#!/usr/bin/env python3
"""End-to-end test of the `kadnet` command-line program.

Usage: cli_test.py PATH_TO_KADNET [unittest arguments...]

Everything runs on 127.0.0.1. Every wait is bounded: the test reads a node's output until the
line it expects shows up (or a deadline passes); there are no fixed sleeps.
"""
import hashlib
import json
import os
import queue
import re
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

KADNET = None  # set from argv in main()

START_TIMEOUT = 10.0    # a node prints its id / listening line
COMMAND_TIMEOUT = 15.0  # a command's result line (requests time out after --timeout ms)
EXIT_TIMEOUT = 10.0     # a process exits
SOCKET_TIMEOUT = 5.0    # raw socket operations against a node
NODE_REQUEST_TIMEOUT_MS = "4000"

HEX64 = re.compile(r"^[0-9a-f]{64}$")
PACKET_TYPES = {0: "hello", 1: "cookie", 9: "refuse", 10: "stream_data"}


def run_cli(*args, timeout=EXIT_TIMEOUT, stdin_text=None):
    """Runs kadnet to completion; returns the CompletedProcess (text mode)."""
    return subprocess.run([KADNET, *args], input=stdin_text if stdin_text is not None else "",
                          capture_output=True, text=True, timeout=timeout)


def parse_packets(data):
    """Splits a captured TCP stream into outer packets (version, type, payload) and a remainder."""
    out = []
    i = 0
    while len(data) - i >= 4:
        version, ptype, length = data[i], data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if len(data) - i - 4 < length:
            break
        out.append((version, ptype, bytes(data[i + 4:i + 4 + length])))
        i += 4 + length
    return out, bytes(data[i:])


class Node:
    """A `kadnet node` process driven through its stdin, its stdout read line by line."""

    def __init__(self, *extra, listen=True, json_mode=True, identity=None, compression=None, scheme="tcp",
                 host="127.0.0.1", netns=None):
        """`netns`: run inside that network namespace (nat_test.py); `host`: the address to listen on."""
        argv = [KADNET, "node", "--timeout", NODE_REQUEST_TIMEOUT_MS]
        if listen:
            argv += ["--listen", f"{scheme}://{host}:0"]
        if json_mode:
            argv.append("--json")
        if identity:
            argv += ["--identity", identity]
        if compression:
            argv += ["--compression", compression]
        argv += list(extra)
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        self.host = host
        self.argv = argv
        self.json_mode = json_mode
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.lines = queue.Queue()
        self.stderr_chunks = []
        self.events = []  # JSON objects seen that were not the awaited result (logs, connects)
        self.all_output = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.id = None
        self.uri = None
        self.port = None

    # -- output plumbing -------------------------------------------------------------------
    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.all_output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self.stderr_chunks.append(raw.decode("utf-8", "replace"))

    def stderr(self):
        return "".join(self.stderr_chunks)

    def next_line(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for output of {self.argv}; "
                                 f"output so far: {self.all_output!r}; stderr: {self.stderr()!r}")
        try:
            line = self.lines.get(timeout=remaining)
        except queue.Empty:
            return self.next_line(deadline)
        if line is None:
            self.lines.put(None)  # keep reporting end of output
            raise AssertionError(f"node exited (code {self.proc.poll()}) before the expected "
                                 f"output; output: {self.all_output!r}; stderr: {self.stderr()!r}")
        return line

    def expect_json(self, predicate, timeout=COMMAND_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline)
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise AssertionError(f"--json output line is not one JSON object: {line!r} ({e})")
            if not isinstance(obj, dict):
                raise AssertionError(f"--json output line is not a JSON object: {line!r}")
            if predicate(obj):
                return obj
            self.events.append(obj)

    def expect_text(self, predicate, timeout=COMMAND_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline)
            if predicate(line):
                return line

    # -- commands ------------------------------------------------------------------------------
    def write(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def command(self, line, timeout=COMMAND_TIMEOUT):
        """Sends a command in --json mode and returns its result object."""
        assert self.json_mode
        word = line.split()[0]
        self.write(line)
        return self.expect_json(lambda o: o.get("cmd") == word, timeout)

    def start(self):
        """Waits for the start-up id line(s); records id and listening URI."""
        if self.json_mode:
            obj = self.expect_json(lambda o: o.get("cmd") == "id", START_TIMEOUT)
            assert obj.get("ok") is True, obj
            self.id = obj["id"]
            listening = obj.get("listening", [])
            if listening:
                self.uri = listening[0]
        else:
            first = self.expect_text(lambda l: l.startswith("id "), START_TIMEOUT)
            self.id = first.split()[1]
            if "--listen" in self.argv:
                self.uri = self.expect_text(lambda l: l.startswith("listening "), START_TIMEOUT).split()[1]
        assert HEX64.match(self.id or ""), f"bad NodeId {self.id!r}"
        if self.uri:
            m = re.fullmatch(r"(?:tcp|udp|ws)://" + re.escape(self.host) + r":(\d+)", self.uri)
            assert m, f"unexpected listening URI {self.uri!r}"
            self.port = int(m.group(1))
            assert self.port != 0, "the listening URI must show the bound port, not 0"
        return self

    def stats(self):
        s = self.command("stats")
        assert s.get("ok") is True, s
        return s

    def quit(self, how="quit", timeout=EXIT_TIMEOUT):
        """Stops the node with `quit` or by closing stdin; returns its exit code (bounded wait)."""
        if self.proc.poll() is None:
            try:
                if how == "quit":
                    self.write("quit")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT)
            raise AssertionError(f"node did not exit within {timeout} s after {how}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


class Relay:
    """A TCP relay on 127.0.0.1 that forwards to a target port and records all bytes both ways."""

    def __init__(self, target_port, transform_c2s=None):
        """transform_c2s, if given, sees each whole outer packet from client to server (bytes)
        and returns the list of packets to forward instead (to drop, alter or replay them)."""
        self.target_port = target_port
        self.transform_c2s = transform_c2s
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = []  # each: {"c2s": bytearray, "s2c": bytearray}
        self.stopping = threading.Event()
        self.sockets = []
        self.threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self.threads[0].start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=SOCKET_TIMEOUT)
            except OSError:
                client.close()
                continue
            record = {"c2s": bytearray(), "s2c": bytearray()}
            with self.lock:
                self.connections.append(record)
                self.sockets += [client, upstream]
            for src, dst, buf, transform in ((client, upstream, record["c2s"], self.transform_c2s),
                                             (upstream, client, record["s2c"], None)):
                t = threading.Thread(target=self._pump, args=(src, dst, buf, transform), daemon=True)
                self.threads.append(t)
                t.start()

    def _pump(self, src, dst, buf, transform):
        src.settimeout(0.2)
        pending = b""
        try:
            while not self.stopping.is_set():
                try:
                    data = src.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                with self.lock:
                    buf.extend(data)
                if transform is None:
                    dst.sendall(data)
                    continue
                packets, pending = parse_packets(pending + data)
                for version, ptype, payload in packets:
                    whole = bytes([version, ptype]) + len(payload).to_bytes(2, "big") + payload
                    for out in transform(whole):
                        dst.sendall(out)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def captured(self, direction):
        with self.lock:
            return b"".join(bytes(c[direction]) for c in self.connections)

    def close(self):
        self.stopping.set()
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.close()
                except OSError:
                    pass
        for t in self.threads:
            t.join(timeout=2.0)


def recv_until_closed(sock, timeout=SOCKET_TIMEOUT):
    """Reads until the peer closes (EOF or reset); fails if it has not closed by the deadline."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the node did not close the connection within {timeout} s "
                                 f"(received {bytes(data)!r})")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data.extend(chunk)


class KadnetTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="kadnet-cli-")
        self.addCleanup(self.tmp.cleanup)
        self.nodes = []

    def node(self, *extra, **kw):
        n = Node(*extra, **kw)
        self.nodes.append(n)
        self.addCleanup(n.kill)
        return n.start()

    def joined(self, *extra, **kw):
        """A node started with `extra` (a --bootstrap), once it reports it joined the DHT."""
        n = self.node(*extra, **kw)
        if kw.get("json_mode", True):
            ev = n.expect_json(lambda o: o.get("event") == "joined" or o.get("cmd") == "join", START_TIMEOUT)
            self.assertEqual(ev.get("event"), "joined", ev)
        return n

    def assert_send(self, node, target, text):
        r = node.command(f"send {target} 64 {text}")
        self.assertTrue(r.get("ok"), f"send failed: {r}")
        self.assertEqual(r.get("reply"), text)
        return r

    def assert_ping(self, node, target):
        r = node.command(f"ping {target}")
        self.assertTrue(r.get("ok"), f"ping failed: {r}")
        self.assertIsInstance(r.get("rtt_ms"), (int, float))
        self.assertGreaterEqual(r["rtt_ms"], 0)
        return r


# 1 ---------------------------------------------------------------------------------------------
class KeygenTest(KadnetTestCase):
    def test_keygen_identity_roundtrip_and_permissions(self):
        key = os.path.join(self.tmp.name, "node.key")
        r = run_cli("keygen", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        node_id = r.stdout.strip()
        self.assertRegex(node_id, HEX64)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)

        again = run_cli("keygen", key)
        self.assertNotEqual(again.returncode, 0, "keygen overwrote an existing key file")
        self.assertIn(key, again.stderr)
        self.assertEqual(again.stdout, "")
        # The file was left untouched: the node still loads the same identity.
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)

        n = self.node(identity=key, listen=False)
        self.assertEqual(n.id, node_id)
        self.assertEqual(n.command("id").get("id"), node_id)
        self.assertEqual(n.quit(), 0)

        os.chmod(key, 0o644)
        bad = run_cli("node", "--identity", key, "--json")
        self.assertNotEqual(bad.returncode, 0, "a world-readable key file was accepted")
        self.assertIn(key, bad.stderr)

    def test_keygen_usage(self):
        r = run_cli("keygen")
        self.assertEqual(r.returncode, 2)
        self.assertIn("keygen", r.stderr.splitlines()[0])

    def test_identity_created_when_missing(self):
        key = os.path.join(self.tmp.name, "fresh.key")
        n = self.node(identity=key, listen=False)
        self.assertEqual(n.quit(), 0)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        n2 = self.node(identity=key, listen=False)
        self.assertEqual(n2.id, n.id)
        self.assertEqual(n2.quit(), 0)

    def test_folders_that_cannot_be_made_are_named_with_why(self):
        blocker = os.path.join(self.tmp.name, "a-file")
        open(blocker, "w").close()
        for flag, what in (("--data-dir", "data directory"), ("--inbox", "--inbox")):
            r = run_cli("node", flag, os.path.join(blocker, "sub"))
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stderr, f"kadnet: {what} {os.path.join(blocker, 'sub')} cannot be made: Not a directory\n")


# 2 ---------------------------------------------------------------------------------------------
class TwoNodesTest(KadnetTestCase):
    def test_both_directions(self):
        a = self.node()
        b = self.node()
        self.assertNotEqual(a.id, b.id)
        self.assert_ping(b, a.uri)
        self.assert_send(b, a.uri, "hello from B")
        # Text with inner spaces and punctuation is passed through as is.
        self.assert_send(b, a.uri, "two  spaces, and {json} \"quotes\"")
        # B now has a session with A; NodeIds work both ways over it.
        self.assert_ping(b, a.id)
        self.assert_send(b, a.id, "by id from B")
        # A knows B only as an inbound session, by NodeId.
        self.assert_ping(a, b.id)
        self.assert_send(a, b.id, "hello back from A")

        peers_a = a.command("peers")
        self.assertTrue(peers_a.get("ok"))
        entries = {p["id"]: p for p in peers_a["peers"]}
        self.assertIn(b.id, entries)
        self.assertTrue(entries[b.id]["inbound"])
        peers_b = b.command("peers")
        entries_b = {p["id"]: p for p in peers_b["peers"]}
        self.assertIn(a.id, entries_b)
        self.assertFalse(entries_b[a.id]["inbound"])

        sa = a.stats()
        self.assertGreaterEqual(sa["sessions_opened"], 1)
        self.assertGreaterEqual(sa["requests_received"], 4)
        self.assertGreaterEqual(sa["requests_sent"], 2)
        self.assertEqual(sa["malformed_packets"], 0)
        self.assertEqual(sa["auth_failures"], 0)

        # A peer id with no session: an error line, and the node goes on.
        unknown = "ab" * 32
        r = a.command(f"ping {unknown}")
        self.assertIs(r.get("ok"), False, r)
        self.assertTrue(r.get("error"))
        self.assertEqual(a.command("id").get("id"), a.id)

        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)

    def test_websocket_listener(self):
        """ws:// (PROTOCOL.md 10): calls both ways; a browser gets 426 and the node goes on."""
        a = self.node(scheme="ws")
        self.assertTrue(a.uri.startswith("ws://"), a.uri)
        b = self.node(listen=False)
        self.assert_ping(b, a.uri)
        self.assert_send(b, a.uri, "over a WebSocket")
        self.assert_send(a, b.id, "and back over the same session")
        with socket.create_connection(("127.0.0.1", a.port), timeout=10) as browser:
            browser.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = recv_until_closed(browser)
        self.assertTrue(answer.startswith(b"HTTP/1.1 426"), answer)
        self.assert_send(b, a.id, "still serving")
        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)

    def test_text_mode(self):
        a = self.node(json_mode=False)
        self.assertTrue(a.port)
        b = self.node(json_mode=False, listen=False)
        b.write(f"ping tcp://127.0.0.1:{a.port}")
        line = b.expect_text(lambda l: l.startswith("pong in") or l.startswith("ping:"))
        self.assertRegex(line, r"^pong in \d+\.\d{3} ms$")
        b.write(f"send tcp://127.0.0.1:{a.port} 64 text mode works")
        line = b.expect_text(lambda l: l.startswith("reply:") or l.startswith("send:"))
        self.assertEqual(line, "reply: text mode works")
        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)

    def test_bootstrap(self):
        a = self.node()
        b = Node("--bootstrap", a.uri)
        self.nodes.append(b)
        self.addCleanup(b.kill)
        b.start()
        ev = b.expect_json(lambda o: o.get("event") == "connected" or o.get("cmd") == "bootstrap",
                           START_TIMEOUT)
        self.assertEqual(ev.get("event"), "connected", ev)
        self.assertEqual(ev.get("peer"), a.id)
        self.assert_send(a, b.id, "to the bootstrapper")
        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)


# 3 ---------------------------------------------------------------------------------------------
class CaptureTest(KadnetTestCase):
    def check_capture(self, compression):
        a = self.node(compression=compression)
        b = self.node(compression=compression)
        relay = Relay(a.port)
        self.addCleanup(relay.close)
        via = f"tcp://127.0.0.1:{relay.port}"
        secret = "SECRET-PLAINTEXT-" + secrets.token_hex(12)
        # Short (never compressed) and long (compressible) messages.
        long_secret = " ".join([secret] * 40)
        self.assert_ping(b, via)
        self.assert_send(b, via, secret)
        self.assert_send(b, via, long_secret)
        # The inbound side answers through the same (relayed) session.
        self.assert_send(a, b.id, secret + "-from-A")

        if compression == "none":
            for p in b.command("peers")["peers"]:
                self.assertEqual(p["compression"], "none")

        c2s, s2c = relay.captured("c2s"), relay.captured("s2c")
        self.assertEqual(len(relay.connections), 1, "B should have used one relayed connection")
        needles = {secret.encode(), secret.encode()[:16], secret.encode()[-16:],
                   secret[len("SECRET-PLAINTEXT-"):].encode(),
                   secret.encode("utf-16-le"), secret.encode().hex().encode()}
        for name, data in (("B->A", c2s), ("A->B", s2c)):
            self.assertGreater(len(data), 300, f"suspiciously little traffic {name}")
            for needle in needles:
                self.assertNotIn(needle, data, f"plaintext {needle!r} visible on the wire {name}")
            # The stream is well-formed outer packets: a hello first, then only sealed packets.
            packets, rest = parse_packets(data)
            self.assertEqual(rest, b"", f"trailing partial packet {name}")
            self.assertGreaterEqual(len(packets), 3)
            version, ptype, payload = packets[0]
            self.assertEqual((version, ptype, len(payload)), (1, 0, 161), f"first packet {name}")
            for version, ptype, payload in packets[1:]:
                self.assertEqual(version, 1)
                self.assertEqual(ptype, 10, f"unexpected packet type {ptype} after the hello {name}")
                self.assertGreaterEqual(len(payload), 8 + 16 + 1)  # counter, tag, flags
            counters = [int.from_bytes(p[2][:8], "big") for p in packets[1:]]
            self.assertEqual(counters, list(range(len(counters))), f"nonce counters {name}")
        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)
        return c2s

    def test_no_plaintext_without_compression(self):
        self.check_capture("none")

    def test_no_plaintext_with_default_compression(self):
        self.check_capture(None)


class TamperTest(KadnetTestCase):
    """A relay that alters or replays B's sealed packets: A drops and counts them."""

    def test_altered_packet_is_dropped_and_session_goes_on(self):
        a = self.node(compression="none")
        b = self.node("--timeout", "1000", compression="none")
        state = {"armed": False}

        def flip_first_sealed(packet):
            # Armed once the session is set up (handshake, ANNOUNCEs and their ACKs): the next
            # sealed packet from B is then the request.
            if packet[1] != 10 or not state["armed"]:
                return [packet]
            state["armed"] = False
            altered = bytearray(packet)
            altered[-1] ^= 0x01  # last byte of the Poly1305 tag
            return [bytes(altered)]

        relay = Relay(a.port, flip_first_sealed)
        self.addCleanup(relay.close)
        via = f"tcp://127.0.0.1:{relay.port}"
        self.assert_ping(b, via)
        state["armed"] = True
        r = b.command(f"send {via} 64 lost")
        self.assertIs(r.get("ok"), False, f"an altered request was answered: {r}")
        self.assert_send(b, via, "after the altered one")
        self.assert_ping(b, via)
        s = a.stats()
        self.assertEqual(s["auth_failures"], 1, s)
        self.assertEqual(s["peers_cut_off"], 0, s)
        self.assertEqual(len(relay.connections), 1)
        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)

    def replay_until_cut_off(self):
        """B's sealed packets reach A 20 times each; returns A's stats once A cut B off."""
        a = self.node(compression="none")
        b = self.node(compression="none")
        copies = 20  # more than the 16 forged or replayed packets a session tolerates

        state = {"armed": False}

        def replay(packet):
            # Armed once the session is set up, so the request gets through (its first copy)
            # before the replays of it get B cut off.
            return [packet] * copies if packet[1] == 10 and state["armed"] else [packet]

        relay = Relay(a.port, replay)
        self.addCleanup(relay.close)
        via = f"tcp://127.0.0.1:{relay.port}"
        self.assert_ping(b, via)
        state["armed"] = True
        self.assert_send(b, via, "replay me")
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            s = a.stats()
            if s["replays"] >= 17 and s["peers_cut_off"] >= 1:
                break
            self.assertLess(time.monotonic(), deadline, f"A did not cut off the replaying peer: {s}")
        self.assertEqual(a.command("peers")["peers"], [], "the cut-off session is still listed")
        self.assertTrue(any("replayed" in e.get("text", "") for e in a.events if e.get("event") == "log"),
                        f"A did not log why it cut B off: {a.events}")
        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)
        return s

    def test_replayed_packets_are_dropped_then_peer_cut_off(self):
        s = self.replay_until_cut_off()
        self.assertEqual(s["auth_failures"], 0, s)
        # ANNOUNCE, PING, and the replayed request exactly once.
        self.assertEqual(s["requests_received"], 3, f"a replayed request was executed again: {s}")
        self.assertGreaterEqual(s["replays"], 17, s)

    def test_peer_cut_off_counted_once(self):
        s = self.replay_until_cut_off()
        self.assertEqual(s["peers_cut_off"], 1, f"one peer was cut off once: {s}")


# 4 ---------------------------------------------------------------------------------------------
class HostileInputTest(KadnetTestCase):
    def capture_hello(self, a):
        """Lets a throwaway node dial A through a relay and returns its first packet (a hello)."""
        relay = Relay(a.port)
        self.addCleanup(relay.close)
        c = self.node(listen=False)
        self.assert_ping(c, f"tcp://127.0.0.1:{relay.port}")
        self.assertEqual(c.quit(), 0)
        packets, _ = parse_packets(relay.captured("c2s"))
        version, ptype, payload = packets[0]
        self.assertEqual((version, ptype, len(payload)), (1, 0, 161))
        return bytes([version, ptype]) + len(payload).to_bytes(2, "big") + payload

    def connect(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
        self.addCleanup(s.close)
        return s

    def test_hostile_input(self):
        a = self.node()
        hello = self.capture_hello(a)
        before = a.stats()

        # Random bytes whose type byte is not a packet type: A must close the stream.
        s = self.connect(a.port)
        junk = bytearray(secrets.token_bytes(300))
        junk[1] = 0xEE
        s.sendall(junk)
        recv_until_closed(s)

        # Entirely random bytes, then we hang up.
        s = self.connect(a.port)
        s.sendall(secrets.token_bytes(1000))
        s.close()

        # A hello header with a wrong hello length.
        s = self.connect(a.port)
        s.sendall(bytes([1, 0, 0, 5]) + secrets.token_bytes(5))
        self.assertEqual(recv_until_closed(s), b"", "a malformed hello must get no answer")

        # A truncated hello (synthetic, then the first half of a real one), then we hang up.
        s = self.connect(a.port)
        s.sendall(bytes([0x01, 0x00, 0x00, 0xA1]) + secrets.token_bytes(40))
        s.close()
        s = self.connect(a.port)
        s.sendall(hello[:len(hello) // 2])
        s.close()

        # A real hello whose version byte says 2: answered with a refuse (type 9) naming versions.
        s = self.connect(a.port)
        s.sendall(bytes([2]) + hello[1:])
        answer = recv_until_closed(s)
        packets, rest = parse_packets(answer)
        self.assertEqual(len(packets), 1, f"expected exactly one refuse packet, got {answer!r}")
        self.assertEqual(rest, b"")
        version, ptype, payload = packets[0]
        self.assertEqual(version, 1)
        self.assertEqual(ptype, 9, f"expected a refuse packet, got type {ptype}")
        reason, lowest, highest, text_len = payload[0], payload[1], payload[2], payload[3]
        self.assertEqual(reason, 1, "refuse reason must be 1 (version mismatch)")
        self.assertEqual((lowest, highest), (1, 1))
        self.assertEqual(len(payload), 4 + text_len)
        text = payload[4:].decode("utf-8")
        self.assertIn("version", text.lower())
        self.assertIn("2", text)

        # A replayed real hello (valid version) with a flipped signature byte: no session.
        s = self.connect(a.port)
        forged = bytearray(hello)
        forged[-1] ^= 0xFF
        s.sendall(bytes(forged))
        self.assertEqual(recv_until_closed(s), b"", "a forged hello must get no answer")

        # A is still fine: a new node can ping and call it.
        b = self.node(listen=False)
        self.assert_ping(b, a.uri)
        self.assert_send(b, a.uri, "still alive after hostile input")
        self.assert_ping(a, b.id)
        self.assert_send(a, b.id, "and back")

        after = a.stats()
        self.assertGreaterEqual(after["malformed_packets"], 1, after)
        self.assertGreater(after["malformed_packets"], before["malformed_packets"], after)
        self.assertGreaterEqual(after["version_refusals"], 1, after)
        self.assertGreaterEqual(after["handshakes_failed"], 2, after)
        self.assertEqual(b.quit(), 0)
        self.assertEqual(a.quit(), 0)


    def test_refused_dialer_reports_the_refusal(self):
        """The other side of 3.5: a (fake) node that speaks another version refuses B's hello."""
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(SOCKET_TIMEOUT)
        text = b"kadnet protocol version 1 is not supported; this node speaks 7 to 9"
        seen = {}

        def serve():
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(SOCKET_TIMEOUT)
                    data = b""
                    while len(data) < 165:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    seen["hello"] = data
                    conn.sendall(bytes([7, 9, 0, 4 + len(text), 1, 7, 9, len(text)]) + text)
            except OSError as e:
                seen["error"] = e

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        b = self.node(listen=False)
        r = b.command(f"ping tcp://127.0.0.1:{listener.getsockname()[1]}")
        server.join(timeout=SOCKET_TIMEOUT)
        self.assertNotIn("error", seen)
        packets, _ = parse_packets(seen.get("hello", b""))
        self.assertEqual([(v, ty, len(p)) for v, ty, p in packets], [(1, 0, 161)])
        self.assertIs(r.get("ok"), False, r)
        self.assertIn("version", r.get("error", ""))
        self.assertTrue(any(text.decode() in e.get("text", "") for e in b.events if e.get("event") == "log"),
                        f"the refusal text is not shown: {b.events}")
        self.assertEqual(b.stats()["version_refusals"], 1)
        self.assertEqual(b.quit(), 0)

    # PROTOCOL.md 3.5: the refusing side shows a version refusal in its log too.
    def test_refusing_side_logs_version_refusal(self):
        a = self.node()
        hello = self.capture_hello(a)
        s = self.connect(a.port)
        s.sendall(bytes([2]) + hello[1:])
        recv_until_closed(s)
        self.assertEqual(a.stats()["version_refusals"], 1)  # the log line comes before this answer
        self.assertTrue(any("version" in e.get("text", "") for e in a.events if e.get("event") == "log"),
                        f"no log line for the refusal: {a.events}")


# 5 ---------------------------------------------------------------------------------------------
class UsageTest(KadnetTestCase):
    def assert_usage_error(self, args, *mentions):
        r = run_cli(*args)
        self.assertEqual(r.returncode, 2, f"{args}: exit {r.returncode}, stderr {r.stderr!r}")
        self.assertTrue(r.stderr, f"{args}: nothing on stderr")
        first = r.stderr.splitlines()[0]
        for m in mentions:
            self.assertIn(m, first, f"{args}: first stderr line {first!r} should mention {m!r}")
        self.assertEqual(r.stdout, "", f"{args}: usage errors go to stderr only")
        # The problem, then the commands in brief and where the rest is: not the whole help.
        self.assertEqual(len(r.stderr.splitlines()), 3, r.stderr)
        self.assertIn("kadnet --help", r.stderr)

    def test_bad_arguments(self):
        self.assert_usage_error([], "missing command")
        self.assert_usage_error(["frobnicate"], "frobnicate")
        self.assert_usage_error(["node", "--frobnicate"], "--frobnicate")
        self.assert_usage_error(["node", "--listen", "not-a-uri"], "--listen", "not-a-uri")
        self.assert_usage_error(["node", "--listen", "quic://127.0.0.1:1"], "--listen", "quic")
        self.assert_usage_error(["node", "--listen", "tcp://127.0.0.1:99999"], "--listen", "port")
        self.assert_usage_error(["node", "--listen"], "--listen")
        self.assert_usage_error(["node", "--bootstrap", "tcp://:1"], "--bootstrap")
        self.assert_usage_error(["node", "--compression", "foo"], "--compression", "foo")
        self.assert_usage_error(["node", "--compression", "zstd,zstd"], "--compression", "zstd")
        self.assert_usage_error(["node", "--compression", "none,zstd"], "--compression", "'none' stands alone")
        self.assert_usage_error(["node", "--listen", "ws://127.0.0.1:0/chat"], "--listen", "a path ('/chat')")
        self.assert_usage_error(["node", "--timeout", "-5"], "--timeout")

    def test_help(self):
        for args in (["--help"], ["node", "--help"]):
            r = run_cli(*args)
            self.assertEqual(r.returncode, 0, args)
            for word in ("keygen", "node", "--listen", "--bootstrap", "--identity", "--compression",
                         "--timeout", "--json", "--inbox", "id", "ping", "send", "sendfile", "peers", "stats",
                         "shout", "speak", "whisper", "cas", "lock", "unlock", "help", "quit"):
                self.assertIn(word, r.stdout, f"{args}: help does not mention {word}")
            for command in ("id", "ping URI|ID", "send URI|ID OPCODE TEXT", "sendfile URI|ID PATH", "peers",
                            "shout TEXT", "speak TEXT", "whisper ID TEXT", "cas KEY VERSION VALUE", "stats", "help",
                            "quit"):
                self.assertRegex(r.stdout, r"(?m)^\s+" + re.escape(command),
                                 f"{args}: help lacks a line for {command!r}")

    def test_bad_commands_keep_node_running(self):
        a = self.node()
        cases = [
            ("frobnicate", "frobnicate", "unknown"),
            ("ping", "ping", "missing"),
            ("ping nonsense", "ping", "nonsense"),
            ("send", "send", "missing"),
            (f"send {a.uri}", "send", "OPCODE"),
            (f"send {a.uri} 10 hi", "send", "10"),
            (f"send {a.uri} 256 hi", "send", "256"),
            (f"send {a.uri} abc hi", "send", "abc"),
            ("ping tcp://127.0.0.1:notaport", "ping", "port"),
            ("shout", "shout", "missing TEXT"),
            ("speak", "speak", "missing TEXT"),
            ("speak anyone there?", "speak", "no direct peer"),
            ("whisper", "whisper", "missing ID"),
            ("whisper bob hello", "whisper", "'bob' is not a NodeId"),
            (f"whisper {'ab' * 32}", "whisper", "missing TEXT"),
        ]
        for line, cmd, mention in cases:
            r = a.command(line)
            self.assertEqual(r.get("cmd"), cmd, line)
            self.assertIs(r.get("ok"), False, f"{line!r}: {r}")
            self.assertIn(mention, r.get("error", ""), f"{line!r}: {r}")
            self.assertEqual(a.command("id").get("id"), a.id, f"no id answer after {line!r}")
        # Blank lines are ignored; help answers in JSON.
        a.write("")
        h = a.command("help")
        self.assertTrue(h.get("ok"))
        self.assertIn("send URI|ID OPCODE TEXT", h.get("text", ""))
        # An opcode nobody registered gets a clean error, not a hang.
        r = a.command(f"send {a.uri} 200 nobody home")
        self.assertIs(r.get("ok"), False, r)
        self.assertEqual(a.command("id").get("id"), a.id)
        self.assertEqual(a.proc.poll(), None)
        self.assertEqual(a.quit(), 0)

    def test_listen_port_in_use(self):
        a = self.node()
        r = run_cli("node", "--listen", a.uri)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(str(a.port), r.stderr)
        self.assertEqual(a.quit(), 0)


# 5b --------------------------------------------------------------------------------------------
class FileTransferTest(KadnetTestCase):
    """sendfile between two `kadnet node` processes over udp://127.0.0.1 (PROTOCOL.md 9.7)."""

    def write(self, name, data):
        path = os.path.join(self.tmp.name, "src", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def received(self, node, name):
        """Waits for the receiver's file_received / file_refused event about `name`."""
        return node.expect_json(lambda o: o.get("event") in ("file_received", "file_refused")
                                and o.get("name") == name)

    def test_sendfile_arrives_intact_and_resumes(self):
        inbox = os.path.join(self.tmp.name, "inbox")
        b = self.node("--inbox", inbox, scheme="udp")
        a = self.node(listen=False)
        data = secrets.token_bytes(3 * 1024 * 1024 + 17)
        src = self.write("payload.bin", data)

        r = a.command(f"sendfile {b.uri} {src}")
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual((r["name"], r["size"], r["sent"], r["resumed_from"]), ("payload.bin", len(data), len(data), 0))
        self.assertEqual(r["blake2b"], hashlib.blake2b(data, digest_size=32).hexdigest())
        progress = [e["bytes"] for e in a.events if e.get("event") == "send_progress"]
        self.assertTrue(progress, f"no progress shown: {a.events}")
        self.assertEqual(progress, sorted(progress))
        self.assertEqual(progress[-1], len(data))

        done = self.received(b, "payload.bin")
        self.assertEqual(done["event"], "file_received", done)
        self.assertIs(done["ok"], True, done)
        self.assertEqual(done["peer"], a.id)
        self.assertEqual(os.path.realpath(done["path"]), os.path.realpath(os.path.join(inbox, "payload.bin")))
        self.assertTrue(any(e.get("event") == "file_offer" and e.get("name") == "payload.bin" for e in b.events),
                        f"the offer was not shown: {b.events}")
        with open(os.path.join(inbox, "payload.bin"), "rb") as f:
            self.assertTrue(f.read() == data, "the received file differs")
        self.assertEqual(sorted(os.listdir(inbox)), ["payload.bin"])

        # A partial file left by an interrupted transfer: only the rest is sent.
        more = secrets.token_bytes(1024 * 1024)
        src2 = self.write("second.bin", more)
        with open(os.path.join(inbox, "second.bin.part"), "wb") as f:
            f.write(more[:300000])
        r = a.command(f"sendfile {b.id} {src2}")  # by NodeId over the session just made
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual((r["resumed_from"], r["sent"]), (300000, len(more) - 300000))
        self.assertIs(self.received(b, "second.bin").get("ok"), True)
        with open(os.path.join(inbox, "second.bin"), "rb") as f:
            self.assertTrue(f.read() == more)

        # The same name again: refused, and the reason reaches the sender.
        r = a.command(f"sendfile {b.uri} {src}")
        self.assertIs(r.get("ok"), False, r)
        self.assertEqual(r.get("code"), "exists", r)
        self.assertIn("exists", r.get("reason", ""))
        self.assertEqual(self.received(b, "payload.bin").get("event"), "file_refused")
        self.assertEqual(a.quit(), 0)
        self.assertEqual(b.quit(), 0)

    def test_refused_names_and_bad_input(self):
        inbox = os.path.join(self.tmp.name, "inbox")
        b = self.node("--inbox", inbox, scheme="udp")
        a = self.node(listen=False)
        # A name the sender cannot offer: refused before anything is sent, naming the problem.
        sneaky = self.write("..sneaky", b"x")
        r = a.command(f"sendfile {b.uri} {sneaky}")
        self.assertIs(r.get("ok"), False, r)
        self.assertIn("..sneaky", r.get("error", ""))
        self.assertIn("..", r["error"])
        # A name the receiver refuses (too long to keep as NAME.part): its reason reaches the sender.
        long_name = "n" * 251
        r = a.command(f"sendfile {b.uri} {self.write(long_name, b'y')}")
        self.assertIs(r.get("ok"), False, r)
        self.assertEqual(r.get("code"), "bad_name", r)
        self.assertIn("name", r.get("reason", ""))
        refused = self.received(b, long_name)
        self.assertEqual(refused.get("event"), "file_refused", refused)
        self.assertEqual(os.listdir(inbox), [])
        self.assertEqual(sorted(os.listdir(self.tmp.name)), ["inbox", "src"])

        # Bad input: each gets a message naming the problem, and the node goes on.
        missing = os.path.join(self.tmp.name, "src", "missing.bin")
        cases = [
            (f"sendfile {b.uri} {missing}", "missing.bin"),
            (f"sendfile {b.uri}", "PATH"),
            ("sendfile", "missing"),
            (f"sendfile nonsense {sneaky}", "nonsense"),
            (f"sendfile {b.uri} {os.path.join(self.tmp.name, 'src')}", "not a regular file"),
        ]
        for line, mention in cases:
            r = a.command(line)
            self.assertIs(r.get("ok"), False, f"{line!r}: {r}")
            self.assertIn(mention, r.get("error", ""), f"{line!r}: {r}")
            self.assertEqual(a.command("id").get("id"), a.id, f"no id answer after {line!r}")

        # A node without --inbox refuses offers with a reason.
        c = self.node(scheme="udp")
        r = a.command(f"sendfile {c.uri} {self.write('hello.txt', b'hello')}")
        self.assertIs(r.get("ok"), False, r)
        self.assertEqual(r.get("code"), "not_accepting", r)
        self.assertIn("--inbox", r.get("reason", ""))
        # Over a TCP session the file goes as over UDP (byte streams run on every transport).
        d_inbox = os.path.join(self.tmp.name, "d_inbox")
        d = self.node("--inbox", d_inbox)
        self.assertTrue(d.uri.startswith("tcp://"), d.uri)
        r = a.command(f"sendfile {d.uri} {self.write('hello2.txt', b'hello over tcp')}")
        self.assertIs(r.get("ok"), True, r)
        self.assertIs(self.received(d, "hello2.txt").get("ok"), True)
        with open(os.path.join(d_inbox, "hello2.txt"), "rb") as f:
            self.assertEqual(f.read(), b"hello over tcp")
        for n in (a, b, c, d):
            self.assertEqual(n.quit(), 0)


# 5c --------------------------------------------------------------------------------------------
class BroadcastTest(KadnetTestCase):
    """shout, speak and whisper between `kadnet node` processes (PROTOCOL.md 5.5-5.7)."""

    def test_shout_speak_and_whisper(self):
        a = self.node()
        b = self.joined("--bootstrap", a.uri)
        c = self.joined("--bootstrap", b.uri)

        # Every other node prints a shout once, with its origin, sequence and hops.
        r = c.command("shout hello, everyone")
        self.assertIs(r.get("ok"), True, r)
        for n in (a, b):
            ev = n.expect_json(lambda o: o.get("event") == "shout")
            self.assertEqual((ev["origin"], ev["sequence"], ev["text"]), (c.id, r["sequence"], "hello, everyone"))
            self.assertIsInstance(ev["hops"], int)

        # A speak reaches the speaker's direct peers, whoever they are by now.
        peers_of_b = {p["id"] for p in b.command("peers")["peers"]}
        self.assertIn(a.id, peers_of_b)
        r = b.command("speak hi, neighbours")
        self.assertEqual((r.get("ok"), r.get("peers")), (True, len(peers_of_b)), r)
        ev = a.expect_json(lambda o: o.get("event") == "speak")
        self.assertEqual((ev["origin"], ev["from"], ev["text"]), (b.id, b.id, "hi, neighbours"))

        # A whisper by NodeId arrives opened, and the sender saw its receipt.
        r = a.command(f"whisper {c.id} just between us")
        self.assertEqual((r.get("ok"), r.get("to")), (True, c.id), r)
        ev = c.expect_json(lambda o: o.get("event") == "whisper")
        self.assertEqual((ev["sender"], ev["sealed"], ev["text"]), (a.id, True, "just between us"))
        self.assertEqual(c.stats()["whispers_received"], 1)
        # A key nobody in the network holds; an id that is no key at all; our own id.
        stranger = run_cli("keygen", os.path.join(self.tmp.name, "stranger.key")).stdout.strip()
        for target, problem in ((stranger, "not found"), ("00" * 32, "not an Ed25519 public key"), (a.id, "own")):
            r = a.command(f"whisper {target} anyone?")
            self.assertIs(r.get("ok"), False, r)
            self.assertIn(problem, r.get("error", ""), r)

        # In text mode, incoming messages are lines of their own.
        d = self.joined("--bootstrap", a.uri, json_mode=False)
        d.expect_text(lambda l: l.startswith("joined the DHT"), START_TIMEOUT)
        a.command("speak plain text")
        line = d.expect_text(lambda l: l.startswith("speak from"))
        self.assertEqual(line, f"speak from {a.id[:12]}: plain text")
        b.command("shout once more")
        line = d.expect_text(lambda l: l.startswith("shout from"))
        self.assertRegex(line, r"^shout from " + b.id[:12] + r" \(hops \d+\): once more$")
        for n in (a, b, c, d):
            self.assertEqual(n.quit(), 0)


# 6 ---------------------------------------------------------------------------------------------
class DhtCommandsTest(KadnetTestCase):
    """put, get, cas and patch between `kadnet node` processes (PROTOCOL.md 8.3, 8.6, 8.8)."""

    def test_put_get_and_compare_and_swap(self):
        a = self.node()
        b = self.joined("--bootstrap", a.uri)
        c = self.joined("--bootstrap", b.uri)

        r = a.command("put greeting hello there")
        self.assertIs(r.get("ok"), True, r)
        r = c.command("get greeting")
        self.assertEqual((r.get("ok"), r.get("value")), (True, "hello there"), r)

        # Version 0 means "holds nothing": the first cas writes version 1, a second writer of
        # version 1 learns the current version and value, and then writes version 2.
        r = a.command("cas counter 0 one")
        self.assertEqual((r.get("ok"), r.get("version")), (True, 1), r)
        r = b.command("cas counter 0 uno")
        self.assertEqual((r.get("ok"), r.get("version"), r.get("value")), (False, 1, "one"), r)
        self.assertIn("not at the expected version", r.get("error", ""))
        r = b.command("cas counter 1 two")
        self.assertEqual((r.get("ok"), r.get("version")), (True, 2), r)
        r = c.command("get counter")
        self.assertEqual((r.get("ok"), r.get("value"), r.get("version")), (True, "two", 2), r)
        r = c.command("put big " + "x" * 65537)
        self.assertEqual(r.get("ok"), False, r)
        self.assertIn("at most 65536 bytes", r.get("error", ""))
        r = c.command("shout " + "x" * 16385)
        self.assertEqual(r.get("ok"), False, r)
        self.assertIn("TEXT is 16385 bytes; a shout is at most 16384 bytes", r.get("error", ""))
        r = b.command(f"ping {b.id}")
        self.assertEqual((r.get("ok"), r.get("error")), (False, "that is this node's own id"), r)

        # A lock: granted with a fencing token, refused to another node naming the holder, released,
        # then granted to the other with a larger token.
        r = a.command("lock door 30")
        self.assertEqual((r.get("ok"), r.get("token")), (True, 1), r)
        r = b.command("lock door 30")
        self.assertEqual((r.get("ok"), r.get("holder")), (False, a.id), r)
        self.assertGreater(r.get("remaining_ms"), 0)
        r = a.command("unlock door 1")
        self.assertIs(r.get("ok"), True, r)
        r = b.command("lock door 30")
        self.assertEqual((r.get("ok"), r.get("token")), (True, 2), r)
        for line, mention in [("lock", "missing KEY"), ("lock door", "missing SECONDS"), ("lock door soon", "not a number"),
                              ("lock door 0", "1 .. 86400"), ("unlock door", "missing TOKEN")]:
            r = a.command(line)
            self.assertIs(r.get("ok"), False, f"{line!r}: {r}")
            self.assertIn(mention, r.get("error", ""), f"{line!r}: {r}")

        for line, mention in [("cas", "missing KEY"), ("cas counter", "missing VERSION"),
                              ("cas counter two three", "'two' is not a number"), ("cas counter 2", "missing VALUE")]:
            r = a.command(line)
            self.assertEqual((r.get("cmd"), r.get("ok")), ("cas", False), f"{line!r}: {r}")
            self.assertIn(mention, r.get("error", ""), f"{line!r}: {r}")

        # patch reads the key, splices the text into that version and sends the replicas only the
        # change (a diff smaller than the value; a short value goes whole).
        r = a.command("put doc the quick brown fox jumps over the lazy dog")
        self.assertEqual((r.get("ok"), r.get("version")), (True, 1), r)
        r = b.command("patch doc 1 10 5 red")
        self.assertEqual((r.get("ok"), r.get("version"), r.get("value")),
                         (True, 2, "the quick red fox jumps over the lazy dog"), r)
        self.assertGreaterEqual(r.get("by_diff", 0), 1, r)
        self.assertEqual(r.get("by_whole"), 0, r)
        r = c.command("patch doc 2 41 0 , twice")
        self.assertEqual((r.get("ok"), r.get("version"), r.get("value")),
                         (True, 3, "the quick red fox jumps over the lazy dog, twice"), r)
        r = a.command("get doc")
        self.assertEqual((r.get("ok"), r.get("value"), r.get("version")),
                         (True, "the quick red fox jumps over the lazy dog, twice", 3), r)
        # At another version: the version found, nothing written.
        r = a.command("patch doc 2 0 0 x")
        self.assertEqual((r.get("ok"), r.get("version")), (False, 3), r)
        self.assertIn("at version 3", r.get("error", ""))
        for line, mention in [("patch", "missing KEY"), ("patch doc", "missing VERSION"),
                              ("patch doc 3 x 1 a", "OFFSET 'x' is not a number"),
                              ("patch doc 3 0", "missing REMOVE"),
                              ("patch doc 3 40 9 a", "reaches past the value's 48 bytes"),
                              ("patch nothing-here 1 0 0 a", "no value to patch")]:
            r = a.command(line)
            self.assertEqual((r.get("cmd"), r.get("ok")), ("patch", False), f"{line!r}: {r}")
            self.assertIn(mention, r.get("error", ""), f"{line!r}: {r}")
        for n in (a, b, c):
            self.assertEqual(n.quit(), 0)


    @staticmethod
    def version_event(n, version):
        """The `listen` event announcing `version`, whether it came before or after other output."""
        def wanted(o):
            return o.get("event") == "version" and o.get("version") == version
        for i, ev in enumerate(n.events):
            if wanted(ev):
                return n.events.pop(i)
        return n.expect_json(wanted)

    def test_listen_prints_each_new_version_until_unlisten(self):
        a = self.node()
        b = self.joined("--bootstrap", a.uri)
        c = self.joined("--bootstrap", b.uri)
        r = a.command("put news first edition")
        self.assertIs(r.get("ok"), True, r)
        # Listening starts from the version held now, then prints each new one as it is written.
        r = c.command("listen news")
        self.assertIs(r.get("ok"), True, r)
        self.assertGreaterEqual(r.get("replicas", 0), 1, r)
        self.assertEqual(self.version_event(c, 1).get("value"), "first edition")
        self.assertIs(a.command("put news second edition").get("ok"), True)
        self.assertEqual(self.version_event(c, 2).get("value"), "second edition")
        self.assertIs(b.command("patch news 2 0 6 2nd").get("ok"), True)
        self.assertEqual(self.version_event(c, 3).get("value"), "2nd edition")

        for line, mention in [("listen", "missing KEY"), ("listen news", "already listening"),
                              ("unlisten", "missing KEY"), ("unlisten olds", "not listening")]:
            r = c.command(line)
            self.assertIs(r.get("ok"), False, f"{line!r}: {r}")
            self.assertIn(mention, r.get("error", ""), f"{line!r}: {r}")
        r = c.command("unlisten news")
        self.assertIs(r.get("ok"), True, r)
        self.assertIs(a.command("put news third edition").get("ok"), True)
        # The get's answer comes after anything the put could have made c print.
        self.assertEqual(c.command("get news").get("value"), "third edition")
        self.assertFalse([e for e in c.events if e.get("event") == "version"], c.events)
        for n in (a, b, c):
            self.assertEqual(n.quit(), 0)


class ShutdownTest(KadnetTestCase):
    def test_quit(self):
        a = self.node()
        self.assertEqual(a.quit("quit"), 0)

    def test_end_of_input(self):
        a = self.node()
        self.assertEqual(a.quit("eof"), 0)

    def test_quit_with_live_sessions(self):
        a = self.node()
        b = self.node()
        self.assert_send(b, a.uri, "x")
        self.assertEqual(a.quit("quit"), 0)   # B's session to A is open
        self.assertEqual(b.quit("eof"), 0)    # its peer is gone

    def test_exit_alias(self):
        a = self.node(listen=False)
        a.write("exit")
        self.assertEqual(a.proc.wait(timeout=EXIT_TIMEOUT), 0)

    def saved_contacts(self, data_dir):
        import sqlite3
        db = sqlite3.connect(os.path.join(data_dir, "values.sqlite3"))
        try:
            return db.execute("select count(*) from contacts").fetchone()[0]
        finally:
            db.close()

    def test_a_signal_stops_the_node_and_keeps_its_routing_table(self):
        import signal
        a = self.node()
        b = self.joined("--bootstrap", a.uri)
        for name, sig in (("SIGINT", signal.SIGINT), ("SIGTERM", signal.SIGTERM)):
            with self.subTest(name):
                data_dir = os.path.join(self.tmp.name, name)
                c = self.joined("--bootstrap", b.uri, "--data-dir", data_dir)
                c.proc.send_signal(sig)
                c.expect_json(lambda o: o.get("event") == "log" and o.get("text") == f"stopping: signal {int(sig)}")
                self.assertEqual(c.proc.wait(timeout=EXIT_TIMEOUT), -sig)  # died by the signal
                self.assertGreaterEqual(self.saved_contacts(data_dir), 2)  # a and b


def main():
    global KADNET
    if len(sys.argv) < 2:
        print("usage: cli_test.py PATH_TO_KADNET [unittest args]", file=sys.stderr)
        return 2
    KADNET = os.path.abspath(sys.argv[1])
    if not os.access(KADNET, os.X_OK):
        print(f"cli_test.py: {KADNET} is not an executable", file=sys.stderr)
        return 2
    program = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False, verbosity=2)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
