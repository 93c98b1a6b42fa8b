"""Injectable time and scheduling.

Everything in crdtsync that waits (retry delays, stale timers, gc timers, refetch intervals,
reconnect backoff) goes through a :class:`Clock`. Production code uses :class:`SystemClock`;
tests use :class:`FakeClock` and move time forward with ``await clock.advance(seconds)``,
never by sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time source and scheduler. ``now()`` is seconds since the epoch (a float)."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    async def sleep(self, delay: float) -> None: ...


class SystemClock:
    """The real clock: ``time.time()`` and the running event loop's timers."""

    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when told to. Deterministic: timers due at the same instant
    fire in the order they were scheduled.

    ``await clock.advance(5)`` fires every timer due within the next 5 seconds, in order,
    letting the event loop run the tasks they wake between timers, so code that sleeps in a
    loop (retries, intervals) makes progress exactly as it would in real time.
    """

    def __init__(self, start: float = 1_000_000.0):
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self.call_later(delay, wake)
        try:
            await fut
        finally:
            handle.cancel()

    def pending_timers(self) -> int:
        """How many live timers are scheduled (for tests that check nothing is left running)."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    def next_timer_at(self) -> float | None:
        live = [w for w, _, t in self._timers if not t.cancelled]
        return min(live) if live else None

    async def settle(self, rounds: int = 20) -> None:
        """Let ready tasks run without moving time (a bounded number of loop turns)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in order."""
        target = self._now + max(0.0, seconds)
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.callback()
            await self.settle()
        self._now = target
        await self.settle()
