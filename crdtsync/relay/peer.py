"""One websocket connection as the relay sees it: identity, rights, rate, outgoing queue.

Frames for a peer go through :meth:`Peer.send`, which never blocks:

- **Fast path** (the common case): nothing is queued for the peer and its transport's write
  buffer, plus what is already waiting to be written, holds less than ``write_buffer`` bytes.
  The frame is encoded as a websocket frame and joins the peer's *write batch*; the batch is
  written to the socket with one ``transport.write`` at the end of the event-loop iteration
  (``loop.call_soon``), so a burst of updates handled in one iteration costs each reader one
  write (one syscall) instead of one per update. No task switch, no future per frame.
- **Slow path**: otherwise the frame joins a bounded queue drained by the peer's sender task:
  it waits for the socket to drain, then writes as many queued frames as fit in
  ``write_buffer`` in one write. When that queue already holds ``max_queue`` frames the peer is
  a *slow consumer* and is closed with :data:`CloseCode.SLOW_CONSUMER` (1013, "try again later");
  the others are not slowed.

So at most about ``write_buffer`` bytes plus ``max_queue`` frames wait for one peer, and
frames keep their order: the fast path is only taken while the queue is empty, and the sender
writes the pending batch before any queued frame (a batch is never reordered with the queue).
A batch is written only while the connection is OPEN: nothing follows a close frame.

Frames *from* a peer go through :meth:`Peer.serve`, which hands each one to the endpoint in
order, paced by the connection's :class:`~.ratelimit.Throttle`: over the rate it waits before
the next frame, and while it waits nothing is read, so TCP slows the client down. Nothing the
peer sent is dropped for going fast; a peer held back for longer than ``max_throttle`` without a
break is closed with :data:`CloseCode.RATE_LIMITED` (4029), and every frame it had already sent is
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
from ..protocol.close_codes import CloseCode
from .auth import Claims
from .metrics import RelayMetrics
from .ratelimit import Throttle

log = logging.getLogger("crdtsync.relay")


#: closes after which the frames a peer had already sent are still handled (its stream is
#: sound; only the relay's side gave up): a slow consumer, a client held back too long.
_HANDLE_REST_AFTER = frozenset({CloseCode.SLOW_CONSUMER, CloseCode.RATE_LIMITED})

_ids = itertools.count(1)

#: websocket frame headers (FIN, binary, unmasked: a server's) for payloads under 126 bytes.
_SMALL_HEADERS = tuple(bytes((0x82, n)) for n in range(126))


def frame_header(size: int) -> bytes:
    """The RFC 6455 header of an unmasked, unfragmented binary frame of ``size`` bytes, as a
    server sends it without extensions (what ``protocol.send_binary`` would write)."""
    if size < 126:
        return _SMALL_HEADERS[size]
    if size < 1 << 16:
        return b"\x82\x7e" + size.to_bytes(2, "big")
    return b"\x82\x7f" + size.to_bytes(8, "big")


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
        self._sending = False  # the sender task is writing the queue: the fast path waits
        # the write batch: encoded frames (header, payload, header, ...) written at the end of
        # this event-loop iteration; its wire size and its payload bytes (for bytes_out)
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._batch_payload = 0
        self._budget = 0  # bytes the open batch may reach: write_buffer - transport buffer
        # frames are encoded here only without extensions (the relay never negotiates any);
        # otherwise the websockets protocol encodes them (e.g. compresses)
        self._raw = not ws.protocol.extensions
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
        """Send ``frame`` with this iteration's write batch if the socket keeps up, else queue
        it; closes the connection if the queue is full (slow consumer)."""
        if self.closing:
            return
        batch = self._batch
        if batch:
            # a batch is open in this iteration (the queue was empty and the socket below
            # write_buffer when it opened): it takes frames while the bytes waiting for this
            # socket stay below write_buffer and nothing was queued since
            ok = self._batch_size < self._budget and not self._queue
        elif not self._queue and not self._sending:
            ws = self.ws
            ok = ws.protocol.state is State.OPEN and ws.send_in_progress is None
            if ok:
                self._budget = self.write_buffer - ws.transport.get_write_buffer_size()
                ok = self._budget > 0
                if ok:
                    asyncio.get_running_loop().call_soon(self._flush)
        else:
            ok = False
        if ok:
            size = len(frame)
            self._batch_payload += size
            if self._raw:
                header = _SMALL_HEADERS[size] if size < 126 else frame_header(size)
                batch.append(header)
                batch.append(frame)
                self._batch_size += len(header) + size
            else:
                protocol = self.ws.protocol
                try:
                    protocol.send_binary(frame)
                except Exception:  # no longer OPEN (closing): the batch is dropped at _flush
                    return
                for data in protocol.data_to_send():
                    batch.append(data)
                    self._batch_size += len(data)
            return
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.metrics.dropped.labels("slow_consumer").inc()
            log.warning(
                "slow consumer disconnected",
                extra={"fields": {"peer": self.id, "queued": len(queue)}},
            )
            self.close(CloseCode.SLOW_CONSUMER, "outgoing queue full", drain=False)
            return
        queue.append(frame)
        self._wake.set()

    def _flush(self) -> None:
        """Write the write batch in one ``transport.write`` (if the connection is still OPEN:
        once a close frame is out, nothing more may be written; the frames are then lost with
        the connection, as they would be in the socket's buffer)."""
        batch = self._batch
        if not batch:
            return
        payload = self._batch_payload
        self._batch = []
        self._batch_size = self._batch_payload = 0
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            return
        try:
            ws.transport.write(b"".join(batch))
        except Exception:  # the transport broke: the receive loop sees the close
            return
        self.metrics.bytes_out.inc(payload)

    def close(self, code: int, reason: str, *, drain: bool = True) -> None:
        """Close the connection once the frames already queued are sent (``drain=False``:
        discard them, as for a slow consumer). Later :meth:`send` calls are ignored. The write
        batch goes out first either way (it is already accepted for the socket)."""
        if self.closing:
            return
        self._flush()
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
        """Drain the queue: wait for the socket to drain, write as many queued frames as fit in
        ``write_buffer`` (at least one) in one write, repeat. While it runs the fast path is
        closed, so no frame overtakes a queued one."""
        queue = self._queue
        ws = self.ws
        metrics = self.metrics
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if not queue or self.closing:
                    if self.closing:
                        return
                    continue
                self._sending = True
                try:
                    self._flush()  # frames accepted for the fast path before the queued ones
                    while queue and not self.closing:
                        await ws.drain()  # below the transport's low-water mark
                        if self.closing or ws.protocol.state is not State.OPEN:
                            return
                        room = self.write_buffer - ws.transport.get_write_buffer_size()
                        out: list[bytes] = []
                        payload = 0
                        while queue:
                            frame = queue[0]
                            if out and payload + len(frame) > room:
                                break
                            queue.popleft()
                            payload += len(frame)
                            if self._raw:
                                out.append(frame_header(len(frame)))
                                out.append(frame)
                            else:
                                ws.protocol.send_binary(frame)
                                out.extend(ws.protocol.data_to_send())
                        ws.transport.write(b"".join(out))
                        metrics.bytes_out.inc(payload)
                finally:
                    self._sending = False
                if self.closing:
                    return
        except ConnectionClosed:
            return
        except Exception:  # the transport broke: the receive loop sees the close
            log.debug("sender stopped", exc_info=True, extra={"fields": {"peer": self.id}})
            return

    async def stop(self) -> None:
        """Finish a pending :meth:`close` (so its close code is the one sent), then stop the
        sender task."""
        if self._close_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._close_task), 10.0)
        self.closing = True
        self._queue.clear()
        self._batch.clear()
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
