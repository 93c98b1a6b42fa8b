"""In-memory transports: :func:`memory_pair` gives two connected ends in one process.

A public test double (like trio's ``memory_stream_pair``): no sockets, no sleeps, deterministic.
Frames are delivered in order; ``max_queue`` bounds how many undelivered frames one direction
holds (``send`` waits for room: backpressure); ``max_size`` makes an oversized frame close the
connection with code 1009, as a websocket peer does.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .base import CLOSE_NORMAL, CLOSE_TOO_LARGE, ConnectionClosed

__all__ = ["MemoryTransport", "memory_pair"]


class _Link:
    """State shared by both ends: closed flag, close code, one queue per direction."""

    def __init__(self, max_queue: int | None, max_size: int | None):
        self.max_queue = max_queue
        self.max_size = max_size
        self.closed = False
        self.code: int | None = None
        self.reason = ""
        self.changed = asyncio.Event()  # set, then replaced, whenever anything happens

    def notify(self) -> None:
        ev, self.changed = self.changed, asyncio.Event()
        ev.set()

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.code, self.reason = code, reason
            self.notify()


class MemoryTransport:
    """One end of a :func:`memory_pair`. See :class:`~crdtsync.transport.base.Transport`."""

    def __init__(self, link: _Link, inbox: deque[bytes], outbox: deque[bytes], name: str):
        self._link = link
        self._inbox = inbox
        self._outbox = outbox
        self._closed_here = False
        self.name = name

    def __repr__(self) -> str:
        return f"<MemoryTransport {self.name} {'closed' if self.closed else 'open'}>"

    @property
    def closed(self) -> bool:
        return self._link.closed

    @property
    def pending(self) -> int:
        """Frames sent by the peer and not yet received here."""
        return len(self._inbox)

    def _closed_error(self) -> ConnectionClosed:
        return ConnectionClosed(code=self._link.code, reason=self._link.reason)

    async def send(self, frame: bytes) -> None:
        link = self._link
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"a frame is bytes, got {type(frame).__name__}")
        while True:
            if link.closed:
                raise self._closed_error()
            if link.max_queue is None or len(self._outbox) < link.max_queue:
                break
            await link.changed.wait()
        if link.max_size is not None and len(frame) > link.max_size:
            link.close(CLOSE_TOO_LARGE, f"frame of {len(frame)} bytes exceeds {link.max_size}")
            return  # like a websocket: the send "succeeds", the peer closes the connection
        self._outbox.append(bytes(frame))
        link.notify()

    async def recv(self) -> bytes:
        link = self._link
        while True:
            if self._closed_here:
                raise self._closed_error()
            if self._inbox:
                frame = self._inbox.popleft()
                link.notify()  # room for a blocked sender
                return frame
            if link.closed:
                raise self._closed_error()
            await link.changed.wait()

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        self._closed_here = True
        self._link.close(code, reason)

    async def wait_closed(self) -> None:
        while not self._link.closed:
            await self._link.changed.wait()

    def abort(self, code: int = 1006, reason: str = "connection lost") -> None:
        """Drop the connection without a close handshake (tests of dead peers)."""
        self._closed_here = True
        self._link.close(code, reason)


def memory_pair(
    *, max_queue: int | None = None, max_size: int | None = None
) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transports ``(a, b)``: what ``a`` sends, ``b`` receives.

    ``max_queue``: undelivered frames per direction before ``send`` waits (None: unbounded).
    ``max_size``: largest frame; a bigger one closes the connection with code 1009."""
    if max_queue is not None and max_queue < 1:
        raise ValueError("max_queue must be >= 1 or None")
    if max_size is not None and max_size < 0:
        raise ValueError("max_size must be >= 0 or None")
    link = _Link(max_queue, max_size)
    a_to_b: deque[bytes] = deque()
    b_to_a: deque[bytes] = deque()
    return MemoryTransport(link, b_to_a, a_to_b, "a"), MemoryTransport(link, a_to_b, b_to_a, "b")
