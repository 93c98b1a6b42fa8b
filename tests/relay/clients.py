"""Minimal test clients for the relay (not a client library): one y-websocket speaker and one
native-protocol speaker, both backed by a pycrdt Doc. They wait on conditions, never sleep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Map, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from crdtsync.protocol import native as n
from crdtsync.protocol import yjs as y
from crdtsync.protocol.awareness import decode_awareness
from crdtsync.protocol.connection import Connection
from crdtsync.protocol.state import Role

TIMEOUT = 5.0


class _Base:
    ws: ClientConnection
    doc: Doc

    def __init__(self) -> None:
        self.doc = Doc()
        self.received: list[Any] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._applying = False
        self.closed: asyncio.Future[tuple[int | None, str | None]] = asyncio.get_running_loop().create_future()
        self.awareness: dict[int, Any] = {}
        self._sub = self.doc.observe(self._on_doc)
        self._out: asyncio.Queue[bytes | str] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def _start(self) -> None:
        self._reader = asyncio.create_task(self._read())
        self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.send(await self._out.get())

    def send_raw(self, frame: bytes | str) -> None:
        """Queue a frame (sent in order by one writer task)."""
        self._out.put_nowait(frame)

    @property
    def m(self) -> Map:
        return self.doc.get("m", type=Map)

    @property
    def t(self) -> Text:
        return self.doc.get("t", type=Text)

    def _on_doc(self, event: Any) -> None:
        if not self._applying:
            self.send_update(bytes(event.update))

    def send_update(self, update: bytes) -> None:
        raise NotImplementedError

    def apply_remote(self, update: bytes) -> None:
        self._applying = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying = False

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(waiter(), timeout)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                self.on_frame(frame)
                await self._notify()
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            if not self.closed.done():
                self.closed.set_result((rcvd.code if rcvd else None, rcvd.reason if rcvd else None))
            await self._notify()

    def on_frame(self, frame: bytes) -> None:
        raise NotImplementedError

    def apply_awareness(self, payload: bytes) -> None:
        for e in decode_awareness(payload):
            if e.removed:
                self.awareness.pop(e.client_id, None)
            else:
                self.awareness[e.client_id] = e.value()

    async def close(self) -> None:
        self.doc.unobserve(self._sub)
        if self._writer is not None:
            self._writer.cancel()
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, TIMEOUT)


class YClient(_Base):
    """Speaks y-websocket like a stock client (answers SyncStep1, sends SyncStep1 on connect)."""

    def __init__(self) -> None:
        super().__init__()
        self.synced = False
        self.denied: list[str] = []

    @classmethod
    async def open(cls, url: str, *, handshake: bool = True) -> YClient:
        self = cls()
        self.ws = await connect(url, compression=None, max_size=None)
        self._start()
        if handshake:
            self.send(y.SyncStep1(bytes(self.doc.get_state())))
            await self.wait_for(lambda: self.synced)
        return self

    def send(self, msg: y.YjsMessage) -> None:
        self.send_raw(y.encode_yjs(msg))

    def send_update(self, update: bytes) -> None:
        self.send(y.Update(update))

    def on_frame(self, frame: bytes) -> None:
        msg = y.decode_yjs(frame)
        self.received.append(msg)
        if isinstance(msg, y.SyncStep1):
            self.send(y.SyncStep2(bytes(self.doc.get_update(msg.state_vector))))
        elif isinstance(msg, (y.SyncStep2, y.Update)):
            self.apply_remote(msg.update)
            if isinstance(msg, y.SyncStep2):
                self.synced = True
        elif isinstance(msg, y.Awareness):
            self.apply_awareness(msg.payload)
        elif isinstance(msg, y.AuthDenied):
            self.denied.append(msg.reason)


class NClient(_Base):
    """Speaks the native protocol through the sans-I/O Connection."""

    def __init__(self) -> None:
        super().__init__()
        self.conn = Connection(Role.CLIENT)
        self.acked: dict[str, int] = {}
        self.errors: list[n.Error] = []
        self.subscribed: set[str] = set()
        self.doc_id = "doc"
        self.docs: dict[str, Doc] = {}
        self.welcome = False

    @classmethod
    async def open(cls, url: str, *, token: str | None = None, doc_id: str | None = "doc") -> NClient:
        self = cls()
        self.ws = await connect(url, compression=None, max_size=None)
        self._start()
        self.conn.send_hello(token=token)
        self._flush()
        await self.wait_for(lambda: self.welcome or self.closed.done())
        if doc_id is not None and self.welcome:
            self.doc_id = doc_id
            await self.subscribe(doc_id)
        return self

    def _flush(self) -> None:
        for frame in self.conn.bytes_to_send():
            self.send_raw(frame)

    def send(self, msg: n.NativeMessage) -> None:
        self.conn.send(msg)
        self._flush()

    async def subscribe(self, doc_id: str) -> None:
        self.send(n.Subscribe(doc_id, bytes(self.doc.get_state()) if doc_id == self.doc_id else b"\x00"))
        await self.wait_for(lambda: doc_id in self.subscribed or bool(self.errors))

    def send_update(self, update: bytes) -> None:
        self.send(n.Update(self.doc_id, update, self.conn.next_seq()))

    def on_frame(self, frame: bytes) -> None:
        self.conn.receive_bytes(frame)
        for msg in self.conn.events_received():
            self.received.append(msg)
            if isinstance(msg, n.Welcome):
                self.welcome = True
            elif isinstance(msg, (n.SyncStep2, n.Update)):
                if msg.doc_id == self.doc_id:
                    self.apply_remote(msg.update)
                if isinstance(msg, n.SyncStep2):
                    self.subscribed.add(msg.doc_id)
            elif isinstance(msg, n.SyncStep1):
                if msg.doc_id == self.doc_id:
                    seq = self.conn.next_seq()
                    self.send(n.SyncStep2(msg.doc_id, bytes(self.doc.get_update(msg.state_vector)), seq))
            elif isinstance(msg, n.Ack):
                self.acked[msg.doc_id] = max(self.acked.get(msg.doc_id, 0), msg.seq)
            elif isinstance(msg, n.Error):
                self.errors.append(msg)
            elif isinstance(msg, n.Awareness):
                self.apply_awareness(msg.payload)
        self._flush()

    @property
    def last_seq(self) -> int:
        return self.conn.next_seq() - 1  # note: consumes one seq number

    def error_codes(self) -> list[str]:
        return [e.code for e in self.errors]
