"""Batched notifications: inside ``batch()`` every scheduled callback is queued and each one
runs once when the outermost batch ends, so an observer touched five times in one batch is
notified once.

With a ``tick`` (seconds, on the injected clock), notifications outside a batch are queued too
and flushed once per tick: a burst of remote updates then costs each observer one
notification per tick, however many updates arrived."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from ..clock import Clock, TimerHandle


class NotifyManager:
    def __init__(self, *, tick: float | None = None, clock: Clock | None = None) -> None:
        if tick is not None and (tick < 0 or clock is None):
            raise ValueError("a notify tick needs a clock and a value >= 0")
        self._depth = 0
        self._queue: dict[object, Callable[[], None]] = {}
        self._tick = tick
        self._clock = clock
        self._timer: TimerHandle | None = None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._tick is None:
                self.flush()
            elif self._depth == 0 and self._queue and self._timer is None and self._clock is not None:
                self._timer = self._clock.call_later(self._tick or 0.0, self._on_tick)

    @property
    def batching(self) -> bool:
        return self._depth > 0

    def schedule(self, key: object, callback: Callable[[], None]) -> None:
        """Run ``callback`` now, or once at the end of the current batch (deduplicated by ``key``:
        a later callback for the same key replaces the earlier one)."""
        if self._depth == 0 and self._tick is None:
            callback()
            return
        self._queue.pop(key, None)
        self._queue[key] = callback
        if self._depth == 0 and self._timer is None and self._clock is not None and self._tick is not None:
            self._timer = self._clock.call_later(self._tick, self._on_tick)

    def _on_tick(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Run every queued callback; a failing one does not keep the others from running (the
        first error is raised once all have run)."""
        errors: list[Exception] = []
        while self._queue:
            queue, self._queue = self._queue, {}
            for cb in queue.values():
                try:
                    cb()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
