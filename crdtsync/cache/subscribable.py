"""A minimal listener registry, the base of caches, queries and observers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

L = TypeVar("L", bound=Callable[..., object])


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
