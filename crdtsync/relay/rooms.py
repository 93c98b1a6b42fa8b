""":class:`RoomManager`: creates rooms on first use, queues joins during loading, unloads
idle rooms, enforces ``max_rooms``, and flushes every room on shutdown.

Use :meth:`RoomManager.join` (returns a READY room with the member added, or raises) and
:meth:`RoomManager.leave`. Each room loads in its own task and its failures stay inside it:
there is no shared task group a failing room could cancel.

Reloading right after an unload is safe: the new room's load waits for the old room's final
flush, so it never reads a store that misses the last updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..clock import Clock
from ..errors import LimitExceededError, RoomUnavailableError
from ..storage.base import DocumentStore
from .config import RelayConfig
from .metrics import RelayMetrics
from .room import Member, Room, RoomState

log = logging.getLogger("crdtsync.relay")


class RoomManager:
    def __init__(self, *, store: DocumentStore, config: RelayConfig, clock: Clock, metrics: RelayMetrics):
        self.store = store
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.rooms: dict[str, Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unloading: dict[str, asyncio.Task[None]] = {}
        self.closed = False
        metrics.rooms.set_function(lambda: len(self.rooms))

    def get(self, doc_id: str) -> Room | None:
        return self.rooms.get(doc_id)

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _room(self, doc_id: str) -> Room:
        room = self.rooms.get(doc_id)
        if room is not None:
            return room
        if self.closed:
            raise RoomUnavailableError("relay is shutting down")
        if len(self.rooms) >= self.config.max_rooms:
            raise LimitExceededError("max_rooms", f"{self.config.max_rooms} rooms are loaded")
        room = Room(doc_id, store=self.store, config=self.config, clock=self.clock, metrics=self.metrics)
        self.rooms[doc_id] = room
        self._spawn(self._load(room), f"crdtsync-load:{doc_id}")
        return room

    async def _load(self, room: Room) -> None:
        await room.load(after=self._unloading.get(room.doc_id))
        if room.state is RoomState.FAILED and self.rooms.get(room.doc_id) is room:
            # forget it so a later join retries the load; it never wrote anything
            del self.rooms[room.doc_id]
        elif room.state is RoomState.READY:
            # every joiner may have gone while it loaded (a cancelled native join): unload it
            # like any other idle room (a join cancels the timer)
            self._arm_idle(room)

    async def join(self, doc_id: str, member: Member) -> Room:
        """The READY room for ``doc_id`` with ``member`` added. Joins during loading queue on
        the load. Raises RoomUnavailableError (load failed) or LimitExceededError (max_rooms)."""
        room = self._room(doc_id)
        if room.state is RoomState.LOADING:
            try:
                await room.wait_ready()
            except asyncio.CancelledError:
                self._arm_idle(room)  # the load may be done already; nobody else may join
                raise
        if room.state is not RoomState.READY:
            raise room.error if isinstance(room.error, RoomUnavailableError) else RoomUnavailableError(
                f"room {doc_id!r} is {room.state.value}"
            )
        room.join(member)
        return room

    def leave(self, room: Room, member: Member) -> None:
        """Remove ``member``; the room is unloaded after ``idle_unload`` seconds without members."""
        room.leave(member)
        self._arm_idle(room)

    def _arm_idle(self, room: Room) -> None:
        if room.idle and room.state is RoomState.READY and room.idle_timer is None and not self.closed:
            room.idle_timer = self.clock.call_later(self.config.idle_unload, lambda: self._unload(room))

    def _unload(self, room: Room) -> None:
        room.idle_timer = None
        if not room.idle or self.rooms.get(room.doc_id) is not room:
            return
        del self.rooms[room.doc_id]
        previous = self._unloading.get(room.doc_id)

        async def finish() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                await room.close()
            finally:
                if self._unloading.get(room.doc_id) is task:
                    del self._unloading[room.doc_id]
            log.info("room unloaded", extra={"fields": {"doc": room.doc_id}})

        task = self._spawn(finish(), f"crdtsync-unload:{room.doc_id}")
        self._unloading[room.doc_id] = task

    async def close(self) -> None:
        """Flush and close every room (shutdown). New joins are refused from now on."""
        self.closed = True
        rooms = list(self.rooms.values())
        self.rooms.clear()
        results = await asyncio.gather(*(r.close() for r in rooms), return_exceptions=True)
        for room, result in zip(rooms, results, strict=True):
            if isinstance(result, BaseException):
                log.error("room flush failed", extra={"fields": {"doc": room.doc_id, "error": str(result)}})
        pending = [t for t in self._tasks if not t.done()]
        for t in pending:
            if t.get_name().startswith("crdtsync-load:"):
                t.cancel()  # its room is already failed; do not wait for a slow store
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
