"""The native endpoint (``ws://host:port/v1``): the async shell around
:class:`~crdtsync.protocol.server_session.ServerSession`, which makes every protocol decision
(its module docstring has the rules; ``docs/protocol.md`` the wire format).

The shell does what needs I/O or time:

- reads frames through :meth:`Peer.serve <crdtsync.relay.peer.Peer.serve>` (paced by the rate
  limit; a client held back past ``max_throttle`` gets ``Error rate_limited`` and is closed,
  4029, after everything it sent is handled) and sends through the peer's queue;
- joins rooms in the background (a load may take a while; the connection's other documents are
  served meanwhile) and stops reading while the session holds too much for joins still pending;
- closes the connection when the session says so, and when the token expires (readers too);
- leaves every room when the connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from websockets.asyncio.server import ServerConnection

from ..clock import TimerHandle
from ..errors import LimitExceededError, RoomUnavailableError
from ..protocol.close_codes import CloseCode
from ..protocol.native import ErrorCode
from ..protocol.server_session import (
    Authenticated,
    CloseConnection,
    JoinRoom,
    LeaveRoom,
    ServerEvent,
    ServerLimits,
    ServerSession,
)
from .auth import authenticate
from .context import RelayContext
from .peer import Peer
from .room import Room

log = logging.getLogger("crdtsync.relay")


class NativeSession:
    """One native connection; its :class:`ServerSession` is the member of every room it joined."""

    def __init__(self, ctx: RelayContext, peer: Peer):
        self.ctx = ctx
        self.peer = peer
        cfg = ctx.config
        limits = ServerLimits(
            max_message_size=cfg.max_message_size,
            max_subscriptions=cfg.max_subscriptions,
            max_held=cfg.max_queue,
            max_held_bytes=cfg.max_held_bytes,
            reader_presence=cfg.reader_presence,
            welcome_info={"max_subscriptions": cfg.max_subscriptions, "rate": cfg.rate, "burst": cfg.burst,
                          "max_queue": cfg.max_queue},
        )
        self.session = ServerSession(
            limits=limits,
            authenticate=lambda token: authenticate(cfg.secret, token, now=ctx.clock.now()),
            now=ctx.clock.now,
            emit=peer.send,
            member_key=peer.key,
            session_id=f"s{peer.id}",
            on_error=lambda code: ctx.metrics.errors.labels(code).inc(),
        )
        self._join_tasks: dict[str, asyncio.Task[None]] = {}
        self._expiry: TimerHandle | None = None

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
            self.session.closed()
            self._react()

    async def handle(self, frame: str | bytes) -> None:
        """Process one received frame. Never raises."""
        if isinstance(frame, str):
            frame = frame.encode("utf-8", "replace")  # the codec rejects it as a bad frame
        self.ctx.metrics.bytes_in.inc(len(frame))
        self.session.receive_bytes(frame)
        self._react()
        while self.session.paused and self._join_tasks:  # stop reading until a join ends
            await asyncio.wait(set(self._join_tasks.values()), return_when=asyncio.FIRST_COMPLETED)

    def close_abusive(self, held_for: float) -> None:
        message = f"held back by the rate limit for {held_for:.0f} s without a break; closing"
        self.session.rate_limited(message)
        self._react()
        self.peer.close(CloseCode.RATE_LIMITED, message)

    def _token_expired(self) -> None:
        self._expiry = None
        self.session.token_expired()
        self._react()

    def _react(self) -> None:
        """Do what the session asked for."""
        for ev in self.session.events():
            self._on_event(ev)

    def _on_event(self, ev: ServerEvent) -> None:
        if isinstance(ev, JoinRoom):
            task = asyncio.get_running_loop().create_task(self._join(ev.doc_id))
            self._join_tasks[ev.doc_id] = task
            task.add_done_callback(self._joined)
        elif isinstance(ev, LeaveRoom):
            assert isinstance(ev.room, Room)
            self.ctx.rooms.leave(ev.room, self.session)
        elif isinstance(ev, Authenticated):
            self.peer.claims = ev.claims
            clock = self.ctx.clock
            if ev.claims.expires is not None:
                self._expiry = clock.call_later(max(0.0, ev.claims.expires - clock.now()), self._token_expired)
        elif isinstance(ev, CloseConnection):
            self.peer.close(ev.code, ev.reason)

    def _joined(self, task: asyncio.Task[None]) -> None:
        for doc_id, t in list(self._join_tasks.items()):
            if t is task:
                del self._join_tasks[doc_id]

    async def _join(self, doc_id: str) -> None:
        """Join the room (awaiting its load), then hand it to the session, which replays the
        frames held for it meanwhile."""
        try:
            room = await self.ctx.rooms.join(doc_id, self.session)
        except RoomUnavailableError as exc:
            self.session.join_failed(doc_id, ErrorCode.ROOM_UNAVAILABLE, str(exc))
        except LimitExceededError as exc:
            self.session.join_failed(doc_id, ErrorCode.LIMIT_EXCEEDED, str(exc))
        except Exception:
            log.exception("internal error while joining", extra={"fields": {"peer": self.peer.id, "doc": doc_id}})
            self.session.join_failed(doc_id, ErrorCode.INTERNAL, "internal error")
        else:
            if self.peer.closing:  # nothing it sent for this document was acked: it resends
                self.ctx.rooms.leave(room, self.session)
            else:
                self.session.joined(doc_id, room)
        self._react()
