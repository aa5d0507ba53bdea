#!/usr/bin/env python3
"""The `kadnet` Python module (bindings/python) against real nodes on loopback.

Run by ctest with PYTHONPATH=build/python. Waits are on completion signals (threading.Event with
a bound), never sleeps.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import threading
import unittest

import kadnet

WAIT = 20  # seconds: a bound for events to arrive, not a synchronisation


def free_tcp_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nodes(unittest.TestCase):
    """Starts nodes that stop when the test ends."""

    def node(self, **kw):
        kw.setdefault("listen", ["tcp://127.0.0.1:0"])
        kw.setdefault("contacts_per_prefix", 0)  # every node here is on 127.0.0.1
        n = kadnet.Node(**kw)
        self.addCleanup(n.stop)
        return n


class CallTest(Nodes):
    def test_a_python_handler_answers_calls(self):
        server, client = self.node(), self.node()
        self.assertIsNone(client.observed_address)  # no peer has told it yet
        server.add_handler(64, lambda caller, data: data.upper() + caller[:4].encode())
        reply = client.call(server.addresses[0], 64, b"hello")
        self.assertEqual(reply, b"HELLO" + client.id[:4].encode())
        # The session exists now: the NodeId reaches the server too.
        self.assertEqual(client.call(server.id, 64, b"again"), b"AGAIN" + client.id[:4].encode())

    def test_a_handler_that_raises_answers_handler_failed_and_the_node_goes_on(self):
        server, client = self.node(), self.node()

        def broken(caller, data):
            raise RuntimeError("no")

        server.add_handler(65, broken)
        server.add_handler(66, lambda caller, data: None)
        with self.assertRaises(kadnet.Error) as failure:
            client.call(server.addresses[0], 65, b"x")
        self.assertEqual(str(failure.exception), "remote handler failed: RuntimeError: no")  # no traceback
        self.assertEqual(client.call(server.addresses[0], 66, b"x"), b"")
        with self.assertRaises(kadnet.Error):
            client.call(server.addresses[0], 67, b"nobody serves 67")

    def test_a_handler_cannot_wait_for_its_own_node(self):
        server, client = self.node(), self.node()
        server.add_handler(70, lambda caller, data: str(server.ping(server.addresses[0])).encode())
        with self.assertRaises(kadnet.Error) as failure:  # and no hang
            client.call(server.addresses[0], 70, b"")
        self.assertIn("handler", str(failure.exception))
        self.assertEqual(client.ping(server.id) >= 0, True)

    def test_every_transport(self):
        for scheme in ("tcp", "udp", "ws"):
            with self.subTest(scheme=scheme):
                server = self.node(listen=[f"{scheme}://127.0.0.1:0"])
                client = self.node(listen=[])
                self.assertTrue(server.addresses[0].startswith(scheme + "://"))
                self.assertGreaterEqual(client.ping(server.addresses[0]), 0.0)
                self.assertEqual(client.connect(server.addresses[0], server.id), server.id)
                # It listens nowhere, yet the server told it how it sees it (its source address).
                self.assertTrue(client.observed_address.startswith("127.0.0.1:"), client.observed_address)

    def test_bad_input_is_named(self):
        n = self.node()
        with self.assertRaises(ValueError) as bad_uri:
            n.ping("quic://127.0.0.1:1")
        self.assertIn("quic", str(bad_uri.exception))
        with self.assertRaises(ValueError):
            n.call(n.addresses[0], 10, b"")  # not a plugin opcode
        with self.assertRaises(ValueError):
            n.get(b"short")  # a bytes key is 32 long
        with self.assertRaises(ValueError) as big:
            n.put("big", b"x" * 65537)
        self.assertIn("at most 65536 bytes", str(big.exception))
        with self.assertRaises(ValueError) as loud:
            n.shout(b"x" * 16385)
        self.assertIn("at most 16384 bytes", str(loud.exception))
        with self.assertRaises(kadnet.Error) as own:
            n.call(n.id, 64, b"me")
        self.assertIn("own id", str(own.exception))
        with self.assertRaises(kadnet.Error) as alone:
            n.ping("ab" * 32)  # nobody to look it up with
        self.assertIn("not connected", str(alone.exception))
        n.ping(self.node().addresses[0])
        with self.assertRaises(kadnet.Error) as nobody:
            n.ping("ab" * 32)
        self.assertIn("no node with that id could be found", str(nobody.exception))
        with self.assertRaises(ValueError):
            kadnet.Node(compression=["brotli"])
        for forever in (1e10, 1e300, float("inf"), float("nan")):
            with self.assertRaises(ValueError):
                kadnet.Node(request_timeout=forever)
        with self.assertRaises(ValueError):
            n.listen("quic://127.0.0.1:0")
        with self.assertRaises(kadnet.Error):
            n.listen(n.addresses[0])  # the port is taken
        with self.assertRaises(kadnet.Error):
            n.ping(f"tcp://127.0.0.1:{free_tcp_port()}")
        n.stop()
        with self.assertRaises(kadnet.Error):
            n.ping("tcp://127.0.0.1:1")

    def test_an_identity_file_keeps_the_node_id(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "node.key")
            with kadnet.Node(identity=path) as first:
                first_id = first.id
            with kadnet.Node(identity=path) as again:
                self.assertEqual(again.id, first_id)
            self.assertEqual(os.stat(path).st_mode & 0o077, 0)


class DhtTest(Nodes):
    def swarm(self, count):
        nodes = [self.node()]
        for _ in range(count - 1):
            n = self.node()
            n.bootstrap([nodes[0].addresses[0]])
            nodes.append(n)
        return nodes

    def test_a_value_put_on_one_node_is_found_from_the_others(self):
        nodes = self.swarm(8)
        self.assertGreaterEqual(nodes[3].put("greeting", b"hello"), 1)
        for n in nodes:
            self.assertEqual(n.get("greeting"), b"hello")
        self.assertEqual(nodes[5].get(kadnet.text_key("greeting")), b"hello")
        self.assertIsNone(nodes[6].get("nobody stored this"))
        closest = nodes[1].find_node(nodes[7].id)
        self.assertEqual(closest[0][0], nodes[7].id)
        self.assertEqual(closest[0][1], nodes[7].addresses)

    def test_compare_and_swap_and_locks(self):
        nodes = self.swarm(6)
        self.assertEqual(nodes[1].cas("counter", 0, b"1"), (True, 1, b"1"))
        # A writer that expected version 0 lost: it learns the version and value that won.
        self.assertEqual(nodes[2].cas("counter", 0, b"other"), (False, 1, b"1"))
        self.assertEqual(nodes[2].cas("counter", 1, b"2"), (True, 2, b"2"))
        token = nodes[3].lock("printer", 30.0)
        with self.assertRaises(kadnet.Error) as held:
            nodes[4].lock("printer", 30.0)
        self.assertIn(nodes[3].id, str(held.exception))
        nodes[3].renew("printer", token, 30.0)
        nodes[3].unlock("printer", token)
        self.assertGreater(nodes[4].lock("printer", 30.0), token)
        with self.assertRaises(ValueError):
            nodes[4].lock("printer", 0)

    def test_text_key_is_blake2b_256(self):
        import hashlib
        self.assertEqual(kadnet.text_key("greeting"), hashlib.blake2b(b"greeting", digest_size=32).digest())


class BroadcastTest(Nodes):
    def test_shout_speak_and_whisper(self):
        nodes = [self.node()]
        for _ in range(5):
            n = self.node()
            n.bootstrap([nodes[0].addresses[0]])
            nodes.append(n)
        shouts, everyone = [], threading.Event()
        lock = threading.Lock()

        def heard(origin, data, hops):
            with lock:
                shouts.append((origin, data))
                if len(shouts) == len(nodes) - 1:
                    everyone.set()

        for n in nodes:
            n.on_shout(heard)
        nodes[2].shout(b"to all")
        self.assertTrue(everyone.wait(WAIT), f"only {len(shouts)} of {len(nodes) - 1} heard the shout")
        self.assertEqual(set(shouts), {(nodes[2].id, b"to all")})

        whispered, got_whisper = [], threading.Event()
        nodes[4].on_whisper(lambda sender, data, sealed: (whispered.append((sender, data, sealed)), got_whisper.set()))
        nodes[1].whisper(nodes[4].id, b"just you")
        self.assertTrue(got_whisper.wait(WAIT))
        self.assertEqual(whispered, [(nodes[1].id, b"just you", True)])

        spoken, got_speak = [], threading.Event()
        nodes[0].on_speak(lambda origin, via, data: (spoken.append((origin, data)), got_speak.set(), False)[2])
        self.assertGreaterEqual(nodes[3].speak(b"neighbours"), 1)
        self.assertTrue(got_speak.wait(WAIT))
        self.assertEqual(spoken, [(nodes[3].id, b"neighbours")])



class FileTest(Nodes):
    def test_a_file_goes_to_the_inbox_over_every_transport(self):
        import hashlib
        root = tempfile.TemporaryDirectory(prefix="kadnet-py-files-")
        self.addCleanup(root.cleanup)
        src = os.path.join(root.name, "src")
        os.makedirs(src)
        for scheme in ("tcp", "udp", "ws"):
            inbox = os.path.join(root.name, "inbox-" + scheme)  # made by the node
            receiver = self.node(listen=[scheme + "://127.0.0.1:0"], inbox=inbox)
            sender = self.node(listen=[])
            done, events = threading.Event(), []
            receiver.on_file(lambda *e: (events.append(e), done.set()))
            data = os.urandom(300 * 1024 + 7)
            path = os.path.join(src, scheme + ".bin")
            with open(path, "wb") as f:
                f.write(data)

            sent = sender.send_file(receiver.addresses[0], path)
            self.assertEqual((sent["name"], sent["size"], sent["sent"], sent["resumed_from"]),
                             (scheme + ".bin", len(data), len(data), 0))
            self.assertEqual(sent["blake2b"], hashlib.blake2b(data, digest_size=32).digest())
            self.assertTrue(done.wait(WAIT), scheme)
            sender_id, name, stored, error = events[0]
            self.assertEqual((sender_id, name, error), (sender.id, scheme + ".bin", None))
            with open(stored, "rb") as f:
                self.assertTrue(f.read() == data, scheme)

            # The same name again: the receiver refuses, and says why.
            done.clear()
            with self.assertRaises(kadnet.Error) as refused:
                sender.send_file(receiver.id, path)
            self.assertIn("exists", str(refused.exception))
            self.assertTrue(done.wait(WAIT))
            self.assertIsNone(events[1][2])
            self.assertIsNotNone(events[1][3])

    def test_bad_files_and_nodes_without_an_inbox(self):
        with tempfile.NamedTemporaryFile() as not_a_folder:
            with self.assertRaises(ValueError) as bad_inbox:
                kadnet.Node(inbox=not_a_folder.name)
            self.assertIn(not_a_folder.name, str(bad_inbox.exception))
        receiver, sender = self.node(), self.node(listen=[])
        refusals, refused_event = [], threading.Event()
        receiver.on_file(lambda *e: (refusals.append(e), refused_event.set()))
        with self.assertRaises(ValueError) as missing:
            sender.send_file(receiver.addresses[0], "/nonexistent/kadnet/file.bin")
        self.assertIn("file.bin", str(missing.exception))
        with self.assertRaises(ValueError) as folder:
            sender.send_file(receiver.addresses[0], tempfile.gettempdir())
        self.assertIn("not a regular file", str(folder.exception))
        with tempfile.NamedTemporaryFile(suffix=".part") as partial:
            with self.assertRaises(ValueError) as bad_name:
                sender.send_file(receiver.addresses[0], partial.name)
            self.assertIn("ends in '.part'", str(bad_name.exception))
        with self.assertRaises(ValueError) as unknown_size:
            sender.send_file(receiver.addresses[0], "/proc/self/stat")
        self.assertIn("size is not known", str(unknown_size.exception))
        # A node with no inbox refuses offers, with its reason.
        with tempfile.NamedTemporaryFile(suffix=".txt") as f:
            f.write(b"hello")
            f.flush()
            with self.assertRaises(kadnet.Error) as refused:
                sender.send_file(receiver.addresses[0], f.name)
        self.assertIn("inbox", str(refused.exception))
        self.assertTrue(refused_event.wait(WAIT))
        self.assertEqual((refusals[0][0], refusals[0][2]), (sender.id, None))

class StreamTest(Nodes):
    def read_all(self, stream):
        out = bytearray()
        while True:
            chunk = stream.read()
            if not chunk:
                return bytes(out)
            out += chunk

    def test_a_stream_carries_bytes_both_ways_over_every_transport(self):
        for scheme in ("tcp", "udp", "ws"):
            server = self.node(listen=[scheme + "://127.0.0.1:0"])
            client = self.node(listen=[])
            served = server.accept_stream("echo/1", timeout=0)  # serves the protocol from now on
            self.assertIsNone(served)
            echoed = {}

            def echo():
                with server.accept_stream("echo/1", timeout=WAIT) as s:
                    echoed["peer"], echoed["protocol"] = s.peer, s.protocol
                    s.write(self.read_all(s).upper())

            t = threading.Thread(target=echo)
            t.start()
            data = os.urandom(200 * 1024).hex().encode()  # lowercase: upper() changes it
            with client.open_stream(server.addresses[0], "echo/1") as s:
                self.assertEqual((s.peer, s.protocol), (server.id, "echo/1"))
                s.write(data)
                s.shutdown()
                self.assertTrue(self.read_all(s) == data.upper(), scheme)
            t.join(WAIT)
            self.assertFalse(t.is_alive())
            self.assertEqual(echoed, {"peer": client.id, "protocol": "echo/1"})

    def test_protocols_route_streams_and_one_nobody_serves_is_refused(self):
        server, client = self.node(), self.node(listen=[])
        self.assertIsNone(server.accept_stream("b", timeout=0))
        self.assertIn("-> Optional[kadnet.Stream]", kadnet.Node.accept_stream.__doc__)
        a_stream = client.open_stream(server.addresses[0])  # the default protocol, ""
        b_stream = client.open_stream(server.id, "b")
        a_stream.write(b"to the default")
        b_stream.write(b"to b")
        got_b = server.accept_stream("b", timeout=WAIT)
        got_a = server.accept_stream(timeout=WAIT)
        self.assertEqual((got_a.protocol, got_a.read()), ("", b"to the default"))
        self.assertEqual((got_b.protocol, got_b.read()), ("b", b"to b"))
        refused = client.open_stream(server.id, "nobody/serves/this")
        with self.assertRaises(kadnet.Error) as failure:
            refused.read()
        self.assertIn("serves no stream", str(failure.exception))
        self.assertIsNone(server.accept_stream("b", timeout=0.01))
        with self.assertRaises(ValueError):
            client.open_stream(server.id, "bad\nname")

    def ended_by(self, call, interrupt):
        """Runs call() in a thread, then interrupt() here; returns what call() raised (it must end)."""
        outcome = []

        def run():
            try:
                call()
                outcome.append(None)
            except kadnet.Error as e:
                outcome.append(str(e))

        t = threading.Thread(target=run)
        t.start()
        interrupt()
        t.join(WAIT)
        self.assertFalse(t.is_alive())
        return outcome[0]

    def test_stop_ends_a_waiting_accept_and_close_ends_a_waiting_write(self):
        server, client = self.node(), self.node(listen=[])
        self.assertIsNone(server.accept_stream("slow", timeout=0))
        s = client.open_stream(server.addresses[0], "slow")
        # Nobody reads on the server: the write waits for a window that never opens.
        self.assertIsNotNone(self.ended_by(lambda: s.write(b"x" * (64 << 20)), s.close))
        self.assertIn("stopped", self.ended_by(lambda: server.accept_stream("never"), server.stop))

    def test_stop_ends_a_waiting_read(self):
        server, client = self.node(), self.node(listen=[])
        kept_open = client.open_stream(server.addresses[0])  # and silent
        quiet = server.accept_stream(timeout=WAIT)
        self.assertIn("stopped", self.ended_by(quiet.read, server.stop))
        kept_open.close()

    def test_a_handler_cannot_wait_on_a_stream_of_its_own_node(self):
        server, client = self.node(), self.node(listen=[])
        out = client.open_stream(server.addresses[0])
        into = server.accept_stream(timeout=WAIT)
        errors = []

        def handler(caller, data):
            try:
                into.read()
            except kadnet.Error as e:
                errors.append(str(e))
            return b"still here"

        server.add_handler(70, handler)
        self.assertEqual(client.call(server.id, 70, b""), b"still here")
        self.assertIn("own node", errors[0])
        out.write(b"later")
        self.assertEqual(into.read(), b"later")  # from this thread it waits, as it should

    def test_two_threads_read_one_stream_in_turn(self):
        server, client = self.node(), self.node(listen=[])
        out = client.open_stream(server.addresses[0])
        into = server.accept_stream(timeout=WAIT)
        got = []
        # The second waits for the first's turn without holding the GIL, which the first needs.
        readers = [threading.Thread(target=lambda: got.append(into.read(1))) for _ in range(2)]
        for r in readers:
            r.start()
        out.write(b"ab")
        for r in readers:
            r.join(WAIT)
        self.assertEqual(sorted(got), [b"a", b"b"])

    def test_a_stream_of_a_stopped_node_raises(self):
        server, client = self.node(), self.node(listen=[])
        s = client.open_stream(server.addresses[0])
        client.stop()
        with self.assertRaises(kadnet.Error):
            s.write(b"too late")
        with self.assertRaises(kadnet.Error):
            client.accept_stream(timeout=0)

class InterruptTest(unittest.TestCase):
    """Ctrl-C (SIGINT) ends a call that waits for the node: KeyboardInterrupt, as in Python's own."""

    WAITS = {
        "call": "n.call(peer.addresses[0], 70, b'')  # its handler waits for `release`",
        "accept": "n.accept_stream('nobody opens this')",
        "read": "r.read(10)",
        "send_file": "n.send_file(f'tcp://127.0.0.1:{silent.getsockname()[1]}', payload.name)",
    }
    SCRIPT = textwrap.dedent("""
        import socket, sys, tempfile, threading, kadnet
        silent = socket.socket(); silent.bind(("127.0.0.1", 0)); silent.listen()  # never answers a hello
        payload = tempfile.NamedTemporaryFile(); payload.write(b"x"); payload.flush()
        n = kadnet.Node(listen=["tcp://127.0.0.1:0"], request_timeout=600)
        peer = kadnet.Node(listen=["tcp://127.0.0.1:0", "udp://127.0.0.1:0"])
        s = peer.open_stream(n.addresses[0]); r = n.accept_stream()  # "read" waits on r
        release = threading.Event()
        peer.add_handler(70, lambda caller, data: b"" if release.wait(60) else b"")
        try:
            print("waiting", flush=True)  # the parent interrupts once this thread then blocks
            WAIT
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        release.set(); n.stop(); peer.stop()
    """)

    @staticmethod
    def wait_until_blocked(pid):
        """Until the child's main thread sleeps in the kernel (the call's wait), at most WAIT s."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with open(f"/proc/{pid}/task/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "S":
                    return
            time.sleep(0.001)  # polls a condition, bounded by the deadline

    def test_ctrl_c_ends_a_waiting_call(self):
        for name, wait in self.WAITS.items():
            with self.subTest(name):
                child = subprocess.Popen([sys.executable, "-c", self.SCRIPT.replace("WAIT", wait)],
                                         stdout=subprocess.PIPE, env=os.environ)
                try:
                    self.assertEqual(child.stdout.readline(), b"waiting\n")
                    self.wait_until_blocked(child.pid)
                    child.send_signal(signal.SIGINT)
                    out, _ = child.communicate(timeout=WAIT)
                finally:
                    child.kill()
                self.assertEqual(out, b"interrupted\n")
                self.assertEqual(child.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
