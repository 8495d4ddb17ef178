"""Bytes a client computes itself: block hashes (spec section 2.5) and kv-app transactions.

Recomputing a block's hash lets a client check what a replica returns instead of trusting it:
hash = SHA-256(u64le(height) || borsh(justify) || data_hash), where borsh(justify) is
u64le(chain_id) || u64le(view) || block[32] || phase(1 byte) || u32le(slots) || each slot as
0 (absent) or 1 || signature[64].
"""

import hashlib
import os
import struct

from hotstuff.v1 import kvapp_pb2

_HASH_LEN = 32
_SIG_LEN = 64


def _borsh_pc(pc):
    if pc.phase < 1 or pc.phase > 5:
        raise ValueError("phase %d is not one of the five phases" % pc.phase)
    genesis = pc.chain_id == 0 and pc.view == 0 and len(pc.signatures) == 0
    block = pc.block
    if not block and genesis:
        block = bytes(_HASH_LEN)  # the genesis PC's block is all zeros, sent empty
    if len(block) != _HASH_LEN:
        raise ValueError("justify.block is %d bytes, not 32" % len(block))
    out = [struct.pack("<QQ", pc.chain_id, pc.view), block,
           bytes([pc.phase - 1]),  # the wire enum starts at PHASE_GENERIC = 1; Borsh at 0
           struct.pack("<I", len(pc.signatures))]
    for slot in pc.signatures:
        if not slot.signature:
            out.append(b"\x00")
        elif len(slot.signature) == _SIG_LEN:
            out.append(b"\x01" + slot.signature)
        else:
            raise ValueError("a signature slot holds %d bytes" % len(slot.signature))
    return b"".join(out)


def block_hash(block):
    """The hash a hotstuff.v1.Block must carry, recomputed from its fields."""
    if len(block.data_hash) != _HASH_LEN:
        raise ValueError("data_hash is %d bytes, not 32" % len(block.data_hash))
    justify = block.justify if block.HasField("justify") else None
    if justify is None:
        raise ValueError("the block has no justify")
    h = hashlib.sha256()
    h.update(struct.pack("<Q", block.height))
    h.update(_borsh_pc(justify))
    h.update(block.data_hash)
    return h.digest()


def kv_data_hash(data):
    """The kv app's data_hash of a block's transactions: SHA-256(u32le(n) || SHA-256(tx)...)."""
    h = hashlib.sha256(struct.pack("<I", len(data)))
    for tx in data:
        h.update(hashlib.sha256(tx).digest())
    return h.digest()


def _nonce():
    return struct.unpack("<Q", os.urandom(8))[0]


def kv_put(key, value, nonce=None):
    """The bytes of a kv-app Put transaction (a random nonce unless one is given)."""
    tx = kvapp_pb2.KvTransaction(nonce=_nonce() if nonce is None else nonce)
    tx.put.key = key
    tx.put.value = value
    return tx.SerializeToString(deterministic=True)


def kv_delete(key, nonce=None):
    """The bytes of a kv-app Delete transaction."""
    tx = kvapp_pb2.KvTransaction(nonce=_nonce() if nonce is None else nonce)
    tx.delete.key = key
    return tx.SerializeToString(deterministic=True)
