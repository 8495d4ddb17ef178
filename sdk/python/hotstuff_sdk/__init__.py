"""hotstuff_sdk - a Python client for the hotstuffd admin API (service hotstuff.v1.Admin).

The stubs under hotstuff.v1 are generated from proto/ by scripts/gen-sdks.sh; this package is
the thin hand-written layer over them:

    from hotstuff_sdk import Client
    with Client("127.0.0.1:26700") as c:
        height = c.put(b"colour", b"blue")      # waits for the commit
        assert c.get(b"colour") == b"blue"

Every failed call raises HotstuffError, which carries the gRPC status code.
"""

from .chain import block_hash, kv_data_hash, kv_put, kv_delete
from .client import Client, HotstuffError, EventType

__all__ = ["Client", "HotstuffError", "EventType", "block_hash", "kv_data_hash", "kv_put",
           "kv_delete"]
