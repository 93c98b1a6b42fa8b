"""A provider's observable connection status.

:class:`SyncStatus` is a frozen snapshot; :class:`StatusStream` holds the current one and tells
listeners about each change, by callback (``subscribe``) or by ``async for`` (``changes``).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["ConnectionState", "StatusStream", "SyncStatus"]


class ConnectionState(enum.Enum):
    IDLE = "idle"  # not started yet
    CONNECTING = "connecting"  # opening a transport or waiting for the Welcome
    CONNECTED = "connected"  # handshake done; documents sync
    OFFLINE = "offline"  # the last attempt failed or the connection dropped; a retry is scheduled
    CLOSED = "closed"  # the provider was closed; it will not reconnect


@dataclass(frozen=True, slots=True)
class SyncStatus:
    state: ConnectionState = ConnectionState.IDLE
    last_error: BaseException | None = None  # the latest failure (kept across reconnects)
    last_sync_at: float | None = None  # clock time of the latest completed sync or ack
    attempt: int = 0  # failed attempts since the last successful handshake
    session_id: str | None = None  # from the relay's Welcome while connected
    next_retry_at: float | None = None  # clock time of the next attempt while OFFLINE

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED


Listener = Callable[[SyncStatus], None]


class StatusStream:
    """The current :class:`SyncStatus` and its listeners."""

    def __init__(self, initial: SyncStatus | None = None):
        self._current = initial or SyncStatus()
        self._listeners: list[Listener] = []
        self._queues: set[asyncio.Queue[SyncStatus]] = set()

    @property
    def current(self) -> SyncStatus:
        return self._current

    def update(self, **changes: Any) -> None:
        """Replace fields of the current status; listeners run only when something changed."""
        new = replace(self._current, **changes)
        if new == self._current:
            return
        self._current = new
        for cb in list(self._listeners):
            cb(new)
        for q in self._queues:
            q.put_nowait(new)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(status)`` after every change. Returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def changes(self) -> AsyncIterator[SyncStatus]:
        """Yield the current status, then every change, until the consumer stops iterating."""
        q: asyncio.Queue[SyncStatus] = asyncio.Queue()
        self._queues.add(q)
        try:
            yield self._current
            if self._current.state is ConnectionState.CLOSED:
                return
            while True:
                status = await q.get()
                yield status
                if status.state is ConnectionState.CLOSED:
                    return
        finally:
            self._queues.discard(q)
