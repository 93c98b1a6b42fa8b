"""A room: one document held in memory by the relay, its members, awareness and persistence.

States (one transition table; a room never goes back)::

    LOADING --load ok--> READY --close()--> CLOSED
    LOADING --load fails / times out--> FAILED        (never persisted, never served)

- **Loading**: :meth:`Room.load` reads the store once. Callers of :meth:`Room.wait_ready`
  during the load are queued on one future and all released when it ends, so a join during
  loading never hangs. A failed load raises :class:`RoomUnavailableError` for every waiter and
  the room never writes to the store (so it cannot store an empty document over the real one).
- **Updates**: :meth:`Room.apply_update` validates an update by applying it to the room's
  document, forwards the *received bytes* to every other member, and queues them for the
  store. ``on_durable`` callbacks (native acks) run after the store committed them (a failed
write keeps the batch and retries every second, so an ack is never sent early); updates
  without a callback (y-websocket) are flushed within ``flush_delay``.
- **Awareness**: one :class:`~crdtsync.protocol.awareness.AwarenessRegistry`; changes are
  broadcast at once, pure renewals are coalesced (at most one message per
  ``awareness_coalesce`` seconds), echoes are dropped, a leaving member's states are removed
  and the removal broadcast.

Members implement :class:`Member` (the endpoint sessions do). Errors inside a room are
contained: a failing store write is retried and reported, never raised into other rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from pycrdt import Doc

from ..clock import Clock, TimerHandle
from ..errors import RoomUnavailableError
from ..protocol.awareness import AwarenessChange, AwarenessEntry, AwarenessRegistry, encode_awareness
from ..pycrdt_internals import apply_untrusted, update_since
from ..storage.base import DocumentStore
from ..storage.merge import EMPTY_UPDATE, merge_batch
from .config import RelayConfig
from .metrics import RelayMetrics

log = logging.getLogger("crdtsync.relay")

FrameCache = dict[str, bytes]
DurableCallback = Callable[[], None]



class RoomState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    CLOSED = "closed"


_TRANSITIONS: dict[RoomState, frozenset[RoomState]] = {
    RoomState.LOADING: frozenset({RoomState.READY, RoomState.FAILED, RoomState.CLOSED}),
    RoomState.READY: frozenset({RoomState.CLOSED}),
    RoomState.FAILED: frozenset({RoomState.CLOSED}),
    RoomState.CLOSED: frozenset(),
}


class Member(Protocol):
    """A connection's presence in a room."""

    @property
    def key(self) -> Hashable: ...

    def deliver_update(self, doc_id: str, update: bytes, frames: FrameCache) -> None:
        """Send ``update`` (frames already built for this broadcast are in ``frames``)."""
        ...

    def deliver_awareness(self, doc_id: str, payload: bytes, frames: FrameCache) -> None: ...


class Room:
    """One document's relay-side state. Built by :class:`~crdtsync.relay.rooms.RoomManager`."""

    def __init__(
        self,
        doc_id: str,
        *,
        store: DocumentStore,
        config: RelayConfig,
        clock: Clock,
        metrics: RelayMetrics,
    ):
        self.doc_id = doc_id
        self.store = store
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.doc: Doc[Any] = Doc()
        self.state = RoomState.LOADING
        self.error: BaseException | None = None
        self.members: dict[Hashable, Member] = {}
        self.waiting = 0
        self.awareness = AwarenessRegistry(
            clock=clock.now, timeout=config.awareness_timeout, limits=config.awareness
        )
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending: list[bytes] = []
        self._durable: list[DurableCallback] = []
        self._flush_timer: TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._flush_again = False
        self._renewed: set[int] = set()
        self._renew_timer: TimerHandle | None = None
        self._expire_timer: TimerHandle | None = None
        self.idle_timer: TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Room {self.doc_id!r} {self.state.value} members={len(self.members)}>"

    def _set_state(self, new: RoomState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"room {self.doc_id!r}: {self.state.value} -> {new.value} not allowed")
        self.state = new

    # ---------------------------------------------------------------- lifecycle

    async def load(self, after: asyncio.Future[Any] | None = None) -> None:
        """Load the document (after ``after``, the previous incarnation's final flush).
        Never raises: failures mark the room FAILED and release the waiters with an error."""
        try:
            if after is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(after)
            state = await asyncio.wait_for(self.store.load(self.doc_id), self.config.load_timeout)
            if state is not None:
                self.doc.apply_update(state)
        except asyncio.CancelledError:
            self._fail(RoomUnavailableError(f"room {self.doc_id!r}: load cancelled"))
            raise
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            err = RoomUnavailableError(f"room {self.doc_id!r} could not be loaded: {reason}")
            err.__cause__ = exc
            self.metrics.rooms_failed.inc()
            log.error("room load failed", extra={"fields": {"doc": self.doc_id, "error": reason}})
            self._fail(err)
            return
        if self.state is RoomState.LOADING:
            self._set_state(RoomState.READY)
            self._ready.set_result(None)

    def _fail(self, err: RoomUnavailableError) -> None:
        if self.state is RoomState.LOADING:
            self._set_state(RoomState.FAILED)
        self.error = err
        if not self._ready.done():
            self._ready.set_exception(err)
            self._ready.exception()  # mark retrieved: waiters may all be gone

    async def wait_ready(self) -> None:
        """Wait for the load (queued with every other joiner). Raises RoomUnavailableError."""
        self.waiting += 1
        try:
            await asyncio.shield(self._ready)
        finally:
            self.waiting -= 1

    @property
    def ready(self) -> bool:
        return self.state is RoomState.READY

    @property
    def idle(self) -> bool:
        return not self.members and self.waiting == 0

    async def close(self) -> None:
        """Flush everything pending to the store, stop timers. Safe to call twice."""
        for timer in (self._flush_timer, self._renew_timer, self._expire_timer, self.idle_timer):
            if timer is not None:
                timer.cancel()
        if self.state is RoomState.LOADING:
            self._fail(RoomUnavailableError(f"room {self.doc_id!r} closed while loading"))
        if self._flush_task is not None and not self._flush_task.done():
            with contextlib.suppress(Exception):
                await self._flush_task
        if self.state is RoomState.READY:
            await self._final_flush()
        if self.state is not RoomState.CLOSED:
            self._set_state(RoomState.CLOSED)
        self.members.clear()

    async def _final_flush(self) -> None:
        """Flush, retrying failed writes with backoff for up to ``shutdown_timeout`` seconds
        (the room is going away: nothing else would retry them). Logs loudly if it gives up."""
        deadline = self.clock.now() + self.config.shutdown_timeout
        delay = 0.1
        while True:
            await self.flush()
            if self._flush_timer is not None:  # a failed write armed the 1 s retry: ours instead
                self._flush_timer.cancel()
                self._flush_timer = None
            if not (self._pending or self._durable) or self.state is not RoomState.READY:
                return
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                log.error(
                    "store write failed on close; pending updates are lost",
                    extra={"fields": {"doc": self.doc_id, "updates": len(self._pending)}},
                )
                return
            await self.clock.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)

    # ---------------------------------------------------------------- members

    def join(self, member: Member) -> None:
        """Add a member (the room must be READY; call :meth:`wait_ready` first)."""
        if self.state is not RoomState.READY:
            raise RoomUnavailableError(f"room {self.doc_id!r} is {self.state.value}")
        self.members[member.key] = member
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def leave(self, member: Member) -> None:
        """Remove a member; its awareness states are removed and the removal broadcast."""
        if self.members.pop(member.key, None) is None:
            return
        removal = self.awareness.remove_owner(member.key)
        self._renewed.intersection_update(self.awareness.states())
        if removal is not None:
            self._broadcast_awareness(removal, None)
            if self._expire_timer is None:
                self._schedule_expiry()  # the removal markers are forgotten on expiry

    # ---------------------------------------------------------------- document

    def sync_step2(self, state_vector: bytes) -> bytes:
        """The update a peer with ``state_vector`` is missing. FrameError on a bad vector."""
        return update_since(self.doc, state_vector)

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def apply_update(
        self,
        update: bytes,
        sender: Member | None,
        *,
        frames: FrameCache | None = None,
        on_durable: DurableCallback | None = None,
    ) -> None:
        """Validate and apply ``update``, forward it to the other members, persist it.

        Raises :class:`~crdtsync.errors.FrameError` if it does not decode (nothing changes).
        ``frames`` may carry prebuilt frames of this update (e.g. the y-websocket frame as
        received) so they are forwarded byte for byte.
        """
        if self.state is not RoomState.READY:
            raise RoomUnavailableError(f"room {self.doc_id!r} is {self.state.value}")
        if update == EMPTY_UPDATE:  # a SyncStep2 with nothing in it: nothing to do but ack
            if on_durable is not None:
                self._durable.append(on_durable)
                self._request_flush(0.0)
            return
        apply_untrusted(self.doc, update)
        self.metrics.updates_in.inc()
        cache: FrameCache = frames if frames is not None else {}
        sender_key = sender.key if sender is not None else None
        sent = 0
        for key, member in self.members.items():
            if key != sender_key:
                member.deliver_update(self.doc_id, update, cache)
                sent += 1
        self.metrics.updates_out.inc(sent)
        self._pending.append(update)
        if on_durable is not None:
            self._durable.append(on_durable)
            self._request_flush(0.0)
        else:
            self._request_flush(self.config.flush_delay)

    # ---------------------------------------------------------------- persistence

    def _request_flush(self, delay: float) -> None:
        if self._flush_task is not None and not self._flush_task.done():
            self._flush_again = True
            return
        if delay <= 0:
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            self._flush_task = asyncio.create_task(self.flush())
        elif self._flush_timer is None:
            self._flush_timer = self.clock.call_later(delay, self._on_flush_timer)

    def _on_flush_timer(self) -> None:
        self._flush_timer = None
        self._request_flush(0.0)

    @property
    def unflushed(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write every pending update to the store (one merged append per round) and then run
        the ``on_durable`` callbacks queued with them, in order. On failure the batch and its
        callbacks stay pending and are retried a second later."""
        while self.state is RoomState.READY and (self._pending or self._durable):
            batch, self._pending = self._pending, []
            waiters, self._durable = self._durable, []
            self._flush_again = False
            if batch:
                try:
                    data = batch[0] if len(batch) == 1 else merge_batch(batch, doc_id=self.doc_id)
                    await self.store.append(self.doc_id, data)
                except Exception as exc:
                    self.metrics.flush_errors.inc()
                    log.error("store write failed", extra={"fields": {"doc": self.doc_id, "error": str(exc)}})
                    self._pending[:0] = batch  # keep the batch and its waiters: retried in 1 s
                    self._durable[:0] = waiters
                    if self._flush_timer is None:
                        self._flush_timer = self.clock.call_later(1.0, self._on_flush_timer)
                    return
                self.metrics.flushes.inc()
                log.debug("room flushed", extra={"fields": {"doc": self.doc_id, "updates": len(batch)}})
            for cb in waiters:
                cb()

    # ---------------------------------------------------------------- awareness

    def apply_awareness(self, payload: bytes, sender: Member, *, principal: Hashable | None = None) -> AwarenessChange:
        """Apply an awareness payload from ``sender`` (user ``principal``): changes go out now,
        pure renewals are coalesced, echoes are dropped. Raises InvalidAwarenessError (nothing
        applied), AwarenessNotOwnedError for another connection's client ids."""
        change = self.awareness.apply(payload, sender.key, principal=principal)
        self.metrics.awareness_in.inc()
        if change.changed:
            self._renewed.difference_update(change.added + change.updated + change.removed)
            self._broadcast_awareness(change.payload, sender.key)
        if change.renewed:
            self._renewed.update(change.renewed)
            if self._renew_timer is None:
                self._renew_timer = self.clock.call_later(self.config.awareness_coalesce, self._send_renewals)
        if change.applied and self._expire_timer is None:
            self._schedule_expiry()
        return change

    def awareness_snapshot(self) -> bytes | None:
        """Every live awareness state as one payload (for newcomers and QueryAwareness); the
        caller sends it to one peer (counted in ``crdtsync_awareness_sent``)."""
        snapshot = self.awareness.encode_all()
        if snapshot is not None:
            self.metrics.awareness_out.inc()
        return snapshot

    def _send_renewals(self) -> None:
        self._renew_timer = None
        states = self.awareness.states()
        entries = []
        for cid in sorted(self._renewed):
            clock = self.awareness.clock_of(cid)
            if cid in states and clock is not None:
                entries.append(AwarenessEntry(cid, clock, states[cid]))
        self._renewed.clear()
        if entries:
            self._broadcast_awareness(encode_awareness(entries), None)

    def _schedule_expiry(self) -> None:
        nxt = self.awareness.next_expiry()
        if nxt is None:
            self._expire_timer = None
            return
        self._expire_timer = self.clock.call_later(max(0.0, nxt - self.clock.now()) + 0.01, self._expire)

    def _expire(self) -> None:
        removal = self.awareness.expire()
        if removal is not None:
            self._broadcast_awareness(removal, None)
        self._schedule_expiry()

    def _broadcast_awareness(self, payload: bytes, skip: Hashable | None) -> None:
        cache: FrameCache = {}
        sent = 0
        for key, member in self.members.items():
            if key != skip:
                member.deliver_awareness(self.doc_id, payload, cache)
                sent += 1
        self.metrics.awareness_out.inc(sent)
