"""Waiting on the injected clock: a timeout and an interruptible sleep.

``asyncio.timeout`` and ``asyncio.sleep`` use the event loop's time, which a
:class:`~crdtsync.clock.FakeClock` does not move; these use the clock's own timers, so tests
drive them with ``await clock.advance(seconds)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..clock import Clock
from ..errors import TransportError

__all__ = ["sleep_unless", "with_timeout"]

T = TypeVar("T")


async def with_timeout(clock: Clock, aw: Coroutine[Any, Any, T], seconds: float, what: str) -> T:
    """Await ``aw`` for at most ``seconds`` of ``clock``; then cancel it and raise
    :class:`TransportError` ("``what`` timed out")."""
    task = asyncio.ensure_future(aw)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        elif not task.cancelled():
            task.exception()  # retrieved: we may be leaving by our own cancellation (else result() below)
    if task.cancelled():
        raise TransportError(f"{what} timed out after {seconds} s")
    return task.result()


async def sleep_unless(clock: Clock, delay: float, event: asyncio.Event) -> None:
    """Sleep ``delay`` seconds of ``clock``, or less if ``event`` is set meanwhile."""
    sleeper = asyncio.ensure_future(clock.sleep(delay))
    waker = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waker.cancel()
