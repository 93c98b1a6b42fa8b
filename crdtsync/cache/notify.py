"""Batched notifications: inside ``batch()`` every scheduled callback is queued and each one
runs once when the outermost batch ends, so an observer touched five times in one batch is
notified once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class NotifyManager:
    def __init__(self) -> None:
        self._depth = 0
        self._queue: dict[object, Callable[[], None]] = {}

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.flush()

    @property
    def batching(self) -> bool:
        return self._depth > 0

    def schedule(self, key: object, callback: Callable[[], None]) -> None:
        """Run ``callback`` now, or once at the end of the current batch (deduplicated by ``key``:
        a later callback for the same key replaces the earlier one)."""
        if self._depth == 0:
            callback()
            return
        self._queue.pop(key, None)
        self._queue[key] = callback

    def flush(self) -> None:
        while self._queue:
            queue, self._queue = self._queue, {}
            for cb in queue.values():
                cb()
