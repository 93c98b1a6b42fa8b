"""The y-websocket endpoint: ``ws://host:port/<room>?token=...``, one room per connection.

Behaviour, as stock y-websocket (v3) clients expect it:

- On connect the server sends ``SyncStep1`` (its state vector) and, if any, the current
  awareness states; it answers every ``SyncStep1`` with a ``SyncStep2``. One message per frame.
- ``Update``/``SyncStep2`` are applied to the room and forwarded to every *other* member; an
  ``Update`` frame is forwarded to y-websocket peers byte for byte as received.
- Awareness goes through the room's registry (echoes dropped, renewals coalesced); the states a
  connection owns are removed, and the removal broadcast, when it closes. ``QueryAwareness`` is
  answered with every known state.
- A read-only connection's ``SyncStep2``/``Update`` are dropped and answered with
  ``2 0 <reason>`` (permission denied); nothing reaches the document or the store.
- An invalid awareness payload (malformed, oversized, too deeply nested) is dropped and
  answered with ``2 0 awareness rejected: ...``; the connection stays open.
- A malformed frame closes the connection with 1007 (invalid payload); a text frame with 1003.
  The room is unaffected.
- Over the rate limit the relay reads more slowly (see :mod:`.ratelimit`): every update is
  applied, none dropped. Only a client held back for longer than ``max_throttle`` without a
  break is closed, with 4029, after the updates it had already sent are applied.
- The token's expiry closes the connection with 4001 when it comes, whether or not the client
  writes (a reader stops receiving too); the client reconnects with a fresh token in its URL.

Updates have no acknowledgement here; they are durable within ``RelayConfig.flush_delay``.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from websockets.asyncio.server import ServerConnection

from ..clock import TimerHandle
from ..errors import FrameError, LimitExceededError, RoomUnavailableError
from ..protocol.awareness import InvalidAwarenessError
from ..protocol.close_codes import CloseCode
from ..protocol.yjs import AuthDenied, SyncStep1, SyncStep2, YjsKind, encode_yjs, peek_yjs, update_frame
from ..protocol.yjs import Awareness as YAwareness
from .auth import Access
from .context import RelayContext
from .peer import Peer
from .room import FrameCache, Room

log = logging.getLogger("crdtsync.relay")

FRAME_YJS_UPDATE = "yjs.update"
FRAME_YJS_AWARENESS = "yjs.awareness"
READ_ONLY_REASON = "read-only: this connection may not change the document"


class YjsSession:
    """One y-websocket connection in one room."""

    def __init__(self, ctx: RelayContext, peer: Peer, doc_id: str, access: Access):
        self.ctx = ctx
        self.peer = peer
        self.doc_id = doc_id
        self.access = access
        self.room: Room | None = None
        self._expiry: TimerHandle | None = None

    @property
    def key(self) -> Hashable:
        return self.peer.key

    def deliver_update(self, doc_id: str, update: bytes, frames: FrameCache) -> None:
        frame = frames.get(FRAME_YJS_UPDATE)
        if frame is None:
            frame = frames[FRAME_YJS_UPDATE] = update_frame(update)
        self.peer.send(frame)

    def deliver_awareness(self, doc_id: str, payload: bytes, frames: FrameCache) -> None:
        frame = frames.get(FRAME_YJS_AWARENESS)
        if frame is None:
            frame = frames[FRAME_YJS_AWARENESS] = encode_yjs(YAwareness(payload))
        self.peer.send(frame)

    async def run(self, ws: ServerConnection) -> None:
        """Join the room (queued while it loads), greet, then serve frames until close."""
        rooms = self.ctx.rooms
        try:
            room = await rooms.join(self.doc_id, self)
        except RoomUnavailableError as exc:
            await ws.close(CloseCode.ROOM_UNAVAILABLE, str(exc)[:120])
            return
        except LimitExceededError as exc:
            self.ctx.metrics.dropped.labels("max_rooms").inc()
            await ws.close(CloseCode.POLICY, str(exc)[:120])
            return
        self.room = room
        clock = self.ctx.clock
        expires = self.peer.claims.expires
        if expires is not None:
            self._expiry = clock.call_later(max(0.0, expires - clock.now()), self._token_expired)
        try:
            self.peer.send(encode_yjs(SyncStep1(room.state_vector())))
            snapshot = room.awareness_snapshot()
            if snapshot is not None:
                self.peer.send(encode_yjs(YAwareness(snapshot)))
            await self.peer.serve(self, clock)
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            rooms.leave(room, self)

    def _token_expired(self) -> None:
        self._expiry = None
        self.peer.close(CloseCode.TOKEN_EXPIRED, "token expired")

    def close_abusive(self, held_for: float) -> None:
        self.peer.close(CloseCode.RATE_LIMITED, f"held back by the rate limit for {held_for:.0f} s; slow down")

    async def handle(self, frame: str | bytes) -> None:
        """Process one received frame (never raises)."""
        peer, room, metrics = self.peer, self.room, self.ctx.metrics
        assert room is not None
        if isinstance(frame, str):
            peer.close(CloseCode.BAD_DATA, "y-websocket frames are binary")
            return
        metrics.bytes_in.inc(len(frame))
        now = self.ctx.clock.now()
        try:
            p = peek_yjs(frame)
            kind = p.kind
            if kind is YjsKind.UPDATE or kind is YjsKind.SYNC_STEP2:
                if self.access < Access.WRITE:
                    metrics.errors.labels("forbidden").inc()
                    peer.send(encode_yjs(AuthDenied(READ_ONLY_REASON)))
                    return
                if peer.claims.expired(now):
                    peer.close(CloseCode.TOKEN_EXPIRED, "token expired")
                    return
                update = frame[p.start : p.end]
                frames: FrameCache = {FRAME_YJS_UPDATE: frame} if kind is YjsKind.UPDATE else {}
                room.apply_update(update, self, frames=frames)
            elif kind is YjsKind.SYNC_STEP1:
                peer.send(encode_yjs(SyncStep2(room.sync_step2(frame[p.start : p.end]))))
            elif kind is YjsKind.AWARENESS:
                if self.access < Access.WRITE and not self.ctx.config.reader_presence:
                    metrics.errors.labels("forbidden").inc()
                    peer.send(encode_yjs(AuthDenied("read-only: presence is not allowed on this relay")))
                    return
                room.apply_awareness(frame[p.start : p.end], self, principal=peer.claims.subject)
            elif kind is YjsKind.QUERY_AWARENESS:
                snapshot = room.awareness_snapshot()
                if snapshot is not None:
                    peer.send(encode_yjs(YAwareness(snapshot)))
            # AUTH_DENIED from a client means nothing to a server: ignored
        except InvalidAwarenessError as exc:
            metrics.errors.labels("bad_awareness").inc()
            peer.send(encode_yjs(AuthDenied(f"awareness rejected: {exc}"[:200])))
        except FrameError as exc:
            metrics.errors.labels("bad_frame").inc()
            peer.close(CloseCode.INVALID_PAYLOAD, f"bad frame: {exc}")
        except RoomUnavailableError as exc:
            peer.close(CloseCode.ROOM_UNAVAILABLE, str(exc))
        except Exception:
            log.exception("internal error on a y-websocket frame", extra={"fields": {"doc": self.doc_id}})
            metrics.errors.labels("internal").inc()
            peer.close(CloseCode.INTERNAL, "internal error")
