"""MemoryRelay: a small in-process relay speaking the native protocol over :func:`memory_pair`.

A public test double, built only from the sans-I/O protocol core: documents in memory, tokens
checked against a table, acknowledgements immediate (or held until :meth:`release_acks`),
updates forwarded to the other subscribers byte for byte, awareness through an
:class:`~crdtsync.protocol.awareness.AwarenessRegistry`. It is *not* the production relay
(``crdtsync relay``): no persistence, no limits, no y-websocket endpoint.

Fault switches for provider tests: ``refuse`` (connects fail), ``stalled`` (frames are read and
ignored: a dead peer that keeps the socket open), ``unavailable`` (document ids whose Subscribe
gets ``room_unavailable``), :meth:`drop_all` (close every connection), :meth:`inject` (send raw
bytes to every connection).

::

    relay = MemoryRelay()
    provider = SyncProvider(replica, relay.connect, clock=clock)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pycrdt import Doc, Map

from ..clock import Clock, SystemClock
from ..errors import ProtocolError, TransportError
from ..protocol.awareness import AwarenessRegistry, InvalidAwarenessError
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
from ..protocol.state import Role
from ..transport.base import Transport
from ..transport.memory import MemoryTransport, memory_pair

__all__ = ["MemoryRelay", "RelaySession"]

M = TypeVar("M")

READ = "read"
WRITE = "write"


@dataclass(eq=False)
class RelaySession:
    """One accepted connection."""

    id: str
    transport: MemoryTransport
    conn: Connection
    access: str = WRITE
    token: str | None = None
    docs: set[str] = field(default_factory=set)


class MemoryRelay:
    """``tokens``: token -> "read" or "write"; None accepts anyone (with write access)."""

    def __init__(
        self,
        *,
        tokens: Mapping[str | None, str] | None = None,
        clock: Clock | None = None,
        hold_acks: bool = False,
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
        self._held: list[tuple[RelaySession, Ack]] = []
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
        session = RelaySession(sid, server, Connection(Role.SERVER))
        self.sessions[sid] = session
        task = asyncio.ensure_future(self._serve(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return client

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
            await s.transport.close(1012, "relay restart")

    async def release_acks(self) -> None:
        held, self._held = self._held, []
        for session, ack in held:
            if not session.transport.closed and session.conn.is_open:
                session.conn.send(ack)
                await self._flush(session)

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
    async def _serve(self, s: RelaySession) -> None:
        try:
            while True:
                frame = await s.transport.recv()
                if self.stalled:
                    continue
                try:
                    s.conn.receive_bytes(frame)
                except ProtocolError:
                    await self._flush(s)
                    await s.transport.close(1002, "protocol error")
                    return
                for msg in s.conn.events_received():
                    self.received.append((s.id, msg))
                    await self._handle(s, msg)
                await self._flush(s)
        except TransportError:
            pass
        finally:
            self.sessions.pop(s.id, None)
            for doc_id in list(s.docs):
                await self._leave(s, doc_id)

    async def _flush(self, s: RelaySession) -> None:
        for frame in s.conn.bytes_to_send():
            with contextlib.suppress(TransportError):
                await s.transport.send(frame)

    async def _handle(self, s: RelaySession, msg: NativeMessage) -> None:
        conn = s.conn
        if isinstance(msg, Hello):
            access = WRITE if self.tokens is None else self.tokens.get(msg.token)
            if access is None:
                conn.reject(ErrorCode.UNAUTHORIZED, "unknown token")
                await self._flush(s)
                await s.transport.close(1008, "unauthorized")
                return
            s.access, s.token = access, msg.token
            conn.accept(s.id)
        elif isinstance(msg, Subscribe):
            if msg.doc_id in self.unavailable:
                conn.send(Error(ErrorCode.ROOM_UNAVAILABLE, "load failed", msg.doc_id))
                return
            s.docs.add(msg.doc_id)
            doc = self.doc(msg.doc_id)
            conn.send(SyncStep2(msg.doc_id, doc.get_update(msg.state_vector)))
            conn.send(SyncStep1(msg.doc_id, doc.get_state()))
            states = self._registry(msg.doc_id).encode_all()
            if states is not None:
                conn.send(Awareness(msg.doc_id, states))
        elif isinstance(msg, Unsubscribe):
            await self._leave(s, msg.doc_id)
        elif isinstance(msg, SyncStep1):
            conn.send(SyncStep2(msg.doc_id, self.doc(msg.doc_id).get_update(msg.state_vector)))
        elif isinstance(msg, (SyncStep2, Update)):
            await self._write(s, msg)
        elif isinstance(msg, Awareness):
            try:
                change = self._registry(msg.doc_id).apply(msg.payload, s.id)
            except InvalidAwarenessError as exc:
                conn.send(Error(ErrorCode.BAD_FRAME, str(exc), msg.doc_id))
                return
            if change.applied:
                await self._broadcast(s, msg.doc_id, encode(Awareness(msg.doc_id, change.payload)))

    async def _write(self, s: RelaySession, msg: SyncStep2 | Update) -> None:
        if msg.doc_id not in s.docs:
            s.conn.send(Error(ErrorCode.NOT_SUBSCRIBED, "subscribe first", msg.doc_id))
            return
        if s.access != WRITE:
            s.conn.send(Error(ErrorCode.FORBIDDEN, "read-only", msg.doc_id))
            return
        if msg.update != b"\x00\x00":
            self.doc(msg.doc_id).apply_update(msg.update)
            frame = encode(msg) if isinstance(msg, Update) else encode(Update(msg.doc_id, msg.update))
            await self._broadcast(s, msg.doc_id, frame)  # Update frames go on byte for byte
        if msg.seq:
            ack = Ack(msg.doc_id, msg.seq)
            if self.hold_acks:
                self._held.append((s, ack))
            else:
                s.conn.send(ack)

    async def _broadcast(self, sender: RelaySession, doc_id: str, frame: bytes) -> None:
        for other in list(self.sessions.values()):
            if other is not sender and doc_id in other.docs and other.conn.is_open:
                other.conn.send_frame(frame)
                await self._flush(other)

    async def _leave(self, s: RelaySession, doc_id: str) -> None:
        s.docs.discard(doc_id)
        removal = self._registry(doc_id).remove_owner(s.id)
        if removal is not None:
            await self._broadcast(s, doc_id, encode(Awareness(doc_id, removal)))

    def _registry(self, doc_id: str) -> AwarenessRegistry:
        reg = self.awareness.get(doc_id)
        if reg is None:
            reg = self.awareness[doc_id] = AwarenessRegistry(clock=self.clock.now)
        return reg
