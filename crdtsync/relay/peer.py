"""One websocket connection as the relay sees it: identity, rights, rate, outgoing queue.

Frames for a peer go through :meth:`Peer.send`, which never blocks:

- **Fast path** (the common case): nothing is queued for the peer and its transport's write
  buffer holds less than ``write_buffer`` bytes, so the frame is written to the socket at once,
  synchronously, as ``websockets.broadcast`` does (no task switch, no future per frame).
- **Slow path**: otherwise the frame joins a bounded queue drained by the peer's sender task,
  which awaits the socket's drain between frames. When that queue already holds ``max_queue``
  frames the peer is a *slow consumer* and is closed with :data:`CLOSE_SLOW_CONSUMER` (1013,
  "try again later"); the others are not slowed.

So at most ``write_buffer`` bytes plus ``max_queue`` frames wait for one peer, and frames keep
their order (the fast path is only taken when the queue is empty and no send is in flight).

Frames *from* a peer go through :meth:`Peer.serve`, which hands each one to the endpoint in
order, paced by the connection's :class:`~.ratelimit.Throttle`: over the rate it waits before
the next frame, and while it waits nothing is read, so TCP slows the client down. Nothing the
peer sent is dropped for going fast; a peer held back for longer than ``max_throttle`` without a
break is closed with :data:`CLOSE_RATE_LIMITED` (4029), and every frame it had already sent is
still handled. So is every frame a slow consumer (1013) had sent before its close.

Create with :meth:`Peer.start`, run :meth:`Peer.serve`, and finish with :meth:`Peer.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..clock import Clock
from .auth import Claims
from .metrics import RelayMetrics
from .ratelimit import Throttle

log = logging.getLogger("crdtsync.relay")

CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_BAD_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_SLOW_CONSUMER = 1013
CLOSE_TOKEN_EXPIRED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_ROOM_UNAVAILABLE = 4004
CLOSE_RATE_LIMITED = 4029

#: closes after which the frames a peer had already sent are still handled (its stream is
#: sound; only the relay's side gave up): a slow consumer, a client held back too long.
_HANDLE_REST_AFTER = frozenset({CLOSE_SLOW_CONSUMER, CLOSE_RATE_LIMITED})

_ids = itertools.count(1)


class Endpoint(Protocol):
    """What :meth:`Peer.serve` drives: one protocol's handling of received frames."""

    async def handle(self, frame: str | bytes) -> None:
        """Process one received frame. Never raises."""
        ...

    def close_abusive(self, held_for: float) -> None:
        """Close the connection: it has been held back by the rate limit for ``held_for``
        seconds without a break. Frames received later are still handed to :meth:`handle`."""
        ...


class Peer:
    """A connection's relay-side state. ``key`` owns its awareness states in every room."""

    def __init__(
        self,
        ws: ServerConnection,
        *,
        protocol: str,
        claims: Claims,
        max_queue: int,
        throttle: Throttle,
        metrics: RelayMetrics,
        write_buffer: int = 64 << 10,
    ):
        self.ws = ws
        self.id = next(_ids)
        self.key = ("peer", self.id)
        self.protocol = protocol
        self.claims = claims
        self.max_queue = max_queue
        self.write_buffer = write_buffer
        self.throttle = throttle
        self.metrics = metrics
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._sending = False  # the sender task has a frame in flight
        self.closing = False
        self.close_code: int | None = None  # the code of the close we started

    def __repr__(self) -> str:
        return f"<Peer {self.id} {self.protocol} {self.claims.subject}>"

    def start(self) -> None:
        self._task = asyncio.create_task(self._sender(), name=f"crdtsync-send-{self.id}")

    @property
    def queued(self) -> int:
        return len(self._queue)

    def send(self, frame: bytes) -> None:
        """Send ``frame`` now if the socket keeps up, else queue it; closes the connection if
        the queue is full (slow consumer)."""
        if self.closing:
            return
        queue = self._queue
        if not queue and not self._sending:
            ws = self.ws
            transport = ws.transport
            if (
                ws.protocol.state is State.OPEN
                and ws.send_in_progress is None
                and transport.get_write_buffer_size() < self.write_buffer
            ):
                try:
                    ws.protocol.send_binary(frame)
                    ws.send_data()
                except Exception:  # the transport broke: the receive loop sees the close
                    return
                self.metrics.bytes_out.inc(len(frame))
                return
        if len(queue) >= self.max_queue:
            self.metrics.dropped.labels("slow_consumer").inc()
            log.warning(
                "slow consumer disconnected",
                extra={"fields": {"peer": self.id, "queued": len(self._queue)}},
            )
            self.close(CLOSE_SLOW_CONSUMER, "outgoing queue full", drain=False)
            return
        self._queue.append(frame)
        self._wake.set()

    def close(self, code: int, reason: str, *, drain: bool = True) -> None:
        """Close the connection once the frames already queued are sent (``drain=False``:
        discard them, as for a slow consumer). Later :meth:`send` calls are ignored."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        pending = list(self._queue) if drain else []
        self._queue.clear()
        self._wake.set()
        self._close_task = asyncio.create_task(self._close(pending, code, reason[:120]))

    async def serve(self, endpoint: Endpoint, clock: Clock) -> None:
        """Hand every received frame to ``endpoint``, in order, until the connection closes.

        Paced by the rate limit: over it, this waits before handling the frame (and reads
        nothing meanwhile). Once the peer has been held back for longer than ``max_throttle``
        without a break, :meth:`Endpoint.close_abusive` closes it; the frames it had already
        sent are handled all the same, without pacing. After a close for a protocol error the
        rest of the stream is not trusted and not handled."""
        throttle, metrics = self.throttle, self.metrics
        async for frame in _frames(self.ws):
            if self.closing:
                if self.close_code not in _HANDLE_REST_AFTER:
                    return
            else:
                now = clock.now()
                wait = throttle.pace(now)
                if wait > 0.0:
                    metrics.throttled.inc()
                    if throttle.abusive(now):
                        metrics.dropped.labels("rate_limited").inc()
                        log.warning("client held back by the rate limit too long; disconnecting",
                                    extra={"fields": {"peer": self.id, "seconds": throttle.throttled_for(now)}})
                        endpoint.close_abusive(throttle.throttled_for(now))
                    else:
                        metrics.throttle_seconds.inc(wait)
                        await clock.sleep(wait)
            await endpoint.handle(frame)

    async def _close(self, pending: list[bytes], code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            for frame in pending:
                await asyncio.wait_for(self.ws.send(frame), 5.0)
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)

    async def _sender(self) -> None:
        queue = self._queue
        ws = self.ws
        metrics = self.metrics
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while queue and not self.closing:
                    frame = queue.popleft()
                    self._sending = True
                    try:
                        await ws.send(frame)  # waits for the socket to drain
                    finally:
                        self._sending = False
                    metrics.bytes_out.inc(len(frame))
                if self.closing:
                    return
        except ConnectionClosed:
            return

    async def stop(self) -> None:
        """Finish a pending :meth:`close` (so its close code is the one sent), then stop the
        sender task."""
        if self._close_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._close_task), 10.0)
        self.closing = True
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _frames(ws: ServerConnection) -> AsyncIterator[str | bytes]:
    """Received frames until the connection closes, however it closes."""
    while True:
        try:
            yield await ws.recv()
        except ConnectionClosed:
            return
