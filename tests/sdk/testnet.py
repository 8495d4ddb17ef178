"""testnet.py - runs a command against a fresh 4-replica hotstuffd testnet on loopback.

    /usr/bin/python3 tests/sdk/testnet.py --bin-dir BUILD/server --sdk BUILD/sdk/python \
        [--validators 4] [--timeout 300] -- COMMAND [ARG...]

Writes the node files with `hotstuffctl testnet` into a temporary folder, starts one hotstuffd
per node, waits until every replica has committed a block, then runs COMMAND with
HS_SDK_ADDRS (the admin addresses, comma-separated), HS_SDK_DIR (the testnet folder),
HS_SDK_PIDS (the replicas' pids) and HS_BIN_DIR in its environment. Whatever happens, every replica is stopped (SIGTERM, then SIGKILL) and the
folder removed; on failure the last lines of each replica's log are printed first. Exits with
COMMAND's status, or 1 if the testnet did not come up in time.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def ports_free(ports):
    for p in ports:
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_base(n):
    # hotstuffctl testnet puts replica i on base+i and its admin port on base+100+i.
    rng = random.Random(os.getpid() ^ int(time.time()))
    for _ in range(200):
        base = rng.randrange(30000, 39000)
        if ports_free(list(range(base, base + n)) + list(range(base + 100, base + 100 + n))):
            return base
    raise SystemExit("testnet.py: no free ports found")


def tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return "(no log: %s)\n" % e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--sdk", required=True, help="the generated Python SDK folder")
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300, help="seconds for COMMAND")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command")
    sys.path.insert(0, a.sdk)
    from hotstuff_sdk import Client, HotstuffError

    n = a.validators
    work = tempfile.mkdtemp(prefix="hs-sdk-")
    procs, ok = [], False
    try:
        base = pick_base(n)
        subprocess.run([os.path.join(a.bin_dir, "hotstuffctl"), "testnet", "--validators",
                        str(n), "--dir", work, "--base-port", str(base), "--host",
                        "127.0.0.1"], check=True, stdout=subprocess.DEVNULL)
        for i in range(n):
            node = os.path.join(work, "node%d" % i)
            log = open(os.path.join(node, "log"), "w")
            procs.append(subprocess.Popen(
                [os.path.join(a.bin_dir, "hotstuffd"), "--config",
                 os.path.join(node, "config.json")], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        addrs = ["127.0.0.1:%d" % (base + 100 + i) for i in range(n)]
        deadline = time.monotonic() + 60
        pending = set(addrs)
        while pending and time.monotonic() < deadline:
            for addr in sorted(pending):
                try:
                    with Client(addr, timeout=1.0) as c:
                        if c.status().has_committed:
                            pending.discard(addr)
                except HotstuffError:
                    pass
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        if pending:
            print("testnet.py: replicas %s did not commit within 60 s" % sorted(pending))
            return 1
        env = dict(os.environ, HS_SDK_ADDRS=",".join(addrs), HS_SDK_DIR=work,
                   HS_SDK_PIDS=",".join(str(p.pid) for p in procs), HS_BIN_DIR=a.bin_dir)
        # Its own session, so that a timeout ends everything it started (go test's binary,
        # a replica a test restarted), not just the command itself.
        child = subprocess.Popen(cmd, env=env, start_new_session=True)
        try:
            rc = child.wait(timeout=a.timeout)
        except subprocess.TimeoutExpired:
            print("testnet.py: %s ran over %.0f s" % (cmd[0], a.timeout))
            rc = 1
        finally:
            try:  # whatever the command left behind in its session
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
        ok = rc == 0
        return rc
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        stop = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(max(0.1, stop - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if not ok:
            for i in range(len(procs)):
                print("---- node%d (exit %s) ----" % (i, procs[i].returncode))
                sys.stdout.write(tail(os.path.join(work, "node%d" % i, "log")))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
