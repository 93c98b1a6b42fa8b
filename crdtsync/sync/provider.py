"""SyncProvider: keeps a :class:`~crdtsync.replica.Replica` in sync with a relay.

Typical use::

    provider = SyncProvider(replica, "ws://localhost:8787/v1", token_factory=get_token)
    async with provider:                    # starts connecting in the background
        provider.subscribe("todos")         # or release = provider.retain("todos")
        await provider.wait_synced("todos")  # both directions exchanged
        replica.write(("todos", 1), {...})   # sent at once, acked once durable
        await provider.wait_acked()

What it does, on the native protocol (``docs/protocol.md``, ``docs/sync.md``):

- **Connect** with ``connect()`` (any coroutine returning a
  :class:`~crdtsync.transport.base.Transport`) or a ``ws://`` URL; send Hello with the token
  (``token_factory`` is called again on every reconnect, so tokens can be refreshed).
- **Subscribe** selected documents only. Each Subscribe carries our state vector; the relay
  answers SyncStep2 (what we miss) and SyncStep1 (its state vector), and we answer with a
  SyncStep2 of what *it* misses: offline edits flow both ways after every reconnect.
- **Forward** local updates of subscribed documents as they commit (``Replica.on_update``),
  numbered for acknowledgement; updates this provider applied itself (origin
  ``provider.origin``) are never sent back.
- **Apply** remote updates with origin ``provider.origin`` (a REMOTE origin naming this
  provider), so observers can tell them apart.
- **Reconnect** with exponential backoff and jitter on the injected clock; a **heartbeat** Ping
  every ``heartbeat_interval`` drops a connection that stays silent for ``heartbeat_timeout``.
- **Status**: :attr:`status` (connecting, connected, offline, closed; the last error; the last
  sync time), :meth:`on_status` callbacks and ``async for s in provider.statuses()``.
- **Presence**: :meth:`awareness` ``(doc_id)`` gives the document's
  :class:`~crdtsync.sync.awareness.DocAwareness`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from ..clock import Clock, SystemClock
from ..errors import CrdtsyncError, MessageTooLargeError, ProtocolError, TransportError
from ..origins import Origin, remote_origin
from ..protocol.awareness import InvalidAwarenessError
from ..protocol.client_session import (
    Acked,
    ApplyUpdate,
    ClientSession,
    DocError,
    DocSession,
    PresenceReceived,
    ResubscribeLater,
    SessionEvent,
    Subscribed,
    Synced,
)
from ..protocol.connection import DEFAULT_MAX_MESSAGE_SIZE, Connection
from ..protocol.native import Error, Ping, Scalar
from ..protocol.state import Role
from ..replica import Replica
from ..transport.base import Transport
from ..transport.websocket import connect_websocket
from .awareness import DocAwareness
from .backoff import Backoff
from .docstate import DocSync
from .status import ConnectionState, StatusStream, SyncStatus
from .timing import sleep_unless, with_timeout

__all__ = ["SyncProvider"]

log = logging.getLogger("crdtsync.sync")

T = TypeVar("T")
Connect = Callable[[], Awaitable[Transport]]
TokenFactory = Callable[[], "str | Awaitable[str | None] | None"]

EMPTY_UPDATE = b"\x00\x00"
_names = itertools.count(1)


class SyncProvider:
    """Connects ``replica`` to a relay. Start it with ``async with`` or :meth:`start`."""

    def __init__(
        self,
        replica: Replica,
        connect: Connect | str,
        *,
        token: str | None = None,
        token_factory: TokenFactory | None = None,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        heartbeat_interval: float = 15.0,
        heartbeat_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        awareness_interval: float = 15.0,
        gc_time: float = 30.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        client_info: dict[str, Scalar] | None = None,
        name: str | None = None,
    ):
        if token is not None and token_factory is not None:
            raise ValueError("pass token or token_factory, not both")
        for what, value in (
            ("heartbeat_interval", heartbeat_interval),
            ("heartbeat_timeout", heartbeat_timeout),
            ("handshake_timeout", handshake_timeout),
            ("awareness_interval", awareness_interval),
        ):
            if value <= 0:
                raise ValueError(f"{what} must be > 0")
        self.replica = replica
        if isinstance(connect, str):
            url = connect
            self._connect: Connect = lambda: connect_websocket(url, max_size=max_message_size)
        else:
            self._connect = connect
        self._token = token
        self._token_factory = token_factory
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff or Backoff()
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.handshake_timeout = handshake_timeout
        self.awareness_interval = awareness_interval
        self.gc_time = gc_time
        self.max_message_size = max_message_size
        # max_message_size tells the relay to cut what it sends us to fit (no reconnect loop)
        self.client_info: dict[str, Scalar] = {"name": "crdtsync-python", **(client_info or {}),
                                               "max_message_size": max_message_size}
        self.name = name or f"provider-{next(_names)}"
        self.origin: Origin = remote_origin(self.name)

        self._docs: dict[str, DocSync] = {}  # what the application wants, per document
        self._sync = ClientSession(replica)  # the protocol: every document's sync state
        self._status = StatusStream()
        self._changed = asyncio.Event()
        self._outgoing = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._conn: Connection | None = None
        self._transport: Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None
        self._last_rx = 0.0
        self._closing = False
        self._opened = False  # the current attempt completed its handshake
        self._opened_at = 0.0
        self._progress = False  # ... and the relay acknowledged something in it

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> SyncProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting in the background (returns at once). Call :meth:`close` to stop."""
        if self._task is not None:
            raise RuntimeError("SyncProvider.start() called twice")
        if self._closing:
            raise RuntimeError("a closed SyncProvider cannot start again")
        self._unlisten = self.replica.on_update(self._on_local_update)
        self._task = asyncio.create_task(self._run(), name=f"{self.name} sync")

    async def close(self) -> None:
        """Withdraw our presence, close the connection and stop reconnecting. Idempotent."""
        if self._closing:
            return
        self._closing = True
        conn = self._conn
        if conn is not None and conn.is_open:
            for d in self._docs.values():
                if self._active(d) and d.awareness is not None and d.awareness.local_state is not None:
                    d.awareness.set_local_state(None)  # sent by the session's final flush
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for d in self._docs.values():
            d.cancel_timers()
        self._status.update(state=ConnectionState.CLOSED, session_id=None, next_retry_at=None)
        self._notify()

    async def reconnect(self) -> None:
        """Drop the current connection (if any) and connect again now, skipping the backoff
        delay: after a token refresh, or when the application knows the network is back."""
        self._retry_now.set()
        if self._transport is not None:
            await self._transport.close()

    # -- subscriptions -----------------------------------------------------------------------
    @property
    def subscriptions(self) -> frozenset[str]:
        return frozenset(d.doc_id for d in self._docs.values() if d.wanted)

    def subscribe(self, doc_id: str) -> None:
        """Sync ``doc_id`` from now on (and after every reconnect), until :meth:`unsubscribe`;
        releasing a :meth:`retain` does not undo it."""
        self._doc(doc_id).explicit = True
        self._want(doc_id)

    def _want(self, doc_id: str) -> None:
        d = self._doc(doc_id)
        if d.gc_timer is not None:
            d.gc_timer.cancel()
            d.gc_timer = None
        if d.wanted:
            return
        d.wanted = True
        self._activate(d)

    def unsubscribe(self, doc_id: str) -> None:
        """Stop syncing ``doc_id``. Local edits stay local until it is subscribed again."""
        d = self._docs.get(doc_id)
        if d is not None:
            d.explicit = False
        self._drop(doc_id)

    def _drop(self, doc_id: str) -> None:
        d = self._docs.get(doc_id)
        if d is None or not d.wanted:
            return
        d.wanted = False
        d.cancel_timers()
        if d.awareness is not None and d.awareness.local_state is not None:
            self._sync.send_presence(doc_id, d.awareness.withdrawal())
        self._sync.unsubscribe(doc_id)
        self._outgoing.set()
        if d.awareness is not None:
            d.awareness.clear_remote()
        self._notify()

    def retain(self, doc_id: str) -> Callable[[], None]:
        """Subscribe ``doc_id`` while anyone holds it. Returns ``release``; after the last
        release the document is unsubscribed ``gc_time`` seconds later, unless retained again
        (an observer that comes back quickly does not cost a resync)."""
        d = self._doc(doc_id)
        d.refs += 1
        self._want(doc_id)
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            d.refs -= 1
            if d.refs == 0 and not d.explicit and d.wanted and d.gc_timer is None and not self._closing:
                d.gc_timer = self.clock.call_later(self.gc_time, lambda: self._gc(d))

        return release

    def _gc(self, d: DocSync) -> None:
        d.gc_timer = None
        if d.refs == 0 and not d.explicit:
            self._drop(d.doc_id)

    def _doc(self, doc_id: str) -> DocSync:
        d = self._docs.get(doc_id)
        if d is None:
            if not isinstance(doc_id, str) or not doc_id:
                raise ValueError(f"a document id is a non-empty str, got {doc_id!r}")
            d = self._docs[doc_id] = DocSync(doc_id)
        return d

    # -- status and waiting ------------------------------------------------------------------
    @property
    def status(self) -> SyncStatus:
        return self._status.current

    def on_status(self, listener: Callable[[SyncStatus], None]) -> Callable[[], None]:
        """Call ``listener(status)`` on every status change; returns the unsubscribe function."""
        return self._status.subscribe(listener)

    def statuses(self) -> AsyncIterator[SyncStatus]:
        """``async for status in provider.statuses()``: the current status, then each change,
        ending after CLOSED."""
        return self._status.changes()

    def is_synced(self, doc_id: str) -> bool:
        s = self._sync.docs.get(doc_id)
        return s is not None and s.synced

    def is_acked(self, doc_id: str | None = None) -> bool:
        """True when no local change to ``doc_id`` (None: any subscribed document) awaits an ack."""
        return all(s.acked for s in self._wanted(doc_id))

    def _wanted(self, doc_id: str | None) -> list[DocSession]:
        """The sync state of the wanted documents (``doc_id``, or all)."""
        ids = [d.doc_id for d in self._docs.values() if d.wanted] if doc_id is None else [doc_id]
        return [self._sync.doc(i) for i in ids if i in self._docs and self._docs[i].wanted]

    def _active(self, d: DocSync) -> bool:
        s = self._sync.docs.get(d.doc_id)
        return s is not None and s.active

    async def wait_connected(self) -> None:
        await self._wait(lambda: self.status.connected)

    async def wait_synced(self, doc_id: str) -> None:
        """Until ``doc_id`` has exchanged state both ways on the current connection."""
        await self._wait(lambda: self.is_synced(doc_id))

    async def wait_acked(self, doc_id: str | None = None) -> None:
        """Until every local change to ``doc_id`` (None: to every subscribed document) is
        durable on the relay. Raises :class:`PermissionDeniedError` for a read-only document
        with local changes, and :class:`MessageTooLargeError` for changes that cannot be cut
        into messages the relay accepts (one value larger than its limit)."""

        def done() -> bool:
            for s in self._wanted(doc_id):
                if s.dirty and s.error is not None and (s.read_only or isinstance(s.error, MessageTooLargeError)):
                    raise s.error
            return self.is_acked(doc_id)

        await self._wait(done)

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self._closing:
                raise TransportError("the provider is closed")
            changed = self._changed
            await changed.wait()

    def _notify(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    # -- presence ----------------------------------------------------------------------------
    def awareness(self, doc_id: str) -> DocAwareness:
        """The presence of ``doc_id``: set ours, read everyone's (see :class:`DocAwareness`)."""
        d = self._doc(doc_id)
        if d.awareness is None:
            d.awareness = DocAwareness(
                doc_id,
                self.replica.doc(doc_id).client_id,
                self.clock,
                lambda payload: self._send_awareness(d, payload),
            )
        return d.awareness

    def _send_awareness(self, d: DocSync, payload: bytes) -> None:
        if self._sync.send_presence(d.doc_id, payload):
            self._outgoing.set()

    # -- local changes -----------------------------------------------------------------------
    def _on_local_update(self, doc_id: str, update: bytes, origin: Origin) -> None:
        if origin == self.origin:
            return  # we applied it: never echo a peer's update back
        d = self._docs.get(doc_id)
        if d is None or not d.wanted:
            return
        self._sync.local_update(doc_id, update)
        self._process(self._sync.events())
        self._outgoing.set()
        self._notify()

    def _activate(self, d: DocSync) -> None:
        """Subscribe ``d`` on the current connection, if there is one."""
        self._sync.subscribe(d.doc_id)
        self._process(self._sync.events())
        self._outgoing.set()

    # -- the connection loop -----------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            self._status.update(state=ConnectionState.CONNECTING, attempt=attempt, next_retry_at=None)
            self._retry_now.clear()
            error: BaseException | None = None
            self._opened = False
            self._progress = False
            try:
                transport = await with_timeout(self.clock, self._open(), self.handshake_timeout, "connecting")
                try:
                    await self._session(transport)
                finally:
                    with contextlib.suppress(Exception):
                        await transport.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed attempt, whatever the cause: retry later
                error = exc
                if not isinstance(exc, CrdtsyncError):
                    log.exception("%s: unexpected error in the sync session", self.name)
            if self._closing:
                return
            lasted = self.clock.now() - self._opened_at
            if self._opened and (self._progress or lasted >= self.heartbeat_interval):
                attempt = 0  # a session that worked; one that keeps closing right after the handshake backs off
            delay = self.backoff.delay(attempt)
            attempt += 1
            self._status.update(
                state=ConnectionState.OFFLINE,
                last_error=error,
                attempt=attempt,
                session_id=None,
                next_retry_at=self.clock.now() + delay,
            )
            self._notify()
            log.info("%s: offline (%s); retrying in %.2f s", self.name, error, delay)
            await sleep_unless(self.clock, delay, self._retry_now)

    async def _open(self) -> Transport:
        try:
            return await self._connect()
        except TransportError:
            raise
        except Exception as exc:
            raise TransportError(f"connect failed: {exc}") from exc

    async def _token_now(self) -> str | None:
        if self._token_factory is None:
            return self._token
        result = self._token_factory()
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _session(self, transport: Transport) -> None:
        """One connection, from Hello until it ends (always by an exception)."""
        conn = Connection(Role.CLIENT, max_message_size=self.max_message_size)
        conn.send_hello(await self._token_now(), self.client_info)
        for frame in conn.bytes_to_send():
            await transport.send(frame)
        await with_timeout(self.clock, self._await_welcome(transport, conn), self.handshake_timeout, "handshake")
        self._conn, self._transport = conn, transport
        self._opened = True
        self._opened_at = self.clock.now()
        self._last_rx = self.clock.now()
        self._status.update(state=ConnectionState.CONNECTED, attempt=0, session_id=conn.session_id, next_retry_at=None)
        log.info("%s: connected (session %s)", self.name, conn.session_id)
        self._sync.attach(conn)
        try:
            for d in self._docs.values():
                if d.wanted:
                    self._activate(d)
            self._notify()
            tasks = [
                asyncio.ensure_future(self._reader(transport, conn)),
                asyncio.ensure_future(self._writer(transport, conn)),
                asyncio.ensure_future(self._heartbeat(conn)),
                asyncio.ensure_future(self._presence()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()  # raises the reason the session ended
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self._final_flush(transport, conn)
        finally:
            self._conn = self._transport = None
            self._sync.detach()
            for d in self._docs.values():
                if d.awareness is not None:
                    d.awareness.clear_remote()
            self._notify()

    async def _await_welcome(self, transport: Transport, conn: Connection) -> None:
        while not conn.is_open:
            frame = await transport.recv()
            try:
                conn.receive_bytes(frame)
            except ProtocolError:
                await self._final_flush(transport, conn)
                raise
            for ev in conn.events_received():
                if isinstance(ev, Error):
                    raise ev.exception()

    async def _final_flush(self, transport: Transport, conn: Connection) -> None:
        """Best effort: send what is queued (a fatal error, our presence withdrawal)."""
        for frame in conn.bytes_to_send():
            try:
                await transport.send(frame)
            except Exception:
                return

    async def _reader(self, transport: Transport, conn: Connection) -> None:
        while True:
            frame = await transport.recv()
            self._last_rx = self.clock.now()
            conn.receive_bytes(frame)  # a ProtocolError ends the session (fatal Error queued)
            for ev in conn.events_received():
                self._sync.receive(ev)  # a fatal Error raises: the session ends with it
                self._process(self._sync.events())
            self._outgoing.set()

    async def _writer(self, transport: Transport, conn: Connection) -> None:
        while True:
            await self._outgoing.wait()
            self._outgoing.clear()
            for frame in conn.bytes_to_send():
                await transport.send(frame)

    async def _heartbeat(self, conn: Connection) -> None:
        for nonce in itertools.count(1):
            await self.clock.sleep(self.heartbeat_interval)
            sent_at = self.clock.now()
            conn.send(Ping(nonce))
            self._outgoing.set()
            await self.clock.sleep(self.heartbeat_timeout)
            if self._last_rx < sent_at:
                raise TransportError(f"heartbeat: nothing received for {self.heartbeat_timeout} s after a ping")

    async def _presence(self) -> None:
        """Renew our awareness states and expire silent remote ones, every interval."""
        while True:
            await self.clock.sleep(self.awareness_interval)
            for d in self._docs.values():
                if d.awareness is not None and self._active(d):
                    payload = d.awareness.renew()
                    if payload is not None:
                        self._send_awareness(d, payload)
                    d.awareness.expire()

    # -- what the session asks for ------------------------------------------------------------
    def _process(self, events: list[SessionEvent]) -> None:
        for ev in events:
            d = self._docs.get(ev.doc_id) if ev.doc_id is not None else None
            if isinstance(ev, ApplyUpdate):
                self._apply(ev.doc_id, ev.update)
            elif isinstance(ev, Synced):
                self._synced_maybe(ev.doc_id)
            elif isinstance(ev, Acked):
                self._progress = True  # the relay took something we sent: the session works
                self._status.update(last_sync_at=self.clock.now())
                self._notify()
            elif isinstance(ev, Subscribed):
                if d is not None and d.awareness is not None:
                    payload = d.awareness.renew()
                    if payload is not None:
                        self._sync.send_presence(ev.doc_id, payload)
            elif isinstance(ev, DocError):
                log.warning("%s: error about document %r: %s", self.name, ev.doc_id, ev.error)
                self._status.update(last_error=ev.error)
                self._notify()
            elif isinstance(ev, ResubscribeLater):
                if d is not None and d.wanted:
                    self._resubscribe_later(d)
            elif isinstance(ev, PresenceReceived) and d is not None:
                try:
                    self.awareness(ev.doc_id).receive(ev.payload)
                except InvalidAwarenessError as exc:
                    log.warning("%s: dropped a bad awareness payload for %r: %s", self.name, ev.doc_id, exc)

    def _apply(self, doc_id: str, update: bytes) -> None:
        try:
            self.replica.apply_update(doc_id, update, origin=self.origin, raise_listener_errors=False)
        except CrdtsyncError:
            raise
        except Exception as exc:  # pycrdt refused the bytes: the relay sent garbage
            raise ProtocolError(f"an update for {doc_id!r} does not apply: {exc}") from exc

    def _synced_maybe(self, doc_id: str) -> None:
        if self.is_synced(doc_id):
            self._status.update(last_sync_at=self.clock.now())
        self._notify()

    def _resubscribe_later(self, d: DocSync) -> None:
        if d.retry_timer is not None:
            return

        def again() -> None:
            d.retry_timer = None
            if d.wanted:
                self._activate(d)

        d.retry_timer = self.clock.call_later(self.backoff.delay(0), again)
