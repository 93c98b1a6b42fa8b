"""MemoryRelay: an in-process relay speaking the native protocol over :func:`memory_pair`.

A public test double. Every protocol decision is made by the same
:class:`~crdtsync.protocol.server_session.ServerSession` the production relay runs
(subscriptions, acks, refusals and the resync rule, cutting to the client's limit, presence
ownership); what differs is around it: documents live in memory in simple rooms (no store, so
an update is "durable" the moment it is applied and acknowledged at once, or held until
:meth:`release_acks`), tokens are looked up in a table, and there is no y-websocket endpoint and
no rate limit. For the production relay in tests use :class:`~crdtsync.relay.Relay` on
loopback, or :mod:`crdtsync.testing.relay_topology`.

Fault switches for provider tests: ``refuse`` (connects fail), ``stalled`` (frames are read and
ignored: a dead peer that keeps the socket open), ``unavailable`` (document ids whose Subscribe
gets ``room_unavailable``), :meth:`drop_all` (close every connection), :meth:`inject` (send raw
bytes to every connection), ``docs.clear()`` (the relay forgets every document).

::

    relay = MemoryRelay()
    provider = SyncProvider(replica, relay.connect, clock=clock)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pycrdt import Doc, Map

from ..clock import Clock, SystemClock
from ..errors import AuthError, FrameError, TransportError
from ..protocol.awareness import AwarenessRegistry
from ..protocol.close_codes import CloseCode
from ..protocol.native import Ack, ErrorCode, NativeMessage, decode
from ..protocol.server_session import (
    CloseConnection,
    FrameCache,
    JoinRoom,
    LeaveRoom,
    ServerLimits,
    ServerSession,
)
from ..protocol.token import Access, Claims, Grant
from ..pycrdt_internals import apply_untrusted, update_since
from ..transport.base import Transport
from ..transport.memory import MemoryTransport, memory_pair

__all__ = ["MemoryRelay", "RelaySession"]

M = TypeVar("M")

READ = "read"
WRITE = "write"
EMPTY_UPDATE = b"\x00\x00"
_ACCESS = {READ: Access.READ, WRITE: Access.WRITE}


@dataclass(eq=False)
class RelaySession:
    """One accepted connection: its transport, its protocol session, its outgoing frames."""

    id: str
    transport: MemoryTransport
    session: ServerSession = field(init=False)
    outbox: deque[bytes] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def docs(self) -> set[str]:
        return set(self.session.rooms)

    @property
    def token(self) -> str | None:
        claims = self.session.claims
        return None if claims is None else claims.subject


class _MemoryRoom:
    """One document of a MemoryRelay: its members and presence (a RoomView)."""

    def __init__(self, relay: MemoryRelay, doc_id: str):
        self.relay = relay
        self.doc_id = doc_id
        self.members: dict[Hashable, ServerSession] = {}

    @property
    def doc(self) -> Doc[Any]:
        return self.relay.doc(self.doc_id)  # looked up each time: ``docs.clear()`` forgets it

    def sync_step2(self, state_vector: bytes) -> bytes:
        return update_since(self.doc, state_vector)

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def apply_update(self, update: bytes, sender: Any, *, frames: FrameCache | None = None,
                     on_durable: Callable[[], None] | None = None) -> None:
        if update != EMPTY_UPDATE:
            apply_untrusted(self.doc, update)
            cache: FrameCache = frames if frames is not None else {}
            for key, member in list(self.members.items()):
                if key != sender.key:
                    member.deliver_update(self.doc_id, update, cache)
        if on_durable is not None:
            on_durable()  # nothing to persist: durable at once (hold_acks holds the Ack frame)

    def apply_awareness(self, payload: bytes, sender: Any, *, principal: Hashable | None = None) -> object:
        change = self.relay._registry(self.doc_id).apply(payload, sender.key, principal=principal)
        if change.applied:
            self._broadcast_awareness(change.payload, sender.key)
        return change

    def awareness_snapshot(self) -> bytes | None:
        return self.relay._registry(self.doc_id).encode_all()

    def leave(self, member: ServerSession) -> None:
        self.members.pop(member.key, None)
        removal = self.relay._registry(self.doc_id).remove_owner(member.key)
        if removal is not None:
            self._broadcast_awareness(removal, member.key)

    def _broadcast_awareness(self, payload: bytes, skip: Hashable) -> None:
        cache: FrameCache = {}
        for key, member in list(self.members.items()):
            if key != skip:
                member.deliver_awareness(self.doc_id, payload, cache)


class MemoryRelay:
    """``tokens``: token -> "read" or "write"; None accepts anyone (with write access)."""

    def __init__(
        self,
        *,
        tokens: Mapping[str | None, str] | None = None,
        clock: Clock | None = None,
        hold_acks: bool = False,
        max_message_size: int = 16 << 20,
    ):
        self.tokens = tokens
        self.clock = clock or SystemClock()
        self.hold_acks = hold_acks
        self.refuse = False
        self.stalled = False
        self.unavailable: set[str] = set()
        self.docs: dict[str, Doc[Any]] = {}
        self.awareness: dict[str, AwarenessRegistry] = {}
        self.sessions: dict[str, RelaySession] = {}
        self.connects = 0
        self.received: list[tuple[str, NativeMessage]] = []  # (session id, message), every session
        self.limits = ServerLimits(max_message_size=max_message_size, max_subscriptions=10_000, max_held=4096,
                                   max_held_bytes=64 << 20)
        self._rooms: dict[str, _MemoryRoom] = {}
        self._held: list[tuple[RelaySession, bytes]] = []
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the client side ---------------------------------------------------------------------
    async def connect(self) -> Transport:
        """A new connection's client end (pass ``relay.connect`` to a SyncProvider)."""
        self.connects += 1
        if self.refuse:
            raise TransportError("connection refused (MemoryRelay.refuse)")
        client, server = memory_pair()
        sid = f"s{next(self._ids)}"
        s = RelaySession(sid, server)
        s.session = ServerSession(limits=self.limits, authenticate=self._authenticate, now=self.clock.now,
                                  emit=lambda frame: self._emit(s, frame), member_key=("memory", sid),
                                  session_id=sid)
        self.sessions[sid] = s
        for coro in (self._serve(s), self._writer(s)):
            task = asyncio.ensure_future(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return client

    def _authenticate(self, token: str | None) -> Claims:
        access = WRITE if self.tokens is None else self.tokens.get(token)
        if access is None:
            raise AuthError("unknown token")
        return Claims(token or "anonymous", (Grant("*", _ACCESS[access]),))

    # -- inspection and faults ---------------------------------------------------------------
    def doc(self, doc_id: str) -> Doc[Any]:
        d = self.docs.get(doc_id)
        if d is None:
            d = self.docs[doc_id] = Doc()
        return d

    def content(self, doc_id: str) -> dict[str, Any]:
        """The relay's copy of ``doc_id``'s root map, as plain Python."""
        return dict(self.doc(doc_id).get("root", type=Map[Any]).to_py() or {})

    def messages(self, kind: type[M]) -> list[tuple[str, M]]:
        """The messages of type ``kind`` received so far (from every session, closed ones too),
        as (session id, message). ``received`` holds all of them."""
        return [(sid, m) for sid, m in self.received if isinstance(m, kind)]

    async def drop_all(self) -> None:
        """Close every connection (the clients see the connection drop)."""
        for s in list(self.sessions.values()):
            await s.transport.close(CloseCode.SERVICE_RESTART, "relay restart")

    async def release_acks(self) -> None:
        held, self._held = self._held, []
        for s, frame in held:
            if not s.transport.closed and s.session.conn.is_open:
                self._send(s, frame)

    async def inject(self, frame: bytes) -> None:
        """Send raw bytes to every open connection (fuzzing the client)."""
        for s in list(self.sessions.values()):
            with contextlib.suppress(TransportError):
                await s.transport.send(frame)

    async def close(self) -> None:
        await self.drop_all()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- serving -----------------------------------------------------------------------------
    def _emit(self, s: RelaySession, frame: bytes) -> None:
        if self.hold_acks and isinstance(_decoded(frame), Ack):
            self._held.append((s, frame))
            return
        self._send(s, frame)

    def _send(self, s: RelaySession, frame: bytes) -> None:
        s.outbox.append(frame)
        s.wake.set()

    async def _writer(self, s: RelaySession) -> None:
        with contextlib.suppress(TransportError):
            while True:
                await s.wake.wait()
                s.wake.clear()
                while s.outbox:
                    await s.transport.send(s.outbox.popleft())

    async def _serve(self, s: RelaySession) -> None:
        try:
            while True:
                frame = await s.transport.recv()
                if self.stalled:
                    continue
                msg = _decoded(frame)
                if msg is not None:
                    self.received.append((s.id, msg))
                s.session.receive_bytes(frame)
                if await self._react(s):
                    return
        except TransportError:
            pass
        finally:
            self.sessions.pop(s.id, None)
            s.session.closed()
            await self._react(s)

    async def _react(self, s: RelaySession) -> bool:
        """Do what the session asked for (joins are immediate: rooms never load); True when it
        asked to close the connection."""
        while events := s.session.events():
            for ev in events:
                if isinstance(ev, JoinRoom):
                    if ev.doc_id in self.unavailable:
                        s.session.join_failed(ev.doc_id, ErrorCode.ROOM_UNAVAILABLE, "load failed")
                        continue
                    room = self._rooms.get(ev.doc_id)
                    if room is None:
                        room = self._rooms[ev.doc_id] = _MemoryRoom(self, ev.doc_id)
                    room.members[s.session.key] = s.session
                    s.session.joined(ev.doc_id, room)
                elif isinstance(ev, LeaveRoom):
                    assert isinstance(ev.room, _MemoryRoom)
                    ev.room.leave(s.session)
                elif isinstance(ev, CloseConnection):
                    while s.outbox:  # the fatal Error first
                        with contextlib.suppress(TransportError):
                            await s.transport.send(s.outbox.popleft())
                    await s.transport.close(ev.code, ev.reason)
                    return True
        return False

    def _registry(self, doc_id: str) -> AwarenessRegistry:
        reg = self.awareness.get(doc_id)
        if reg is None:
            reg = self.awareness[doc_id] = AwarenessRegistry(clock=self.clock.now)
        return reg


def _decoded(frame: bytes) -> NativeMessage | None:
    try:
        return decode(frame)
    except FrameError:
        return None
