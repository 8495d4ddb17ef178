"""The Python SDK against a live 4-replica testnet (run by tests/sdk/testnet.py, see ctest).

Needs HS_SDK_ADDRS (admin addresses), and for the restart case HS_SDK_DIR, HS_SDK_PIDS and
HS_BIN_DIR. Every check reads what the replicas return; nothing is assumed from timing.
"""

import os
import signal
import subprocess
import time
import unittest

import grpc

from hotstuff_sdk import Client, HotstuffError, block_hash, kv_data_hash

ADDRS = os.environ["HS_SDK_ADDRS"].split(",")
GENESIS_VECTOR = "dbcfcc77f5774ed3333f3963eb84a324fd967de4d62c96631be6af1d6b3fe136"


def wait_height(client, height, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = client.status()
        if s.has_committed and s.committed_height >= height:
            return s.committed_height
        time.sleep(0.05)
    raise AssertionError("%s did not reach height %d" % (client.address, height))


class PythonSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.clients = [Client(a, timeout=15.0) for a in ADDRS]
        cls.restarted = None

    @classmethod
    def tearDownClass(cls):
        for c in cls.clients:
            c.close()
        if cls.restarted and cls.restarted.poll() is None:
            cls.restarted.terminate()
            cls.restarted.wait(10)

    def test_block_hash_vector(self):
        # spec §2.5: height 0, the genesis PC, a zero data hash.
        from hotstuff.v1 import types_pb2
        b = types_pb2.Block(height=0, data_hash=bytes(32))
        b.justify.phase = types_pb2.PHASE_GENERIC
        self.assertEqual(block_hash(b).hex(), GENESIS_VECTOR)

    def test_put_commits_and_reads_back_everywhere(self):
        keys = {}
        for i in range(8):
            key, value = b"py-key-%d" % i, b"value-%d" % i
            height = self.clients[i % 4].put(key, value)  # waits for the commit
            self.assertIsInstance(height, int)
            keys[key] = (value, height)
        top = max(h for _, h in keys.values())
        for c in self.clients:
            wait_height(c, top)
            for key, (value, height) in keys.items():
                self.assertEqual(c.get(key), value, "%s: %r" % (c.address, key))
                # The committing block carries the transaction.
                b = c.block(height)
                self.assertTrue(any(key in tx for tx in b.data))
        self.assertIsNone(self.clients[0].get(b"py-never-written"))
        # delete through the SDK, then the key is gone.
        h = self.clients[1].delete(b"py-key-0")
        wait_height(self.clients[2], h)
        self.assertIsNone(self.clients[2].get(b"py-key-0"))
        # Without wait, put returns at admission; the transaction still commits.
        self.assertIsNone(self.clients[3].put(b"py-nowait", b"x", wait=False))
        deadline = time.monotonic() + 30
        while self.clients[0].get(b"py-nowait") != b"x":
            self.assertLess(time.monotonic(), deadline, "the unwaited put never committed")
            time.sleep(0.05)

    def test_blocks_are_consistent(self):
        c = self.clients[0]
        c.put(b"py-chain", b"1")
        tip = wait_height(c, 5)
        blocks = list(c.blocks(0, tip))
        self.assertEqual([b.height for b in blocks], list(range(tip + 1)))
        for prev, b in zip([None] + blocks[:-1], blocks):
            self.assertEqual(block_hash(b), b.hash, "height %d: hash" % b.height)
            self.assertEqual(kv_data_hash(list(b.data)), b.data_hash, "height %d" % b.height)
            if prev is not None:
                self.assertEqual(b.justify.block, prev.hash, "height %d: parent" % b.height)
            by_hash = c.block(b.hash)
            self.assertEqual(by_hash, b)
            self.assertEqual(c.block(b.height), b)
        # Every replica holds the same blocks.
        for other in self.clients[1:]:
            wait_height(other, tip)
            self.assertEqual([b.hash for b in other.blocks(0, tip)], [b.hash for b in blocks])

    def test_validator_set(self):
        vs = self.clients[0].validator_set()
        self.assertEqual(len(vs.committed.validators), 4)
        for v in vs.committed.validators:
            self.assertEqual(len(v.key), 32)
            self.assertGreater(v.power, 0)
        keys = sorted(v.key for v in vs.committed.validators)
        self.assertEqual(keys, sorted(c.status().key for c in self.clients))

    def test_error_codes(self):
        c = self.clients[0]
        with self.assertRaises(HotstuffError) as e:
            c.block(bytes(32))
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(HotstuffError) as e:
            c.block(b"short")
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(HotstuffError) as e:
            c.block(10 ** 12)
        self.assertEqual(e.exception.code, grpc.StatusCode.OUT_OF_RANGE)
        with self.assertRaises(HotstuffError) as e:
            list(c.blocks(0, 10 ** 12))
        self.assertEqual(e.exception.code, grpc.StatusCode.OUT_OF_RANGE)
        with self.assertRaises(HotstuffError) as e:
            c.get(b"")
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(HotstuffError) as e:
            c.submit(b"\xff\xff not a kv transaction")
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(HotstuffError) as e:
            next(c.subscribe(["NO_SUCH_EVENT"]))
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        # A deadline: the client's own, as DEADLINE_EXCEEDED, not a hang.
        unreachable = Client("127.0.0.1:9", timeout=0.5)
        with self.assertRaises(HotstuffError) as e:
            unreachable.status()
        self.assertIn(e.exception.code, (grpc.StatusCode.UNAVAILABLE,
                                         grpc.StatusCode.DEADLINE_EXCEEDED))
        unreachable.close()

    def test_subscribe_commits_from_height_1_once_in_order(self):
        c = self.clients[1]
        tip = wait_height(c, 3)
        want = tip + 5
        seen = []
        for ev in c.subscribe(["COMMIT_BLOCK"], from_height=1):
            self.assertEqual(ev.type, 2)  # EVENT_TYPE_COMMIT_BLOCK
            seen.append(ev.height)
            if ev.height >= want:
                break
        self.assertEqual(seen, list(range(1, want + 1)))

    def test_example(self):
        # examples/python_sdk.py, run against the testnet as a user would.
        here = os.path.dirname(os.path.abspath(__file__))
        example = os.path.join(here, "..", "..", "examples", "python_sdk.py")
        out = subprocess.run(["/usr/bin/python3", example, ADDRS[0]], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("colour = blue", out.stdout)

    def test_z_subscribe_resumes_across_a_restart(self):
        # Last (by name): node 3 is killed and started again.
        pids = [int(p) for p in os.environ["HS_SDK_PIDS"].split(",")]
        c = self.clients[3]
        start = wait_height(c, 2)
        seen, killed = [], False
        for ev in c.subscribe(["COMMIT_BLOCK"], from_height=start, retry_for=60.0):
            seen.append(ev.height)
            if not killed and len(seen) == 3:
                os.kill(pids[3], signal.SIGKILL)
                time.sleep(0.5)  # let the stream see the break before the restart
                node = os.path.join(os.environ["HS_SDK_DIR"], "node3")
                with open(os.path.join(node, "log.restart"), "w") as log:
                    type(self).restarted = subprocess.Popen(
                        [os.path.join(os.environ["HS_BIN_DIR"], "hotstuffd"), "--config",
                         os.path.join(node, "config.json")],
                        stdout=log, stderr=subprocess.STDOUT)  # in the test's session
                killed = True
            if len(seen) >= 15:
                break
        self.assertTrue(killed)
        self.assertEqual(seen, list(range(start, start + 15)))
        # The tail came from the restarted replica (the killed one cannot answer).
        self.assertIsNone(self.restarted.poll())
        self.assertGreaterEqual(c.status().committed_height, start + 14)


if __name__ == "__main__":
    unittest.main(verbosity=2)
