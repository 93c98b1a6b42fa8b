"""The server role of document sync, sans-I/O: one native connection as a relay serves it.

A :class:`ServerSession` takes received frames (:meth:`ServerSession.receive_bytes`), makes
every protocol decision, and writes the frames to send through its ``emit`` callback (which
must not block: a relay's per-connection queue). What only the async shell can do comes out as
events (:meth:`ServerSession.events`): join a room (it may have to load), leave one, close the
connection. The shell reports back with :meth:`joined` / :meth:`join_failed`. The session is
also the connection's member in every room it joined: rooms call :meth:`deliver_update` and
:meth:`deliver_awareness` on it.

Rules (``docs/protocol.md`` §4):

1. ``Hello`` with a token -> ``Welcome`` carrying the relay's limits, or a fatal
   ``unauthorized`` (event :class:`CloseConnection`). Nothing but Hello before it.
2. ``Subscribe(doc, sv)``: no grant -> ``forbidden``; more than ``max_subscriptions`` (documents
   still joining count) -> ``limit_exceeded``; else :class:`JoinRoom`. Frames for a document
   whose join is pending are held in order and handled once it is joined; past ``max_held``
   frames for it or ``max_held_bytes`` for the connection, :attr:`paused` asks the shell to stop
   reading until a join ends (nothing is dropped). A failed join -> ``room_unavailable`` /
   ``limit_exceeded``. Once joined: ``SyncStep2`` (what the client misses), ``SyncStep1`` (the
   room's state vector), the room's awareness states. A Subscribe of a document already joined
   redoes that exchange. ``Unsubscribe`` leaves the room.
3. ``SyncStep1`` -> ``SyncStep2`` of what the client misses.
4. A write (``Update``/``SyncStep2``) is refused with an ``Error`` naming its document and seq
   when the document is not subscribed (``not_subscribed``), read-only (``forbidden``), does
   not decode (``bad_update``) or its room is down (``room_unavailable``); after a refusal every
   later write on that document is refused (``resync_required``) until the next ``Subscribe`` of
   it, so a cumulative ``Ack`` never covers a refused write. An accepted write with seq > 0 gets
   ``Ack(doc, seq)`` once the room's store committed it. An expired token: fatal
   ``unauthorized``.
5. ``Awareness`` goes to the room; another connection's client ids -> ``not_owner``; a bad
   payload -> ``bad_frame`` (non-fatal); a reader's, when readers may not publish presence ->
   ``forbidden``.
6. Everything sent to the client fits the limit it announced in its Hello
   (``info["max_message_size"]``): larger room states go as ``Update`` parts then a
   ``SyncStep2`` with the last part; larger forwarded updates as several ``Update`` frames; what
   cannot be cut (one value larger than the limit) is not sent: ``too_large`` for the document.
7. A frame that does not decode or breaks the state machine: a fatal ``Error`` and
   :class:`CloseConnection`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from ..errors import AuthError, FrameError, MessageTooLargeError, ProtocolError, StorageError
from .awareness import AwarenessNotOwnedError, InvalidAwarenessError
from .close_codes import CloseCode
from .connection import Connection
from .native import (
    Ack,
    Awareness,
    Error,
    ErrorCode,
    Hello,
    NativeMessage,
    Scalar,
    Subscribe,
    SyncStep1,
    SyncStep2,
    Unsubscribe,
    Update,
    encode,
)
from .split import announced_limit, split_for_frames
from .state import Role, State
from .token import Access, Claims

__all__ = [
    "Authenticated",
    "CloseConnection",
    "JoinRoom",
    "LeaveRoom",
    "RoomView",
    "ServerEvent",
    "ServerLimits",
    "ServerSession",
]

log = logging.getLogger("crdtsync.relay")

FrameCache = dict[str, bytes]
FRAME_NATIVE_UPDATE = "native.update"
FRAME_NATIVE_AWARENESS = "native.awareness"
_UNCUTTABLE = b"!"  # in a FrameCache count entry: the update cannot be cut to that limit (reason follows)
EMPTY_STATE_VECTOR = b"\x00"



class RoomView(Protocol):
    """What the session needs of a joined document's room."""

    def sync_step2(self, state_vector: bytes) -> bytes:
        """What a peer with ``state_vector`` misses; FrameError for a bad vector."""
        ...

    def state_vector(self) -> bytes: ...

    def apply_update(self, update: bytes, sender: Any, *, frames: FrameCache | None = None,
                     on_durable: Callable[[], None] | None = None) -> None:
        """Apply, forward to the other members, persist; FrameError when it does not decode,
        StorageError when the room is down. ``on_durable`` runs once the store committed it."""
        ...

    def apply_awareness(self, payload: bytes, sender: Any, *, principal: Hashable | None = None) -> object:
        """InvalidAwarenessError (AwarenessNotOwnedError) when refused; nothing applied."""
        ...

    def awareness_snapshot(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_message_size: int
    max_subscriptions: int
    #: frames held per document whose join is pending, and bytes held per connection
    max_held: int
    max_held_bytes: int
    reader_presence: bool = True
    #: extra limits told to the client in its Welcome (rate, burst, ...)
    welcome_info: dict[str, Scalar] = field(default_factory=dict)


# -- events for the shell ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRoom:
    """Join ``doc_id``'s room (it may load first), then call ``joined`` or ``join_failed``."""

    doc_id: str


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    doc_id: str
    room: RoomView


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The Hello was accepted: ``claims`` (arm a timer for their expiry)."""

    claims: Claims


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close the connection (after the frames already emitted)."""

    code: int
    reason: str


ServerEvent: TypeAlias = JoinRoom | LeaveRoom | Authenticated | CloseConnection


class ServerSession:
    """One native connection, server side. ``member_key`` names it in rooms (and owns its
    awareness states); ``authenticate(token)`` returns Claims or raises AuthError; ``now()``
    is the clock; ``emit(frame)`` sends (without blocking); ``on_error(code)`` is told the
    code of every Error sent (metrics)."""

    def __init__(
        self,
        *,
        limits: ServerLimits,
        authenticate: Callable[[str | None], Claims],
        now: Callable[[], float],
        emit: Callable[[bytes], None],
        member_key: Hashable,
        session_id: str,
        on_error: Callable[[str], None] = lambda code: None,
    ):
        self.limits = limits
        self._authenticate = authenticate
        self._now = now
        self._emit = emit
        self.key = member_key
        self.session_id = session_id
        self.conn = Connection(Role.SERVER, max_message_size=limits.max_message_size)
        self.claims: Claims | None = None
        self.client_limit: int | None = None  # the client's max_message_size, from its Hello
        self.rooms: dict[str, RoomView] = {}
        self._joining: dict[str, list[tuple[NativeMessage, bytes]]] = {}  # frames held while a room loads
        self._held_bytes = 0
        self._refused: dict[str, int] = {}  # document -> seq of its first refused write, until resubscribed
        self._pending_vectors: dict[str, bytes] = {}  # the client's state vector for each pending join
        self._events: list[ServerEvent] = []
        self._on_error = on_error

    # -- reading ------------------------------------------------------------------------------
    def events(self) -> list[ServerEvent]:
        events, self._events = self._events, []
        return events

    @property
    def paused(self) -> bool:
        """Too much is held for documents still joining: stop reading until a join ends."""
        return self._held_bytes > self.limits.max_held_bytes or any(
            len(held) > self.limits.max_held for held in self._joining.values()
        )

    @property
    def joining(self) -> frozenset[str]:
        return frozenset(self._joining)

    # -- output ---------------------------------------------------------------------------------
    def _flush(self) -> None:
        for frame in self.conn.bytes_to_send():
            self._emit(frame)

    def _send(self, msg: NativeMessage) -> None:
        self.conn.send(msg)
        self._flush()

    def _error(self, code: str, message: str, doc_id: str | None = None, seq: int = 0) -> None:
        self._on_error(str(code))
        self._send(Error(code, message[:500], doc_id, False, seq))

    def _fatal(self, code: str, message: str, close_code: int = CloseCode.POLICY) -> None:
        self._on_error(str(code))
        if self.conn.state not in (State.CLOSING, State.CLOSED):
            self.conn.reject(code, message[:500])
            self._flush()
        self._events.append(CloseConnection(close_code, message))

    # -- input ----------------------------------------------------------------------------------
    def receive_bytes(self, frame: bytes) -> None:
        """Handle one received frame. Never raises."""
        try:
            self.conn.receive_bytes(frame)
        except ProtocolError as exc:
            self._on_error(ErrorCode.BAD_FRAME)
            self._flush()  # the Connection queued a fatal Error
            self._events.append(CloseConnection(CloseCode.POLICY, f"protocol error: {exc}"))
            return
        for event in self.conn.events_received():
            try:
                self._dispatch(event, frame)
            except Exception:
                log.exception("internal error on a native frame", extra={"fields": {"session": self.session_id}})
                if self.conn.is_open:
                    self._error(ErrorCode.INTERNAL, "internal error")
        self._flush()  # automatic answers (Pong)

    def token_expired(self) -> None:
        """The token's expiry came: end the session (readers too)."""
        if self.conn.is_open:
            self._fatal(ErrorCode.UNAUTHORIZED, "token expired", CloseCode.TOKEN_EXPIRED)

    def rate_limited(self, message: str) -> None:
        """Tell the client it is being closed for going too fast (non-fatal: what it already
        sent is still handled)."""
        if self.conn.is_open:
            self._error(ErrorCode.RATE_LIMITED, message)

    def closed(self) -> None:
        """The connection is gone: leave every room."""
        for doc_id, room in self.rooms.items():
            self._events.append(LeaveRoom(doc_id, room))
        self.rooms.clear()
        self._joining.clear()
        self._held_bytes = 0
        self.conn.close()

    # -- joins ------------------------------------------------------------------------------
    def joined(self, doc_id: str, room: RoomView) -> None:
        """The shell joined ``doc_id``'s room: greet, then replay the frames held meanwhile."""
        held = self._joining.pop(doc_id, [])
        self._held_bytes -= sum(len(frame) for _, frame in held)
        if not self.conn.is_open:
            self._events.append(LeaveRoom(doc_id, room))
            return
        self.rooms[doc_id] = room
        self._greet(doc_id, room, self._pending_vectors.pop(doc_id, EMPTY_STATE_VECTOR))
        for msg, frame in held:
            if not self.conn.is_open:
                break  # a fatal error ended the session: the rest would only be refused
            self._dispatch(msg, frame)
        self._flush()

    def join_failed(self, doc_id: str, code: str, message: str) -> None:
        held = self._joining.pop(doc_id, [])
        self._held_bytes -= sum(len(frame) for _, frame in held)
        self._pending_vectors.pop(doc_id, None)
        if self.conn.is_open:
            self._error(code, message, doc_id)
            for msg, frame in held:  # the writes among them are refused, named by seq
                if self.conn.is_open:
                    self._dispatch(msg, frame)

    def _greet(self, doc_id: str, room: RoomView, state_vector: bytes) -> None:
        try:
            missing = room.sync_step2(state_vector)
        except FrameError as exc:
            self._error(ErrorCode.BAD_UPDATE, str(exc), doc_id)
            missing = room.sync_step2(EMPTY_STATE_VECTOR)
        self._send_state(doc_id, missing)
        self._send(SyncStep1(doc_id, room.state_vector()))
        snapshot = room.awareness_snapshot()
        if snapshot is not None:
            self._send(Awareness(doc_id, snapshot))

    # -- dispatch ---------------------------------------------------------------------------
    def _dispatch(self, ev: NativeMessage, frame: bytes) -> None:
        if isinstance(ev, Hello):
            self._hello(ev)
            return
        doc_id = getattr(ev, "doc_id", None)
        pending = self._joining.get(doc_id) if doc_id is not None else None
        if pending is not None and doc_id is not None:
            pending.append((ev, frame))  # in order, for when the room is joined
            self._held_bytes += len(frame)
            return
        if isinstance(ev, Subscribe):
            self._subscribe(ev)
        elif isinstance(ev, Unsubscribe):
            self._refused.pop(ev.doc_id, None)
            room = self.rooms.pop(ev.doc_id, None)
            if room is not None:
                self._events.append(LeaveRoom(ev.doc_id, room))
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
            self._awareness(ev)
        # Ping is answered by the Connection; Pong, Ack and client Errors need nothing

    def _hello(self, ev: Hello) -> None:
        try:
            claims = self._authenticate(ev.token)
        except AuthError as exc:
            self._fatal(ErrorCode.UNAUTHORIZED, str(exc))
            return
        self.claims = claims
        self.client_limit = announced_limit(ev.client)
        self.conn.accept(self.session_id, dict(self.limits.welcome_info))
        self._flush()
        self._events.append(Authenticated(claims))

    def _access(self, doc_id: str) -> Access:
        return self.claims.access(doc_id) if self.claims is not None else Access.NONE

    def _room(self, doc_id: str) -> RoomView | None:
        room = self.rooms.get(doc_id)
        if room is None:
            self._error(ErrorCode.NOT_SUBSCRIBED, "subscribe first", doc_id)
        return room

    def _subscribe(self, ev: Subscribe) -> None:
        doc_id = ev.doc_id
        self._refused.pop(doc_id, None)  # a new sync exchange: the client resends what we lack
        if self._access(doc_id) is Access.NONE:
            self._error(ErrorCode.FORBIDDEN, "the token grants no access to this document", doc_id)
            return
        room = self.rooms.get(doc_id)
        if room is not None:
            self._greet(doc_id, room, ev.state_vector)
            return
        if len(self.rooms) + len(self._joining) >= self.limits.max_subscriptions:
            self._error(ErrorCode.LIMIT_EXCEEDED, "too many subscriptions on this connection", doc_id)
            return
        self._joining[doc_id] = []
        self._pending_vectors[doc_id] = ev.state_vector
        self._events.append(JoinRoom(doc_id))

    def _refuse_write(self, code: str, message: str, doc_id: str, seq: int) -> None:
        """Refuse a write: a non-fatal Error naming it, and every later write on ``doc_id`` is
        refused until the client subscribes again (so no cumulative Ack can cover this one)."""
        self._refused.setdefault(doc_id, seq)
        self._error(code, message, doc_id, seq)

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
        if self.claims.expired(self._now()):
            self._fatal(ErrorCode.UNAUTHORIZED, "token expired", CloseCode.TOKEN_EXPIRED)
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
        except StorageError as exc:
            self._refuse_write(ErrorCode.ROOM_UNAVAILABLE, str(exc), doc_id, seq)

    def _awareness(self, ev: Awareness) -> None:
        room = self._room(ev.doc_id)
        if room is None:
            return
        if self._access(ev.doc_id) < Access.WRITE and not self.limits.reader_presence:
            self._error(ErrorCode.FORBIDDEN, "read-only: presence is not allowed on this relay", ev.doc_id)
            return
        try:
            room.apply_awareness(ev.payload, self, principal=self.claims.subject if self.claims else None)
        except AwarenessNotOwnedError as exc:
            self._error(ErrorCode.NOT_OWNER, f"awareness rejected: {exc}", ev.doc_id)
        except InvalidAwarenessError as exc:
            self._error(ErrorCode.BAD_FRAME, f"awareness rejected: {exc}", ev.doc_id)

    # -- room -> client ---------------------------------------------------------------------
    def deliver_update(self, doc_id: str, update: bytes, frames: FrameCache) -> None:
        """Send another member's update (frames already built for this broadcast are shared
        through ``frames``), cut to this client's limit."""
        frame = frames.get(FRAME_NATIVE_UPDATE)
        if frame is None:
            frame = frames[FRAME_NATIVE_UPDATE] = encode(Update(doc_id, update, 0))
        limit = self.client_limit
        if limit is None or len(frame) <= limit:
            self._emit(frame)
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
            self._emit(frames[f"{key}/{i}"])

    def deliver_awareness(self, doc_id: str, payload: bytes, frames: FrameCache) -> None:
        frame = frames.get(FRAME_NATIVE_AWARENESS)
        if frame is None:
            frame = frames[FRAME_NATIVE_AWARENESS] = encode(Awareness(doc_id, payload))
        self._emit(frame)

    def _cut(self, doc_id: str, update: bytes) -> list[bytes]:
        """``update`` cut into parts whose frames fit the client's limit (``[update]`` when it
        fits or the client announced none). :class:`MessageTooLargeError` when it cannot be."""
        limit = self.client_limit
        if limit is None:
            return [update]
        try:
            return split_for_frames(update, doc_id, limit)
        except FrameError as exc:  # not expected: the room applied these bytes
            raise MessageTooLargeError(f"could not cut the update: {exc}") from exc

    def _refuse(self, doc_id: str, size: int, reason: str) -> None:
        """An update that cannot be cut to the client's limit was not sent: tell it."""
        log.warning("an update does not fit the client's message limit; not sent",
                    extra={"fields": {"session": self.session_id, "doc": doc_id, "limit": self.client_limit,
                                      "size": size, "reason": reason}})
        if self.conn.is_open:
            self._error(ErrorCode.TOO_LARGE,
                        f"an update of {doc_id!r} ({size} bytes) does not fit your {self.client_limit}-byte "
                        f"message limit and cannot be cut ({reason}); it was not sent", doc_id)

    def _send_state(self, doc_id: str, update: bytes) -> None:
        """Answer a state vector: one SyncStep2 when it fits the client's limit, else Update
        parts then a SyncStep2 with the last part; a ``too_large`` error when it cannot be cut."""
        try:
            parts = self._cut(doc_id, update)
        except MessageTooLargeError as exc:
            self._refuse(doc_id, len(update), str(exc))
            return
        for part in parts[:-1]:
            self._send(Update(doc_id, part, 0))
        self._send(SyncStep2(doc_id, parts[-1], 0))
