"""The native endpoint (``ws://host:port/v1``): many documents per connection, acks.

Driven by the sans-I/O :class:`~crdtsync.protocol.connection.Connection` (server role):

1. ``Hello`` with a token -> ``Welcome`` (limits in ``info``), or a fatal ``unauthorized``.
2. ``Subscribe(doc, sv)`` -> the room is joined (queued while it loads), then
   ``SyncStep2(doc, missing)``, ``SyncStep1(doc, relay sv)`` and the awareness states. A join
   that has to wait for a load runs in the background: frames for that document are held (in
   order) until it is done; other documents are served meanwhile. Past ``max_queue`` held
   frames for one document or ``max_held_bytes`` held bytes for the connection, the relay stops
   reading the connection until the load ends (nothing is dropped).
   No grant on the doc -> ``Error forbidden``; too many subscriptions -> ``limit_exceeded``;
   a failed load -> ``room_unavailable``. ``Unsubscribe`` leaves the room.
3. ``Update``/``SyncStep2`` with ``seq > 0`` get ``Ack(doc, seq)`` once the store committed
   them. They are forwarded to every *other* member (a native ``Update`` frame byte for byte);
   never echoed to the sender. A refused write gets a non-fatal ``Error`` naming the document
   and its ``seq`` (read-only: ``forbidden``; not subscribed, undecodable, room down), and from
   then on every later write on that document is refused too (``resync_required``) until the
   client sends ``Subscribe`` for it again, so a cumulative Ack never covers a refused write.
4. Every document payload sent to a client fits the limit it announced in its Hello
   (``info["max_message_size"]``, an int > 0; absent or invalid: nothing is cut). A larger
   one is cut with :func:`~crdtsync.protocol.split.split_update`: a room-state answer becomes
   ``Update`` parts followed by a ``SyncStep2`` with the last part (so "synced" on the client
   means it has all of it), and a forwarded update becomes several ``Update`` frames. A payload
   that cannot be cut (one value larger than the limit) is not sent: the client gets a
   non-fatal ``Error too_large`` for that document instead of a frame it would refuse.
5. Non-fatal errors (``bad_update``, ``not_subscribed``, ``forbidden``, ``resync_required``, a
   rejected awareness payload as ``bad_frame``) leave the connection open; a frame that does not
   decode or breaks the state machine gets a fatal ``Error`` and the connection is closed.
6. Over the rate limit the relay reads more slowly (:mod:`.ratelimit`); only a client held back
   for longer than ``max_throttle`` without a break gets ``Error rate_limited`` and is closed
   (4029), after every frame it had already sent is handled. The token's expiry ends the
   connection when it comes (fatal ``unauthorized``, close 4001), for readers too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable

from websockets.asyncio.server import ServerConnection

from ..clock import TimerHandle
from ..errors import AuthError, FrameError, LimitExceededError, MessageTooLargeError, ProtocolError
from ..protocol.awareness import AwarenessNotOwnedError, InvalidAwarenessError
from ..protocol.connection import Connection
from ..protocol.native import (
    Ack,
    Awareness,
    Error,
    ErrorCode,
    Hello,
    NativeMessage,
    Subscribe,
    SyncStep1,
    SyncStep2,
    Unsubscribe,
    Update,
    encode,
)
from ..protocol.split import announced_limit, split_for_frames
from ..protocol.state import Role
from .auth import Access, Claims, authenticate
from .context import RelayContext
from .peer import CLOSE_POLICY, CLOSE_RATE_LIMITED, CLOSE_TOKEN_EXPIRED, Peer
from .room import FrameCache, Room, RoomUnavailableError

log = logging.getLogger("crdtsync.relay")

FRAME_NATIVE_UPDATE = "native.update"
FRAME_NATIVE_AWARENESS = "native.awareness"
_UNCUTTABLE = b"!"  # in a FrameCache count entry: the update cannot be cut to that limit (reason follows)


client_limit = announced_limit  # the limit a client announced in its Hello info


class NativeSession:
    """One native connection; a member of every room it subscribed to."""

    def __init__(self, ctx: RelayContext, peer: Peer):
        self.ctx = ctx
        self.peer = peer
        self.conn = Connection(Role.SERVER, max_message_size=ctx.config.max_message_size)
        self.rooms: dict[str, Room] = {}
        self._joining: dict[str, list[tuple[NativeMessage, bytes]]] = {}  # frames held while a room loads
        self._held_bytes = 0  # total size of the frames in _joining
        self._join_tasks: dict[str, asyncio.Task[None]] = {}  # by document
        self._refused: dict[str, int] = {}  # document -> seq of its first refused write, until resubscribed
        self._expiry: TimerHandle | None = None
        self.claims: Claims | None = None
        self.client_limit: int | None = None  # the client's max_message_size, from its Hello

    @property
    def key(self) -> Hashable:
        return self.peer.key

    # ---------------------------------------------------------------- room -> peer

    def deliver_update(self, doc_id: str, update: bytes, frames: FrameCache) -> None:
        frame = frames.get(FRAME_NATIVE_UPDATE)
        if frame is None:
            frame = frames[FRAME_NATIVE_UPDATE] = encode(Update(doc_id, update, 0))
        limit = self.client_limit
        if limit is None or len(frame) <= limit:
            self.peer.send(frame)
            return
        # Larger than this client accepts (the sender only had to fit the relay's own limit).
        # The parts are cut once per delivery and limit, and shared by every member with it.
        key = f"{FRAME_NATIVE_UPDATE}/{limit}"
        count = frames.get(key)
        if count is None:
            try:
                parts = [encode(Update(doc_id, part, 0)) for part in self._cut(doc_id, update)]
            except MessageTooLargeError as exc:
                count = frames[key] = _UNCUTTABLE + str(exc).encode("utf-8")
            else:
                count = frames[key] = str(len(parts)).encode()
                for i, part_frame in enumerate(parts):
                    frames[f"{key}/{i}"] = part_frame
        if count.startswith(_UNCUTTABLE):
            self._refuse(doc_id, len(update), count[len(_UNCUTTABLE):].decode("utf-8"))
            return
        for i in range(int(count)):
            self.peer.send(frames[f"{key}/{i}"])

    def _cut(self, doc_id: str, update: bytes) -> list[bytes]:
        """``update`` cut into parts whose frames fit the client's limit (``[update]`` when it
        fits or the client announced none). :class:`MessageTooLargeError` when it cannot be
        (a value larger than the limit): call :meth:`_refuse` then."""
        limit = self.client_limit
        if limit is None:
            return [update]
        try:
            return split_for_frames(update, doc_id, limit)
        except FrameError as exc:  # not expected: the room applied these bytes
            raise MessageTooLargeError(f"could not cut the update: {exc}") from exc

    def _refuse(self, doc_id: str, size: int, reason: str) -> None:
        """Tell the client (non-fatal ``too_large`` for ``doc_id``) and the log that an update
        was not sent because it cannot be cut to the client's limit."""
        log.warning("an update does not fit the client's message limit; not sent",
                    extra={"fields": {"peer": self.peer.id, "doc": doc_id, "limit": self.client_limit,
                                      "size": size, "reason": reason}})
        if self.conn.is_open:
            self._error(ErrorCode.TOO_LARGE,
                        f"an update of {doc_id!r} ({size} bytes) does not fit your {self.client_limit}-byte "
                        f"message limit and cannot be cut ({reason}); it was not sent", doc_id)

    def _send_state(self, doc_id: str, update: bytes) -> None:
        """Answer a state vector with ``update``: as one SyncStep2 when it fits the client's
        limit, else as Update parts then a SyncStep2 with the last part (so the client counts
        itself synced only with all of it); nothing but a ``too_large`` error when it cannot
        be cut."""
        try:
            parts = self._cut(doc_id, update)
        except MessageTooLargeError as exc:
            self._refuse(doc_id, len(update), str(exc))
            return
        for part in parts[:-1]:
            self._send(Update(doc_id, part, 0))
        self._send(SyncStep2(doc_id, parts[-1], 0))

    def deliver_awareness(self, doc_id: str, payload: bytes, frames: FrameCache) -> None:
        frame = frames.get(FRAME_NATIVE_AWARENESS)
        if frame is None:
            frame = frames[FRAME_NATIVE_AWARENESS] = encode(Awareness(doc_id, payload))
        self.peer.send(frame)

    # ---------------------------------------------------------------- peer -> room

    def _send(self, msg: NativeMessage) -> None:
        self.conn.send(msg)
        self._drain()

    def _drain(self) -> None:
        for frame in self.conn.bytes_to_send():
            self.peer.send(frame)

    def _error(self, code: str, message: str, doc_id: str | None = None) -> None:
        self.ctx.metrics.errors.labels(code).inc()
        self._send(Error(code, message[:500], doc_id, False))

    def _fatal(self, code: str, message: str, close_code: int = CLOSE_POLICY) -> None:
        self.ctx.metrics.errors.labels(code).inc()
        self.conn.reject(code, message[:500])
        self._drain()
        self.peer.close(close_code, message)

    async def run(self, ws: ServerConnection) -> None:
        try:
            await self.peer.serve(self, self.ctx.clock)
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            tasks = list(self._join_tasks.values())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            for room in self.rooms.values():
                self.ctx.rooms.leave(room, self)
            self.rooms.clear()
            self.conn.close()

    async def handle(self, frame: str | bytes) -> None:
        """Process one received frame. Never raises."""
        metrics = self.ctx.metrics
        if isinstance(frame, str):
            frame = frame.encode("utf-8", "replace")  # the codec rejects it as a bad frame
        metrics.bytes_in.inc(len(frame))
        try:
            self.conn.receive_bytes(frame)
        except ProtocolError as exc:
            metrics.errors.labels("bad_frame").inc()
            self._drain()  # the Connection queued a fatal Error
            self.peer.close(CLOSE_POLICY, f"protocol error: {exc}")
            return
        for event in self.conn.events_received():
            try:
                await self._dispatch(event, frame)
            except Exception:
                log.exception("internal error on a native frame", extra={"fields": {"peer": self.peer.id}})
                if self.conn.is_open:
                    self._error(ErrorCode.INTERNAL, "internal error")
        self._drain()  # automatic answers (Pong)

    def close_abusive(self, held_for: float) -> None:
        message = f"held back by the rate limit for {held_for:.0f} s without a break; closing"
        if self.conn.is_open:  # non-fatal: the frames already received are still handled
            self._error(ErrorCode.RATE_LIMITED, message)
        self.peer.close(CLOSE_RATE_LIMITED, message)

    def _token_expired(self) -> None:
        self._expiry = None
        if self.conn.is_open:
            self._fatal(ErrorCode.UNAUTHORIZED, "token expired", CLOSE_TOKEN_EXPIRED)

    async def _dispatch(self, ev: NativeMessage, frame: bytes) -> None:
        if isinstance(ev, Hello):
            self._hello(ev)
            return
        doc_id = getattr(ev, "doc_id", None)
        pending = self._joining.get(doc_id) if doc_id is not None else None
        if pending is not None and doc_id is not None:
            # That document's room is still loading: keep its frames, in order, for later;
            # past the limits, stop reading until the load is over (the client slows down).
            cfg = self.ctx.config
            if len(pending) >= cfg.max_queue or self._held_bytes + len(frame) > cfg.max_held_bytes:
                task = self._join_tasks.get(doc_id)
                if task is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(task)
                await self._dispatch(ev, frame)  # the room is joined (or refused) by now
                return
            pending.append((ev, frame))
            self._held_bytes += len(frame)
            return
        if isinstance(ev, Subscribe) and ev.doc_id not in self.rooms:
            # Checked here, not after the join's await: documents still joining count too.
            if len(self.rooms) + len(self._joining) >= self.ctx.config.max_subscriptions:
                self._error(ErrorCode.LIMIT_EXCEEDED, "too many subscriptions on this connection", ev.doc_id)
                return
            # Loading may take a while (a cold store): serve it in the background so this
            # connection's other documents are not held up behind it.
            self._joining[ev.doc_id] = []
            task = asyncio.get_running_loop().create_task(self._join_then_replay(ev))
            self._join_tasks[ev.doc_id] = task
            task.add_done_callback(self._joined)
            return
        if isinstance(ev, Subscribe):
            await self._subscribe(ev)
        elif isinstance(ev, Unsubscribe):
            self._refused.pop(ev.doc_id, None)
            room = self.rooms.pop(ev.doc_id, None)
            if room is not None:
                self.ctx.rooms.leave(room, self)
        elif isinstance(ev, SyncStep1):
            room = self._room(ev.doc_id)
            if room is not None:
                try:
                    missing = room.sync_step2(ev.state_vector)
                except FrameError as exc:
                    self._error(ErrorCode.BAD_UPDATE, str(exc), ev.doc_id)
                else:
                    self._send_state(ev.doc_id, missing)
        elif isinstance(ev, (Update, SyncStep2)):
            self._write(ev, frame)
        elif isinstance(ev, Awareness):
            room = self._room(ev.doc_id)
            if room is None:
                return
            if self._access(ev.doc_id) < Access.WRITE and not self.ctx.config.reader_presence:
                self._error(ErrorCode.FORBIDDEN, "read-only: presence is not allowed on this relay", ev.doc_id)
                return
            try:
                room.apply_awareness(ev.payload, self, principal=self.peer.claims.subject)
            except AwarenessNotOwnedError as exc:
                self._error(ErrorCode.NOT_OWNER, f"awareness rejected: {exc}", ev.doc_id)
            except InvalidAwarenessError as exc:
                self._error(ErrorCode.BAD_FRAME, f"awareness rejected: {exc}", ev.doc_id)
        # Ping is answered by the Connection; Pong, Ack and client Errors need nothing

    def _joined(self, task: asyncio.Task[None]) -> None:
        for doc_id, t in list(self._join_tasks.items()):
            if t is task:
                del self._join_tasks[doc_id]

    async def _join_then_replay(self, ev: Subscribe) -> None:
        """Subscribe (awaiting the room's load), then dispatch the frames that arrived for that
        document meanwhile, in order. Their handlers do not await, so nothing overtakes them."""
        doc_id = ev.doc_id
        try:
            await self._subscribe(ev)
            held = self._joining.pop(doc_id, [])
            self._held_bytes -= sum(len(frame) for _, frame in held)
            for queued, frame in held:
                if not self.conn.is_open:
                    break  # a fatal error ended the session: the rest would only be refused
                await self._dispatch(queued, frame)
        except Exception:
            log.exception("internal error while joining", extra={"fields": {"peer": self.peer.id, "doc": doc_id}})
            if self.conn.is_open:
                self._error(ErrorCode.INTERNAL, "internal error", doc_id)
        finally:
            held = self._joining.pop(doc_id, [])
            if held:
                self._held_bytes -= sum(len(frame) for _, frame in held)
            self._drain()

    def _hello(self, ev: Hello) -> None:
        try:
            self.claims = authenticate(self.ctx.config.secret, ev.token, now=self.ctx.clock.now())
        except AuthError as exc:
            self._fatal(ErrorCode.UNAUTHORIZED, str(exc))
            return
        self.peer.claims = self.claims
        self.client_limit = client_limit(ev.client)
        clock = self.ctx.clock
        if self.claims.expires is not None:
            self._expiry = clock.call_later(max(0.0, self.claims.expires - clock.now()), self._token_expired)
        cfg = self.ctx.config
        self.conn.accept(
            f"s{self.peer.id}",
            {
                "max_subscriptions": cfg.max_subscriptions,
                "rate": cfg.rate,
                "burst": cfg.burst,
                "max_queue": cfg.max_queue,
            },
        )
        self._drain()

    def _access(self, doc_id: str) -> Access:
        return self.claims.access(doc_id) if self.claims is not None else Access.NONE

    def _room(self, doc_id: str) -> Room | None:
        room = self.rooms.get(doc_id)
        if room is None:
            self._error(ErrorCode.NOT_SUBSCRIBED, "subscribe first", doc_id)
        return room

    async def _subscribe(self, ev: Subscribe) -> None:
        doc_id = ev.doc_id
        self._refused.pop(doc_id, None)  # a new sync exchange: the client resends what we lack
        if self._access(doc_id) is Access.NONE:
            self._error(ErrorCode.FORBIDDEN, "the token grants no access to this document", doc_id)
            return
        room = self.rooms.get(doc_id)
        if room is None:
            if len(self.rooms) >= self.ctx.config.max_subscriptions:
                self._error(ErrorCode.LIMIT_EXCEEDED, "too many subscriptions on this connection", doc_id)
                return
            try:
                room = await self.ctx.rooms.join(doc_id, self)
            except RoomUnavailableError as exc:
                self._error(ErrorCode.ROOM_UNAVAILABLE, str(exc), doc_id)
                return
            except LimitExceededError as exc:
                self._error(ErrorCode.LIMIT_EXCEEDED, str(exc), doc_id)
                return
            if self.peer.closing:
                self.ctx.rooms.leave(room, self)
                return
            self.rooms[doc_id] = room
        try:
            missing = room.sync_step2(ev.state_vector)
        except FrameError as exc:
            self._error(ErrorCode.BAD_UPDATE, str(exc), doc_id)
            missing = room.sync_step2(b"\x00")
        self._send_state(doc_id, missing)
        self._send(SyncStep1(doc_id, room.state_vector()))
        snapshot = room.awareness_snapshot()
        if snapshot is not None:
            self._send(Awareness(doc_id, snapshot))

    def _refuse_write(self, code: str, message: str, doc_id: str, seq: int) -> None:
        """Refuse a write: a non-fatal Error naming it, and every later write on ``doc_id`` is
        refused until the client subscribes again (so no cumulative Ack can cover this one)."""
        self._refused.setdefault(doc_id, seq)
        self.ctx.metrics.errors.labels(code).inc()
        self._send(Error(code, message[:500], doc_id, False, seq))

    def _write(self, ev: Update | SyncStep2, frame: bytes) -> None:
        doc_id, seq = ev.doc_id, ev.seq
        room = self.rooms.get(doc_id)
        if room is None:
            self._refuse_write(ErrorCode.NOT_SUBSCRIBED, "subscribe first", doc_id, seq)
            return
        if self._access(doc_id) < Access.WRITE:
            self._refuse_write(ErrorCode.FORBIDDEN, "read-only: this connection may not change the document",
                               doc_id, seq)
            return
        assert self.claims is not None
        if self.claims.expired(self.ctx.clock.now()):
            self._fatal(ErrorCode.UNAUTHORIZED, "token expired", CLOSE_TOKEN_EXPIRED)
            return
        first = self._refused.get(doc_id)
        if first is not None:
            what = f"seq {first}" if first else "a write"
            self._refuse_write(ErrorCode.RESYNC_REQUIRED,
                               f"{what} on this document was refused earlier; Subscribe again to resync", doc_id, seq)
            return
        on_durable = None
        if seq > 0:

            def on_durable() -> None:
                if self.conn.is_open:
                    self._send(Ack(doc_id, seq))

        frames: FrameCache = {FRAME_NATIVE_UPDATE: frame} if isinstance(ev, Update) else {}
        try:
            room.apply_update(ev.update, self, frames=frames, on_durable=on_durable)
        except FrameError as exc:
            self._refuse_write(ErrorCode.BAD_UPDATE, str(exc), doc_id, seq)
        except RoomUnavailableError as exc:
            self._refuse_write(ErrorCode.ROOM_UNAVAILABLE, str(exc), doc_id, seq)
