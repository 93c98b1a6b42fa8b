"""The client role of document sync, sans-I/O: messages in, messages and events out.

One :class:`ClientSession` belongs to one sync client (:class:`~crdtsync.sync.SyncProvider` is
its async shell) and outlives its connections. It owns every document's sync state
(:class:`DocSession`), changed only by the session's methods below, one per input; the shell
never touches it. It reads and diffs the local documents through a :class:`DocumentSource`
(two synchronous calls, no I/O) and sends through the current
:class:`~crdtsync.protocol.connection.Connection`; what the shell must do is returned as
events (:meth:`ClientSession.events`).

Rules (``docs/protocol.md``):

1. **Subscribe** carries our state vector; while we hold content the relay may lack, the
   document is *dirty* until our answer to the relay's SyncStep1 is acknowledged.
2. The relay's **SyncStep2** (what we miss) is applied (event :class:`ApplyUpdate`); its
   **SyncStep1** is answered with a SyncStep2 of what *it* misses, numbered for an Ack (cut into
   an answer plus Update parts when larger than the relay's message limit).
3. A **local update** of an active, writable document goes out at once as Update(s) with seqs;
   otherwise the document is marked dirty (it goes with the next sync answer).
4. **Ack(doc, n)** is cumulative: every write on ``doc`` with seq <= n is durable.
5. **Errors** about a document: ``forbidden`` makes it read-only on this connection (its
   unacknowledged writes stay dirty); a refusal of one of this connection's outstanding writes
   (an Error with that seq) and ``not_subscribed``/``room_unavailable`` without a seq reset the
   document and ask for a resubscribe (event :class:`ResubscribeLater`); a refusal of an older
   seq, from before the last Subscribe, is ignored. A fatal Error raises from :meth:`receive`.
6. When the connection ends (:meth:`detach`) every unacknowledged write makes its document
   dirty: the next connection's sync exchange resends it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from ..errors import MessageTooLargeError, ProtocolError, RemoteError
from .connection import Connection
from .native import (
    Ack,
    Awareness,
    Error,
    ErrorCode,
    NativeMessage,
    Subscribe,
    SyncStep1,
    SyncStep2,
    Unsubscribe,
    Update,
)
from .split import announced_limit, split_for_frames

__all__ = [
    "Acked",
    "ApplyUpdate",
    "ClientSession",
    "DocError",
    "DocSession",
    "DocumentSource",
    "PresenceReceived",
    "ResubscribeLater",
    "SessionEvent",
    "Subscribed",
    "Synced",
]

EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"


class DocumentSource(Protocol):
    """The local documents, as the session needs them (synchronous, no I/O)."""

    def state_vector(self, doc_id: str) -> bytes: ...

    def get_update(self, doc_id: str, state_vector: bytes | None = None) -> bytes: ...


# -- events for the shell ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyUpdate:
    """Apply ``update`` (from the relay) to the local document."""

    doc_id: str
    update: bytes


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A Subscribe went out for ``doc_id`` on this connection (send our presence now)."""

    doc_id: str


@dataclass(frozen=True, slots=True)
class Synced:
    """``doc_id`` may have become synced (both directions exchanged): check ``is_synced``."""

    doc_id: str


@dataclass(frozen=True, slots=True)
class Acked:
    """The relay acknowledged a write on ``doc_id``: the connection works."""

    doc_id: str


@dataclass(frozen=True, slots=True)
class DocError:
    """A non-fatal error about ``doc_id`` (None: about none we know) from the relay, or an
    update too large to send."""

    doc_id: str | None
    error: RemoteError | MessageTooLargeError


@dataclass(frozen=True, slots=True)
class ResubscribeLater:
    """Subscribe ``doc_id`` again after a delay (:meth:`ClientSession.subscribe`)."""

    doc_id: str


@dataclass(frozen=True, slots=True)
class PresenceReceived:
    doc_id: str
    payload: bytes


SessionEvent: TypeAlias = ApplyUpdate | Subscribed | Synced | Acked | DocError | ResubscribeLater | PresenceReceived


# -- per-document state ----------------------------------------------------------------------


@dataclass(eq=False)
class DocSession:
    """One document's sync state. Only :class:`ClientSession` changes it."""

    doc_id: str
    # -- the current connection (cleared by ``reset``) --
    active: bool = False  # Subscribe sent on the current connection
    got_step2: bool = False  # the relay's SyncStep2 (what we missed) was received
    answered: bool = False  # we answered the relay's SyncStep1
    answer_seq: int = 0  # seq of that answer until acknowledged (0: nothing outstanding)
    pending: deque[int] = field(default_factory=deque)  # seqs of Updates sent, not yet acked
    read_only: bool = False  # the relay refused a write on this document
    error: RemoteError | MessageTooLargeError | None = None  # the latest non-fatal error about it
    # -- across connections --
    dirty: bool = False  # local changes the relay may not have (made offline or unacked at a drop)

    @property
    def synced(self) -> bool:
        """Both directions exchanged on the current connection (and our side acknowledged)."""
        return self.active and self.got_step2 and self.answered and (self.answer_seq == 0 or self.read_only)

    @property
    def acked(self) -> bool:
        """No local change is waiting for the relay's acknowledgement."""
        return not self.dirty and not self.pending and self.answer_seq == 0

    @property
    def outstanding(self) -> bool:
        return bool(self.pending) or self.answer_seq != 0

    def ack(self, seq: int) -> None:
        while self.pending and self.pending[0] <= seq:
            self.pending.popleft()
        if self.answer_seq and self.answer_seq <= seq:
            self.answer_seq = 0
            self.dirty = False  # the answer carried everything the relay lacked

    def reset(self) -> None:
        """The connection (or this document's part of it) is over: whatever was not
        acknowledged must go again next time."""
        if self.outstanding:
            self.dirty = True
        self.active = self.got_step2 = self.answered = False
        self.answer_seq = 0
        self.pending.clear()
        self.read_only = False
        self.error = None


# -- the session -------------------------------------------------------------------------------


class ClientSession:
    """Every document's sync state for one client, across its connections."""

    def __init__(self, source: DocumentSource) -> None:
        self.source = source
        self.conn: Connection | None = None
        self.docs: dict[str, DocSession] = {}
        self._events: list[SessionEvent] = []

    # -- reading ----------------------------------------------------------------------------
    def doc(self, doc_id: str) -> DocSession:
        d = self.docs.get(doc_id)
        if d is None:
            d = self.docs[doc_id] = DocSession(doc_id)
        return d

    @property
    def is_open(self) -> bool:
        return self.conn is not None and self.conn.is_open

    def events(self) -> list[SessionEvent]:
        """What the shell must do, in order, since the last call."""
        events, self._events = self._events, []
        return events

    # -- the connection ---------------------------------------------------------------------
    def attach(self, conn: Connection) -> None:
        """A connection completed its handshake: documents are subscribed from now on."""
        self.conn = conn

    def detach(self) -> None:
        """The connection is gone: every document's unacknowledged writes become dirty."""
        self.conn = None
        for d in self.docs.values():
            d.reset()

    # -- what the application wants -----------------------------------------------------------
    def subscribe(self, doc_id: str) -> None:
        """Subscribe ``doc_id`` on the current connection (no-op when not open or already)."""
        d = self.doc(doc_id)
        conn = self.conn
        if conn is None or not conn.is_open or d.active:
            return
        sv = self.source.state_vector(doc_id)
        conn.send(Subscribe(doc_id, sv))
        d.active = True
        if sv != EMPTY_STATE_VECTOR:
            d.dirty = True  # until our answer to the relay's SyncStep1 is acknowledged
        self._events.append(Subscribed(doc_id))

    def unsubscribe(self, doc_id: str) -> None:
        """Stop syncing ``doc_id`` on this connection."""
        d = self.docs.get(doc_id)
        if d is None:
            return
        if d.active and self.is_open:
            assert self.conn is not None
            self.conn.send(Unsubscribe(doc_id))
        d.reset()

    def send_presence(self, doc_id: str, payload: bytes) -> bool:
        """Send an awareness payload for an active document; False when it cannot go now."""
        d = self.docs.get(doc_id)
        if d is None or not d.active or not self.is_open:
            return False
        assert self.conn is not None
        self.conn.send(Awareness(doc_id, payload))
        return True

    def local_update(self, doc_id: str, update: bytes) -> None:
        """A local transaction on a wanted document: send it now, or keep it for the next
        sync exchange (dirty)."""
        d = self.doc(doc_id)
        conn = self.conn
        if not (d.active and not d.read_only and conn is not None and conn.is_open):
            d.dirty = True
            return
        parts = self._fit(d, update)
        if parts is None:
            d.dirty = True  # too large even in parts: kept for a relay with a larger limit
            return
        for part in parts:
            seq = conn.next_seq()
            conn.send(Update(doc_id, part, seq))
            d.pending.append(seq)

    def _fit(self, d: DocSession, update: bytes) -> list[bytes] | None:
        """``update`` as updates that each fit the relay's message limit (from its Welcome),
        or None (and a DocError) when it cannot be cut small enough."""
        assert self.conn is not None
        welcome = self.conn.peer_welcome
        limit = announced_limit(welcome.info if welcome is not None else None)
        if limit is None:
            return [update]
        try:
            return split_for_frames(update, d.doc_id, limit)
        except MessageTooLargeError as exc:
            d.error = exc
            self._events.append(DocError(d.doc_id, exc))
            return None

    # -- what the relay sent ------------------------------------------------------------------
    def receive(self, msg: NativeMessage) -> None:
        """Handle one received message. Raises the RemoteError of a fatal Error."""
        if isinstance(msg, Error):
            self._on_error(msg)
            return
        doc_id = getattr(msg, "doc_id", None)
        d = self.docs.get(doc_id) if doc_id is not None else None
        if d is None or not d.active:
            return  # a late message for a document we left, or a Ping/Pong
        if isinstance(msg, Update):
            self._apply(d, msg.update)
        elif isinstance(msg, SyncStep2):
            self._apply(d, msg.update)
            d.got_step2 = True
            self._events.append(Synced(d.doc_id))
        elif isinstance(msg, SyncStep1):
            self._answer(d, msg.state_vector)
        elif isinstance(msg, Ack):
            d.ack(msg.seq)
            self._events.append(Acked(d.doc_id))
        elif isinstance(msg, Awareness):
            self._events.append(PresenceReceived(d.doc_id, msg.payload))

    def _apply(self, d: DocSession, update: bytes) -> None:
        if update != EMPTY_UPDATE:
            self._events.append(ApplyUpdate(d.doc_id, update))

    def _answer(self, d: DocSession, state_vector: bytes) -> None:
        """Answer the relay's SyncStep1 with what it misses. Raises whatever the source raises
        for a state vector that does not decode."""
        conn = self.conn
        assert conn is not None
        try:
            update = self.source.get_update(d.doc_id, state_vector)
        except Exception as exc:  # pycrdt refused the state vector
            raise ProtocolError(f"a state vector for {d.doc_id!r} does not decode: {exc}") from exc
        parts = [update] if d.read_only or update == EMPTY_UPDATE else self._fit(d, update)
        if parts is None:  # cannot be sent to this relay: answer nothing, keep it for later
            conn.send(SyncStep2(d.doc_id, EMPTY_UPDATE, 0))
            d.answered, d.answer_seq, d.dirty = True, 0, True
            self._events.append(Synced(d.doc_id))
            return
        seq = 0 if d.read_only or update == EMPTY_UPDATE else conn.next_seq()
        conn.send(SyncStep2(d.doc_id, parts[0], seq))
        for part in parts[1:]:  # the rest of an answer too large for one message
            part_seq = conn.next_seq()
            conn.send(Update(d.doc_id, part, part_seq))
            d.pending.append(part_seq)
        d.answered, d.answer_seq = True, seq
        if update == EMPTY_UPDATE and not d.pending:
            d.dirty = False  # the relay lacks nothing we have
        self._events.append(Synced(d.doc_id))

    def _on_error(self, err: Error) -> None:
        exc = err.exception()
        if err.fatal:
            raise exc  # the relay closes the connection; the session ends with this reason
        d = self.docs.get(err.doc_id) if err.doc_id is not None else None
        if d is None:
            self._events.append(DocError(err.doc_id, exc))
            return
        d.error = exc
        self._events.append(DocError(d.doc_id, exc))
        if err.code == ErrorCode.FORBIDDEN:
            d.read_only = True
            if d.outstanding:
                d.dirty = True  # these will never be acked on this connection
            d.pending.clear()
            d.answer_seq = 0
        elif err.seq and (err.seq in d.pending or err.seq == d.answer_seq):
            # One of this connection's writes was refused (so were, or will be, the later
            # ones on this document): subscribe again; the sync exchange resends it all.
            self._resubscribe_later(d)
        elif err.code in (ErrorCode.NOT_SUBSCRIBED, ErrorCode.ROOM_UNAVAILABLE) and not err.seq:
            self._resubscribe_later(d)

    def _resubscribe_later(self, d: DocSession) -> None:
        d.reset()
        self._events.append(ResubscribeLater(d.doc_id))
