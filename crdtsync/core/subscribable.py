"""A minimal listener registry, the base of caches, queries and observers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

L = TypeVar("L", bound=Callable[..., object])
R = TypeVar("R")


class Subscribable(Generic[L]):
    """Keeps listeners; subclasses react to the first and last one via the hooks."""

    def __init__(self) -> None:
        self._listeners: list[L] = []

    def subscribe(self, listener: L) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it."""
        self._listeners.append(listener)
        self.on_subscribe()

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
                self.on_unsubscribe()

        return unsubscribe

    def has_listeners(self) -> bool:
        return bool(self._listeners)

    def on_subscribe(self) -> None:
        """Called after a listener was added."""

    def on_unsubscribe(self) -> None:
        """Called after a listener was removed."""


async def iterate_latest(source: Subscribable[Any], current: Callable[[], R]) -> AsyncIterator[R]:
    """Yield ``current()``, then each new value after ``source`` notifies. A slow consumer sees
    the latest value (intermediate ones are skipped, never queued without bound). The
    subscription lives as long as the iteration."""
    changed = asyncio.Event()
    unsubscribe = source.subscribe(lambda *_: changed.set())
    try:
        last = current()
        yield last
        while True:
            await changed.wait()
            changed.clear()
            value = current()
            if value is not last:
                last = value
                yield last
    finally:
        unsubscribe()
