"""Injectable online and focus state.

Python apps have no ``window.onfocus`` or ``navigator.onLine``: the app (or a SyncProvider)
tells crdtsync. ``OnlineManager.set_online(False)`` pauses fetches and mutations in network
mode ``online``; ``set_online(True)`` resumes them and refetches stale queries that ask for
``refetch_on_reconnect``. ``FocusManager.set_focused(True)`` refetches stale queries that ask
for ``refetch_on_focus`` (call it when your window, tab or CLI session becomes active).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .subscribable import Subscribable


class _Flag(Subscribable[Callable[[bool], None]]):
    def __init__(self, initial: bool) -> None:
        super().__init__()
        self._value = initial
        self._waiters: list[asyncio.Future[None]] = []

    def _set(self, value: bool) -> None:
        if value == self._value:
            return
        self._value = value
        if value:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        for listener in list(self._listeners):
            listener(value)

    async def _wait_true(self) -> None:
        if self._value:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut


class OnlineManager(_Flag):
    """Whether the network is reachable. Starts online."""

    def __init__(self, online: bool = True) -> None:
        super().__init__(online)

    def is_online(self) -> bool:
        return self._value

    def set_online(self, online: bool) -> None:
        self._set(online)

    async def wait_online(self) -> None:
        """Return once online (at once when already online)."""
        await self._wait_true()


class FocusManager(_Flag):
    """Whether the app is active. Starts focused."""

    def __init__(self, focused: bool = True) -> None:
        super().__init__(focused)

    def is_focused(self) -> bool:
        return self._value

    def set_focused(self, focused: bool) -> None:
        self._set(focused)

    async def wait_focused(self) -> None:
        """Return once focused (at once when already focused)."""
        await self._wait_true()

    def signal_focus(self) -> None:
        """Report an activation even when already focused (like a window regaining focus)."""
        if self._value:
            for listener in list(self._listeners):
                listener(True)
        else:
            self._set(True)
