"""python_sdk: put a key through one replica, read it back, and check the committing block.

    PYTHONPATH=build/sdk/python /usr/bin/python3 examples/python_sdk.py 127.0.0.1:26700
"""
import sys

from hotstuff_sdk import Client, block_hash

addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:26700"
with Client(addr, timeout=10.0) as c:
    height = c.put(b"colour", b"blue")  # waits for the commit
    value = c.get(b"colour")
    block = c.block(height)
    assert block_hash(block) == block.hash, "the block's hash does not match its contents"
    print("committed at height %d (block %s): colour = %s"
          % (height, block.hash[:8].hex(), value.decode()))
