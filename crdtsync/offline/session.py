"""One side of a local-channel connection, sans-I/O: messages in, frames out.

Both ends run a :class:`SyncSession` around their :class:`~crdtsync.replica.Replica`; the hub
side (the leader) and the member side (a follower) differ only in who opens the catch-up.

The exchange, in native-protocol messages (:mod:`crdtsync.protocol.native`)::

    member -> hub   Hello(client={"pid": ...})
    both  -> other  SyncStep1(doc, state vector)        for every document it holds
    hub   -> member Ping(0)                             "my SyncStep1s are all sent"
    on SyncStep1(doc, sv): answer SyncStep2(doc, what the sender misses), and send our own
                           SyncStep1(doc) if we had not yet (a document only one side knew)
    member -> hub   Ping(n) after answering the hub's Ping(0)
    hub   -> member Pong(n): everything the hub held when the member joined has arrived
    both  -> other  Update(doc, update)                 every later local transaction

So a joining process has the current state as soon as :attr:`synced` is True. Updates are
applied with this session's ``origin``; the shell must not send a transaction tagged with it
back to the same peer (:meth:`wants`), which is what keeps echoes out.

Bad input never raises out of :meth:`receive_bytes`: a frame that does not decode or an update
that does not apply queues an ``Error`` message and sets :attr:`failed` (close the connection;
the peer resyncs by state vector when it reconnects).
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable

from ..errors import FrameError, MessageTooLargeError
from ..origins import Origin
from ..protocol import native
from ..protocol.native import ErrorCode
from ..protocol.split import split_for_frames
from ..replica import Replica
from .wire import DEFAULT_MAX_FRAME, FrameReader, encode_frame

log = logging.getLogger("crdtsync.offline")

SYNC_NONCE = 1
HUB_DONE_NONCE = 0


class Side(enum.Enum):
    HUB = "hub"
    MEMBER = "member"


class SyncSession:
    """Keeps one peer's replica and ours converged over one connection."""

    def __init__(self, replica: Replica, *, side: Side, origin: Origin,
                 max_frame: int = DEFAULT_MAX_FRAME,
                 on_synced: Callable[[], None] | None = None) -> None:
        self.replica = replica
        self.side = side
        self.origin = origin
        self.peer_info: dict[str, native.Scalar] = {}
        self.synced = side is Side.HUB
        self.failed: str | None = None
        self.updates_in = 0
        self.updates_out = 0
        self._reader = FrameReader(max_frame=max_frame)
        self._out: list[bytes] = []
        self._step1_sent: set[str] = set()
        self._on_synced = on_synced

    # -- output ------------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """Every frame queued since the last call, joined (write it to the socket)."""
        out, self._out = self._out, []
        return b"".join(out)

    def _send(self, msg: native.NativeMessage) -> None:
        self._out.append(encode_frame(msg))

    def start(self) -> None:
        """Queue the opening frames. Call once, right after connecting."""
        if self.side is Side.MEMBER:
            self._send(native.Hello(client={"pid": os.getpid()}))
        for doc_id in self.replica.doc_ids():
            self._send_step1(doc_id)
        if self.side is Side.HUB:
            self._send(native.Ping(HUB_DONE_NONCE))

    def _send_step1(self, doc_id: str) -> None:
        self._step1_sent.add(doc_id)
        self._send(native.SyncStep1(doc_id, self.replica.state_vector(doc_id)))

    def wants(self, origin: Origin) -> bool:
        """Whether a transaction tagged ``origin`` must be sent to this peer (not its own)."""
        return origin != self.origin and self.failed is None

    def local_update(self, doc_id: str, update: bytes) -> None:
        """Queue a transaction of our replica for the peer."""
        self.updates_out += 1
        for part in self._parts(doc_id, update):
            self._send(native.Update(doc_id, part))

    def _parts(self, doc_id: str, update: bytes) -> list[bytes]:
        """``update`` cut to fit the peer's frame limit (both sides share one ChannelLimits):
        a frame over it would only make the peer close the session, again after each reconnect.
        A single value larger than the limit is sent whole and refused: a typed error there."""
        try:
            return split_for_frames(update, doc_id, self._reader.max_frame)
        except MessageTooLargeError:
            return [update]

    # -- input -------------------------------------------------------------------------------
    def receive_bytes(self, data: bytes) -> None:
        """Feed bytes read from the socket; apply what they carry."""
        if self.failed is not None:
            return
        self._reader.feed(data)
        try:
            messages = self._reader.messages()
        except (FrameError, MessageTooLargeError) as exc:
            code = ErrorCode.TOO_LARGE if isinstance(exc, MessageTooLargeError) else ErrorCode.BAD_FRAME
            self._fail(code, str(exc))
            return
        for msg in messages:
            self.receive(msg)
            if self.failed is not None:
                return

    def receive(self, msg: native.NativeMessage) -> None:
        """Handle one decoded message."""
        match msg:
            case native.Update(doc_id=doc_id, update=update) | native.SyncStep2(doc_id=doc_id, update=update):
                self._apply(doc_id, update)
            case native.SyncStep1(doc_id=doc_id, state_vector=sv):
                try:
                    diff = self.replica.get_update(doc_id, sv)
                except Exception as exc:  # pycrdt rejects a malformed state vector
                    self._fail(ErrorCode.BAD_UPDATE, f"state vector for {doc_id!r} does not decode: {exc}")
                    return
                first, *rest = self._parts(doc_id, diff)
                self._send(native.SyncStep2(doc_id, first))
                for part in rest:
                    self._send(native.Update(doc_id, part))
                if doc_id not in self._step1_sent:
                    self._send_step1(doc_id)
            case native.Hello(client=client):
                self.peer_info = dict(client)
            case native.Ping(nonce=nonce):
                self._send(native.Pong(nonce))
                if self.side is Side.MEMBER and nonce == HUB_DONE_NONCE:
                    self._send(native.Ping(SYNC_NONCE))
            case native.Pong(nonce=nonce):
                if self.side is Side.MEMBER and nonce == SYNC_NONCE and not self.synced:
                    self.synced = True
                    if self._on_synced is not None:
                        self._on_synced()
            case native.Error(code=code, message=message):
                log.warning("local channel peer reported %s: %s", code, message)
            case _:
                pass  # messages the local channel does not use (awareness, acks) are ignored

    def _apply(self, doc_id: str, update: bytes) -> None:
        try:
            self.replica.apply_update(doc_id, update, origin=self.origin, raise_listener_errors=False)
        except Exception as exc:  # pycrdt raises on an update that does not decode
            self._fail(ErrorCode.BAD_UPDATE, f"update for {doc_id!r} does not apply: {exc}")
            return
        self.updates_in += 1

    def _fail(self, code: str, message: str) -> None:
        log.warning("local channel: closing a connection: %s: %s", code, message)
        self._send(native.Error(code, message, fatal=True))
        self.failed = f"{code}: {message}"
