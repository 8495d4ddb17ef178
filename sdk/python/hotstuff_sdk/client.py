"""Client: one admin endpoint of one replica, over one gRPC channel.

Every call has a deadline (the client's `timeout` unless the call is given its own) and every
failure raises HotstuffError with the gRPC status code, so callers handle one exception type.
Blocks, heights and validator sets are the generated hotstuff.v1 messages, not copies.
"""

import time

import grpc

from hotstuff.v1 import admin_pb2, admin_pb2_grpc

from .chain import kv_delete, kv_put

EventType = admin_pb2.EventType  # EventType.Value("EVENT_TYPE_COMMIT_BLOCK"), .Name(2), ...

# A replica's answer to a status call names the failure; these are the ones worth retrying
# for a stream that should resume (the replica restarted, or the connection dropped).
_RESUMABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
              grpc.StatusCode.CANCELLED)


class HotstuffError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `message` the server's details."""

    def __init__(self, code, message, method=""):
        self.code = code
        self.message = message
        self.method = method
        super().__init__("%s: %s: %s" % (method or "call", code.name, message))


def _wrap(method, err):
    if isinstance(err, grpc.RpcError) and hasattr(err, "code"):
        return HotstuffError(err.code(), err.details() or "", method)
    return HotstuffError(grpc.StatusCode.UNKNOWN, str(err), method)


class Client:
    """Talks to one replica's admin port, e.g. Client("127.0.0.1:26700").

    timeout: the deadline in seconds of each unary call and of each page of a stream.
    """

    def __init__(self, address, timeout=10.0, channel=None):
        self.address = address
        self.timeout = timeout
        self._channel = channel or grpc.insecure_channel(address)
        self._stub = admin_pb2_grpc.AdminStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _unary(self, name, request, timeout=None):
        try:
            return getattr(self._stub, name)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            raise _wrap(name, e) from None

    # ---- reads ----

    def status(self, timeout=None):
        """GetStatusResponse: role, view, committed height and hash, peers."""
        return self._unary("GetStatus", admin_pb2.GetStatusRequest(), timeout)

    def block(self, height_or_hash, timeout=None):
        """The committed Block at a height (int) or with a hash (32 bytes)."""
        if isinstance(height_or_hash, int):
            req = admin_pb2.GetBlockRequest(height=height_or_hash)
        else:
            req = admin_pb2.GetBlockRequest(hash=bytes(height_or_hash))
        return self._unary("GetBlock", req, timeout).block

    def blocks(self, start, end, timeout=None):
        """Yields the committed Blocks from height start to end (inclusive), in order.

        The server streams at most a page per call; this asks again from where the last page
        ended, so any range works. Raises OUT_OF_RANGE if end is above the committed tip.
        """
        h = start
        while h <= end:
            got = 0
            try:
                for r in self._stub.ListBlocks(
                        admin_pb2.ListBlocksRequest(start_height=h, end_height=end),
                        timeout=timeout or self.timeout):
                    if r.block.height != h:
                        raise HotstuffError(grpc.StatusCode.DATA_LOSS,
                                            "expected height %d, got %d" % (h, r.block.height),
                                            "ListBlocks")
                    yield r.block
                    h += 1
                    got += 1
            except grpc.RpcError as e:
                raise _wrap("ListBlocks", e) from None
            if got == 0 and h <= end:
                raise HotstuffError(grpc.StatusCode.DATA_LOSS,
                                    "the server sent no block from height %d" % h, "ListBlocks")

    def validator_set(self, timeout=None):
        """GetValidatorSetResponse: the committed set, and a pending update if any."""
        return self._unary("GetValidatorSet", admin_pb2.GetValidatorSetRequest(), timeout)

    def get(self, key, default=None, timeout=None):
        """The committed value of key (bytes), or default when the key is absent."""
        try:
            return self._unary("GetState", admin_pb2.GetStateRequest(key=key), timeout).value
        except HotstuffError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return default
            raise

    # ---- writes ----

    def submit(self, tx, wait=False, timeout=None):
        """Submits raw transaction bytes: AdminSubmitTransactionResponse (tx_hash, and with
        wait the commit's height). With wait, DEADLINE_EXCEEDED if it does not commit in time."""
        req = admin_pb2.AdminSubmitTransactionRequest(transaction=tx, wait_for_commit=wait)
        return self._unary("SubmitTransaction", req, timeout)

    def put(self, key, value, wait=True, timeout=None):
        """Sets key to value through the kv app. With wait (the default) returns the height of
        the block that committed it; without, returns None once the replica accepted it."""
        r = self.submit(kv_put(key, value), wait, timeout)
        return r.height if wait else None

    def delete(self, key, wait=True, timeout=None):
        """Deletes key; returns as put does."""
        r = self.submit(kv_delete(key), wait, timeout)
        return r.height if wait else None

    # ---- events ----

    def subscribe(self, types=None, from_height=None, resume=True, retry_for=30.0):
        """Yields SubscribeResponse events as they happen (an infinite iterator).

        types: EventType values or names ("COMMIT_BLOCK" or "EVENT_TYPE_COMMIT_BLOCK"); all
        when empty. from_height: with COMMIT_BLOCK, first replay committed blocks from there.
        resume: when the stream breaks (the replica restarts, the connection drops, or the
        server cuts a slow subscriber off), reconnect and, for COMMIT_BLOCK, continue from the
        height after the last one yielded, so commits come once each, in order, across the
        break. Without from_height it starts after the tip committed when it first connects,
        so a break before the first event loses nothing either. It gives up when one break
        lasts longer than retry_for seconds.
        """
        wanted = [_event_type(t) for t in (types or [])]
        commits = not wanted or admin_pb2.EVENT_TYPE_COMMIT_BLOCK in wanted
        next_height = from_height
        if resume and next_height is None and commits:
            s = self.status()
            next_height = s.committed_height + 1 if s.has_committed else 0
        while True:
            req = admin_pb2.SubscribeRequest(types=wanted)
            if next_height is not None:
                req.has_from_height = True
                req.from_height = next_height
            call = self._stub.Subscribe(req)
            try:
                for ev in call:
                    if ev.type == admin_pb2.EVENT_TYPE_COMMIT_BLOCK:
                        if next_height is not None and ev.height < next_height:
                            continue  # already yielded before a reconnect
                        next_height = ev.height + 1
                    yield ev
                return  # the server ended the stream without an error
            except grpc.RpcError as e:
                err = _wrap("Subscribe", e)
                cut_off = (err.code == grpc.StatusCode.RESOURCE_EXHAUSTED and commits
                           and next_height is not None)
                if not resume or (err.code not in _RESUMABLE and not cut_off):
                    raise err from None
                time.sleep(0.2)  # no tight loop when a replica refuses again at once
                self._wait_ready(retry_for, err)
            finally:
                call.cancel()

    def _wait_ready(self, retry_for, err):
        deadline = time.monotonic() + retry_for
        while time.monotonic() < deadline:
            try:
                self.status(timeout=1.0)
                return
            except HotstuffError:
                time.sleep(0.2)
        raise err


def _event_type(t):
    if isinstance(t, int):
        return t
    name = t if t.startswith("EVENT_TYPE_") else "EVENT_TYPE_" + t
    try:
        return admin_pb2.EventType.Value(name)
    except ValueError:
        raise HotstuffError(grpc.StatusCode.INVALID_ARGUMENT, "unknown event type %r" % t,
                            "Subscribe") from None
